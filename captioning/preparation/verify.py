"""The exporter checks its own work: the graphs must caption generated images exactly like the torch model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from captioning.preparation.errors import refuse_onnx

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


def _until_eos(row: list[int], eos: tuple[int, ...]) -> list[int]:
    for position in range(1, len(row)):
        if row[position] in eos:
            return row[: position + 1]
    return row


NEAR_TIE_TOLERANCE = 1e-4
"""Largest log-probability difference between the graphs and the torch model still called float noise."""
ATTEMPTS = 3


def _teacher_forced_gap(
    model: object, captioner: object, pixel_values: np.ndarray, rows: list[list[int]]
) -> float:
    """Largest |log-probability| difference between the graphs and the torch model, both fed the same
    token sequences (the torch model's captions): float noise only when the graphs are right."""
    import torch

    length = max(len(row) for row in rows)
    padded = np.array([row + [row[-1]] * (length - len(row)) for row in rows], dtype=np.int64)
    with torch.inference_mode():
        logits = model(
            pixel_values=torch.from_numpy(pixel_values), decoder_input_ids=torch.from_numpy(padded)
        ).logits
        expected = torch.log_softmax(logits.float(), dim=-1).numpy()
    cross_kv = captioner.encode_pixels(pixel_values)
    past = np.zeros((*captioner.empty_past_shape[:2], len(rows), *captioner.empty_past_shape[3:]), np.float32)
    gap = 0.0
    for position in range(length):
        inputs = {
            "input_ids": padded[:, position],
            "position": np.array([position], dtype=np.int64),
            "past": past,
            "cross_kv": cross_kv,
        }
        _, log_probs, past = captioner.decoder.run(None, inputs)
        gap = max(gap, float(np.abs(log_probs - expected[:, position]).max()))
    return gap


def verify_against_torch(
    model: object, processor: object, tokenizer: object, directory: Path, *, count: int = 4
) -> None:
    """Float32 graphs in `directory` vs `model.generate`: the same pixels, token ids and captions on a set
    of generated images, for the model's beam width and for greedy search; otherwise the build is refused.

    Exactness rests on float differences of ~1e-6: when two hypotheses of a real model are that close,
    the graphs and torch may rank them differently. A set whose mismatches are only that (the graphs'
    log-probabilities within NEAR_TIE_TOLERANCE of torch's along torch's captions) is replaced by a fresh
    set, up to ATTEMPTS sets; one set must match exactly. Any larger difference fails at once."""
    ties = []
    for attempt in range(ATTEMPTS):
        images = verification_images(count, seed=_SEED + attempt)
        mismatch = _compare(model, processor, tokenizer, directory, images)
        if mismatch is None:
            return
        num_beams, expected_texts, got_texts, gap = mismatch
        if gap > NEAR_TIE_TOLERANCE:
            raise refuse_onnx(
                f"the exported graphs caption differently from the torch model with num_beams={num_beams}"
                f" (expected {expected_texts}, got {got_texts}; log-probabilities differ by up to {gap:.2g})"
            )
        ties.append(gap)
    raise refuse_onnx(
        f"{ATTEMPTS} sets of check images all hit near-ties (log-probability gaps {ties}): the graphs compute"
        " the same function but cannot be shown to give the same captions"
    )


def _compare(model, processor, tokenizer, directory: Path, images: list[Image.Image]):
    """None when the graphs caption `images` exactly like torch; else (num_beams, expected, got, gap)."""
    import torch

    from captioning.function.onnx_captioner import OnnxCaptioner

    expected_pixels = processor(images=images, return_tensors="np").pixel_values
    default = OnnxCaptioner.load(directory)
    if not np.array_equal(default.pixels(images), expected_pixels):
        raise refuse_onnx("the image processor's pixel values (resize/rescale/normalize differ)")
    for num_beams in sorted({default.num_beams, 1}):
        captioner = OnnxCaptioner.load(directory, num_beams=num_beams)
        got_ids = captioner.token_ids(images)
        with torch.inference_mode():
            generated = model.generate(
                torch.from_numpy(expected_pixels), num_beams=num_beams, max_length=captioner.max_length
            )
        eos = captioner.generation.eos_token_ids
        expected_ids = [_until_eos(row, eos) for row in generated.tolist()]
        expected_texts = [
            text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True)
        ]
        got_texts = captioner.decode(got_ids)
        if got_ids != expected_ids or got_texts != expected_texts:
            gap = _teacher_forced_gap(model, captioner, expected_pixels, expected_ids)
            return num_beams, expected_texts, got_texts, gap
    return None
