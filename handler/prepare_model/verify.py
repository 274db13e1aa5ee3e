"""The exporter checks its own work: the graphs must caption generated images exactly like the torch model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from handler.prepare_model.errors import refuse_onnx

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


def verify_against_torch(
    model: object, processor: object, tokenizer: object, directory: Path, *, count: int = 4
) -> None:
    """Float32 graphs in `directory` vs `model.generate`: same pixels, token ids and captions, for the
    model's beam width and for greedy search; otherwise the build is refused."""
    import torch

    from handler.onnx_captioner import OnnxCaptioner

    images = verification_images(count)
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
            raise refuse_onnx(
                f"the exported graphs caption differently from the torch model with num_beams={num_beams}"
                f" (expected {expected_texts}, got {got_texts})"
            )
