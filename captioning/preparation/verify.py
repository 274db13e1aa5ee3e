"""The exporter checks its own work: the graphs must caption generated images exactly like the torch model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from captioning.preparation.errors import refuse_onnx
from captioning.preparation.family_export import FamilyExporter, Loaded

_SEED = 20_261_128


def verification_images(count: int, seed: int = _SEED) -> list[Image.Image]:
    """Deterministic test pictures of different sizes: noise, and coloured shapes on plain backgrounds."""
    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        width, height = int(rng.integers(24, 320)), int(rng.integers(24, 320))
        if index % 2 == 0:
            images.append(Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)))
            continue
        image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(3):
            x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
            box = (
                x0,
                y0,
                x0 + int(rng.integers(4, width // 2 + 5)),
                y0 + int(rng.integers(4, height // 2 + 5)),
            )
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        images.append(image)
    return images


def _until_eos(row: list[int], eos: tuple[int, ...], start: int = 1) -> list[int]:
    for position in range(start, len(row)):
        if row[position] in eos:
            return row[: position + 1]
    return row


NEAR_TIE_TOLERANCE = 1e-4
"""Largest log-probability difference between the graphs and the torch model still called float noise."""
ATTEMPTS = 3


def teacher_forced_gap(
    exporter: FamilyExporter,
    loaded: Loaded,
    captioner: object,
    images: list[Image.Image],
    rows: list[list[int]],
) -> float:
    """Largest |log-probability| difference between the graphs and the torch model, both fed the same
    token sequences (the torch model's captions, one per image): float noise only when the graphs are
    right."""
    length = max(len(row) for row in rows)
    padded = [row + [row[-1]] * (length - len(row)) for row in rows]
    expected = exporter.teacher_forced_log_probs(loaded, images, prompt=captioner.prompt, rows=padded)
    got = captioner.teacher_forced_log_probs(captioner.encode(images), np.array(padded, dtype=np.int64))
    return float(np.abs(got - expected[:, :length]).max())


def verify_against_torch(
    exporter: FamilyExporter, loaded: Loaded, directory: Path, *, count: int = 4
) -> None:
    """Float32 graphs in `directory` vs transformers' `generate`: the same pixels, token ids and captions
    on a set of generated images, for the model's beam width and for greedy search, for each of the
    family's check prompts; otherwise the build is refused.

    Exactness rests on float differences of ~1e-6: when two hypotheses of a real model are that close,
    the graphs and torch may rank them differently. A set whose mismatches are only that (the graphs'
    log-probabilities within NEAR_TIE_TOLERANCE of torch's along torch's captions) is replaced by a fresh
    set, up to ATTEMPTS sets; one set must match exactly. Any larger difference fails at once."""
    ties = []
    for attempt in range(ATTEMPTS):
        images = verification_images(count, seed=_SEED + attempt)
        mismatch = _compare(exporter, loaded, directory, images)
        if mismatch is None:
            return
        what, expected_texts, got_texts, gap = mismatch
        if gap > NEAR_TIE_TOLERANCE:
            raise refuse_onnx(
                f"the exported graphs caption differently from the torch model with {what}"
                f" (expected {expected_texts}, got {got_texts}; log-probabilities differ by up to {gap:.2g})"
            )
        ties.append(gap)
    raise refuse_onnx(
        f"{ATTEMPTS} sets of check images all hit near-ties (log-probability gaps {ties}): the graphs compute"
        " the same function but cannot be shown to give the same captions"
    )


def _check_prompt_tokens(captioner: object, expected_ids: list[list[int]], got_ids: list[list[int]]) -> None:
    """The rows must start with the tokens generate starts from: a prompt built otherwise is not a
    near-tie (teacher forcing along torch's rows cannot see it), so it fails at once."""
    length = len(captioner.decoder_prompt)
    for expected, got in zip(expected_ids, got_ids, strict=True):
        if expected[:length] != got[:length]:
            prompt = f" for prompt={captioner.prompt!r}" if captioner.prompt else ""
            raise refuse_onnx(
                f"the decoder's first tokens{prompt} (generate starts from {expected[:length]}, the graphs"
                f" from {got[:length]})"
            )


def _compare(exporter: FamilyExporter, loaded: Loaded, directory: Path, images: list[Image.Image]):
    """None when the graphs caption `images` exactly like torch; else (settings, expected, got, gap)."""
    from captioning.function.onnx_captioner import OnnxCaptioner

    default = OnnxCaptioner.load(directory)
    if not np.array_equal(default.pixels(images), exporter.reference_pixel_values(loaded, images)):
        raise refuse_onnx("the image processor's pixel values (resize/rescale/normalize differ)")
    for prompt in exporter.verify_prompts:
        for num_beams in sorted({default.num_beams, 1}):
            captioner = OnnxCaptioner.load(directory, num_beams=num_beams, prompt=prompt)
            got_ids = captioner.token_ids(images)
            generated, expected_texts = exporter.reference(
                loaded, images, prompt=captioner.prompt, num_beams=num_beams, max_length=captioner.max_length
            )
            eos = captioner.generation.eos_token_ids
            expected_ids = [_until_eos(row, eos, len(captioner.decoder_prompt)) for row in generated]
            got_texts = captioner.captions(got_ids)
            _check_prompt_tokens(captioner, expected_ids, got_ids)
            if got_ids != expected_ids or got_texts != expected_texts:
                gap = teacher_forced_gap(exporter, loaded, captioner, images, expected_ids)
                what = f"num_beams={num_beams}" + (
                    f", prompt={captioner.prompt!r}" if captioner.prompt else ""
                )
                return what, expected_texts, got_texts, gap
    return None
