"""BLIP's image processor reproduced with Pillow + numpy (captioning/function/pixels.py, read from the
manifest the exporter writes): pixel values bit-identical to transformers' BlipImageProcessorPil on many
sizes, aspect ratios and image modes, at BLIP's own 384 px and at other sizes and resampling filters."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from transformers import BlipImageProcessorPil

from captioning.function.pixels import Pixels
from captioning.preparation.export_vit_gpt2 import checked_pixels

MODES = ("RGB", "L", "RGBA", "LA", "P", "CMYK", "I;16", "1")


def _images(seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    sizes = [(1, 1), (3, 500), (500, 3), (384, 384), (383, 385), (640, 480), (480, 640), (1000, 90), (37, 59)]
    images = []
    for index, (width, height) in enumerate(sizes * 2):
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        images.append(Image.fromarray(pixels).convert(MODES[index % len(MODES)]))
    return images


@pytest.mark.parametrize(
    "settings",
    [
        {},  # Salesforce/blip-image-captioning-*: 384 x 384, bicubic, CLIP's mean and std
        {"size": {"height": 32, "width": 32}},
        {"size": {"height": 224, "width": 160}, "resample": Image.Resampling.BILINEAR},
        {"size": {"height": 64, "width": 96}, "resample": Image.Resampling.LANCZOS, "image_mean": [0.5] * 3},
    ],
)
def test_blip_pixels_equal_transformers(settings: dict) -> None:
    processor = BlipImageProcessorPil(**settings)
    pixels = Pixels.from_settings(checked_pixels(processor))
    for seed in (0, 1):
        images = _images(seed)
        expected = processor(images=images, return_tensors="np").pixel_values
        got = pixels(images)
        assert got.dtype == expected.dtype == np.float32
        assert np.array_equal(got, expected), settings
