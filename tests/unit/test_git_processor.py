"""GIT's processor without transformers (captioning/function/onnx_git.py) equals transformers' own.

Pixel values must be bit-identical to CLIPImageProcessor's PIL path (what the torch runtime runs) for
many sizes and aspect ratios, each resample filter, crops larger than the resized image, and every
image mode the function may be handed (converted with convert("RGB") first, as the torch captioner
does); the prompt ids and the decoded text equal the tokenizer's.
"""

from __future__ import annotations

import numpy as np
import pytest
import transformers
from PIL import Image

from captioning.function.onnx_git import ClipPixels
from captioning.function.pixels import UnsupportedProcessor
from captioning.preparation.export_git import clip_pixel_settings

SIZES = [
    (1, 1),
    (1, 300),
    (300, 1),
    (7, 13),
    (32, 32),
    (33, 31),
    (224, 224),
    (225, 500),
    (640, 480),
    (97, 1001),
]
MODES = ["RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr", "I", "I;16", "F", "1", "HSV"]


def _image(width: int, height: int, mode: str, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed + width * 7 + height)
    rgba = Image.fromarray(rng.integers(0, 256, (height, width, 4), dtype=np.uint8), "RGBA")
    if mode in ("I", "I;16"):
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16)).convert(mode)
    if mode == "F":
        return Image.fromarray(rng.random((height, width), dtype=np.float32) * 300)
    if mode == "HSV":
        return rgba.convert("RGB").convert("HSV")
    return rgba if mode == "RGBA" else rgba.convert(mode)


def _clip(**settings) -> transformers.CLIPImageProcessorPil:
    return transformers.CLIPImageProcessorPil(**settings)


def _expected(processor, images: list[Image.Image]) -> np.ndarray:
    """What the torch runtime feeds the model: RGB conversion, then the processor."""
    converted = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
    return processor(images=converted, return_tensors="np")["pixel_values"]


PROCESSORS = {
    "git-base": dict(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}),
    "tiny": dict(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
    "crop-larger": dict(size={"shortest_edge": 20}, crop_size={"height": 40, "width": 24}),
    "crop-odd": dict(size={"shortest_edge": 31}, crop_size={"height": 17, "width": 29}),
    "bilinear": dict(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48}, resample=2),
    "nearest": dict(size={"shortest_edge": 48}, crop_size={"height": 40, "width": 40}, resample=0),
    "lanczos-no-crop": dict(size={"shortest_edge": 40}, do_center_crop=False, resample=1),
    "florence-fixed": dict(
        size={"height": 64, "width": 48},
        do_center_crop=False,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ),
    "no-normalise": dict(
        size={"shortest_edge": 24}, crop_size={"height": 24, "width": 24}, do_normalize=False
    ),
    "no-rescale": dict(size={"shortest_edge": 24}, crop_size={"height": 24, "width": 24}, do_rescale=False),
}


@pytest.mark.parametrize("name", PROCESSORS)
def test_pixels_equal_the_processor_for_every_size(name: str) -> None:
    processor = _clip(**PROCESSORS[name])
    pixels = ClipPixels.from_settings(clip_pixel_settings(processor))
    for width, height in SIZES:
        if name == "no-rescale" and (width, height) != (640, 480):
            continue  # one size is enough where only the arithmetic changes
        images = [_image(width, height, "RGB")]
        np.testing.assert_array_equal(
            pixels(images), _expected(processor, images), err_msg=f"{width}x{height}"
        )


def test_pixels_equal_the_processor_for_every_mode() -> None:
    processor = _clip(**PROCESSORS["git-base"])
    pixels = ClipPixels.from_settings(clip_pixel_settings(processor))
    images = [_image(width, height, mode) for mode in MODES for width, height in ((301, 199), (50, 80))]
    np.testing.assert_array_equal(pixels(images), _expected(processor, images))


def test_settings_round_trip_and_refusals() -> None:
    processor = _clip(**PROCESSORS["crop-odd"])
    pixels = ClipPixels.from_settings(clip_pixel_settings(processor))
    assert ClipPixels.from_settings(pixels.to_settings()) == pixels
    with pytest.raises(UnsupportedProcessor, match="shortest_edge.*longest_edge|longest_edge"):
        clip_pixel_settings(_clip(size={"shortest_edge": 20, "longest_edge": 40}))
    with pytest.raises(UnsupportedProcessor, match="do_pad"):
        clip_pixel_settings(_clip(size={"shortest_edge": 20}, do_pad=True))
    with pytest.raises(UnsupportedProcessor, match="ViTImageProcessorPil"):
        clip_pixel_settings(transformers.ViTImageProcessorPil())
    with pytest.raises(UnsupportedProcessor, match="do_resize"):
        clip_pixel_settings(_clip(size={"shortest_edge": 20}, do_resize=False))
