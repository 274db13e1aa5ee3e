"""What each precision promises, and the fast paths behind the default.

fp32 (the default) must give exactly the captions of plain float32 `generate`, one image at a
time; int8 and bf16 may change captions but must keep the demo model's held-out accuracy.
"""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

import captioning.function.torch_captioner as captioner_module
from captioning.function.captioner import Captioner

DEMO_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "demo-shapes"
DEMO_ACCURACY_FLOOR = 0.98
DEMO_HELD_OUT_SEED = 424_242
DEMO_HELD_OUT_COUNT = 64
needs_demo_model = pytest.mark.skipif(
    not (DEMO_MODEL_DIR / "config.json").is_file(), reason="models/demo-shapes has not been trained yet"
)


def _noise_images(count: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(rng.integers(0, 256, (20 + 11 * index, 90 - 5 * index, 3), dtype=np.uint8))
        for index in range(count)
    ]


def _plain_generate_captions(
    model_dir: Path, images: list[Image.Image], num_beams: int, max_length: int
) -> list[str]:
    """The reference: transformers' own processor and float32 generate, one image per call."""
    processor = AutoImageProcessor.from_pretrained(model_dir, backend="pil")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = VisionEncoderDecoderModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    captions = []
    with torch.inference_mode():
        for image in images:
            pixel_values = processor(images=image, return_tensors="pt").pixel_values
            token_ids = model.generate(pixel_values, num_beams=num_beams, max_length=max_length)
            captions.append(tokenizer.decode(token_ids[0], skip_special_tokens=True).strip())
    return captions


def test_fast_pixels_are_exactly_the_image_processors(tiny_model_dir: Path) -> None:
    processor = AutoImageProcessor.from_pretrained(tiny_model_dir, backend="pil")
    fast = captioner_module._FastPixels.for_processor(processor)
    images = [
        *_noise_images(5, seed=3),
        Image.new("RGB", (640, 480), (10, 200, 30)),
        Image.new("RGB", (7, 300)),
    ]

    assert fast is not None
    assert torch.equal(fast(images), processor(images=images, return_tensors="pt").pixel_values)


def test_non_rgb_images_take_the_image_processors_own_path(tiny_captioner: Captioner) -> None:
    gray = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8), "L")

    assert tiny_captioner._fast_pixels is not None
    assert tiny_captioner._fast_pixels([gray]) is None


@pytest.mark.parametrize("num_beams", [1, 3, 5])
def test_fp32_captions_equal_plain_generate_one_by_one(tiny_model_dir: Path, num_beams: int) -> None:
    images = _noise_images(8, seed=num_beams)
    captioner = Captioner.load(tiny_model_dir, num_beams=num_beams, max_length=12)

    expected = _plain_generate_captions(tiny_model_dir, images, num_beams=num_beams, max_length=12)

    assert captioner.caption(images) == expected
    assert len(set(expected)) > 1, "the tiny model must tell images apart for this test to mean anything"


def test_fp32_cross_attention_keys_are_computed_once_per_image_not_per_beam(
    tiny_captioner: Captioner,
) -> None:
    batch_sizes: list[int] = []
    key_value_projection = tiny_captioner.model.decoder.transformer.h[0].crossattention.c_attn
    hook = key_value_projection.register_forward_hook(
        lambda module, inputs, output: batch_sizes.append(len(output))
    )
    try:
        tiny_captioner.caption(_noise_images(3, seed=9))
    finally:
        hook.remove()

    assert tiny_captioner.num_beams == 3
    assert batch_sizes == [3]


def test_bf16_without_native_support_falls_back_to_fp32_with_one_log_line(
    tiny_model_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(captioner_module, "cpu_supports_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger=captioner_module.__name__):
        captioner = Captioner.load(tiny_model_dir, precision="bf16", num_beams=2, max_length=8)

    assert captioner.precision == "fp32"
    assert captioner.model.dtype == torch.float32
    assert len([record for record in caplog.records if "bf16" in record.getMessage()]) == 1


@needs_demo_model
def test_fp32_demo_captions_equal_plain_generate() -> None:
    from captioning.function.images import load_image
    from models import evaluate

    images = [load_image(data) for data, _ in evaluate.held_out_uploads(DEMO_HELD_OUT_SEED, 10)]
    captioner = Captioner.load(DEMO_MODEL_DIR)

    expected = _plain_generate_captions(DEMO_MODEL_DIR, images, captioner.num_beams, captioner.max_length)

    assert captioner.caption(images) == expected


@needs_demo_model
@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_reduced_precision_keeps_the_demo_models_held_out_accuracy(precision: str) -> None:
    from models import evaluate

    if precision == "bf16" and not captioner_module.cpu_supports_bf16():
        pytest.skip("no native bfloat16 on this CPU: bf16 runs as fp32 (see the fallback test)")

    captioner = Captioner.load(DEMO_MODEL_DIR, precision=precision)
    uploads = evaluate.held_out_uploads(DEMO_HELD_OUT_SEED + 1, DEMO_HELD_OUT_COUNT)

    result = evaluate.score(captioner.caption, precision, uploads)

    assert result.total == DEMO_HELD_OUT_COUNT
    assert result.accuracy >= DEMO_ACCURACY_FLOOR, result.mistakes[:5]
