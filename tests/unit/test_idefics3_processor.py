"""Idefics3 / SmolVLM's processor without transformers (captioning/function/onnx_idefics3.py) equals
transformers' own.

Pixel values and the pixel attention mask must be bit-identical to Idefics3ImageProcessorPil (what the
torch runtime runs) for many sizes and aspect ratios (images splitting into 1, 3, 5 ... tiles, batches of
different tile counts padded with zero tiles), with and without image splitting, each resample filter,
SmolVLM-256M-Instruct's published sizes, and every image mode the function may be handed (converted with
convert("RGB") first, as the torch captioner does); the prompt ids equal Idefics3Processor's input_ids
(chat template, tile tokens), for single images and in a left-padded batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import transformers
from PIL import Image
from tokenizers import Tokenizer

from captioning.function.onnx_idefics3 import Idefics3Pixels, Idefics3Runtime
from captioning.preparation.errors import PreparationRefused
from captioning.preparation.export_idefics3 import Idefics3Exporter, chat_text, pixel_settings
from tests import tiny_families

SIZES = [
    (1, 1),
    (1, 300),
    (300, 1),
    (7, 13),
    (64, 64),
    (65, 63),
    (128, 64),
    (64, 129),
    (225, 500),
    (640, 480),
    (97, 1001),
    (333, 334),
]
MODES = ["RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr", "I", "I;16", "F", "1", "HSV"]
PROMPTS = ["Write a one-sentence caption for this image.", "what does the image describe ?", " a  b ", "é ü"]


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


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _assert_same(
    processor: transformers.Idefics3ImageProcessorPil, images: list[Image.Image]
) -> Idefics3Pixels:
    ours = Idefics3Pixels.from_settings(pixel_settings(processor))
    expected = processor(images=[[_rgb(image)] for image in images], return_tensors="np")
    got = ours(images)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected["pixel_values"])
    np.testing.assert_array_equal(ours.pixel_attention_mask(got), expected["pixel_attention_mask"])
    return got


@pytest.mark.parametrize("split", [True, False])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_pixels_equal_the_processors_for_each_size(width: int, height: int, split: bool) -> None:
    processor = transformers.Idefics3ImageProcessorPil(
        size={"longest_edge": 4 * 64}, max_image_size={"longest_edge": 64}, do_image_splitting=split
    )
    got = _assert_same(processor, [_image(width, height, "RGB")])
    if split and max(width, height) > 1:
        assert got.shape[1] > 1  # the longest edge is resized to 4 tiles: the image is split


def test_a_batch_of_different_tile_counts_is_padded_as_the_processor_pads_it() -> None:
    processor = transformers.Idefics3ImageProcessorPil(
        size={"longest_edge": 4 * 64}, max_image_size={"longest_edge": 64}
    )
    images = [_image(width, height, "RGB") for width, height in ((640, 480), (64, 129), (1, 300), (300, 300))]
    got = _assert_same(processor, images)
    assert len(set(got.tile_counts)) > 2
    assert got.grids[0] == (3, 4) and got.grids[1] == (4, 2)


@pytest.mark.parametrize("mode", MODES)
def test_pixels_equal_the_processors_for_each_mode(mode: str) -> None:
    processor = transformers.Idefics3ImageProcessorPil(
        size={"longest_edge": 2 * 32}, max_image_size={"longest_edge": 32}
    )
    _assert_same(processor, [_image(width, height, mode) for width, height in ((50, 31), (13, 90), (32, 32))])


@pytest.mark.parametrize(
    "resample", [Image.Resampling.LANCZOS, Image.Resampling.BICUBIC, Image.Resampling.BILINEAR]
)
def test_pixels_equal_the_processors_for_each_resample_filter(resample: int) -> None:
    processor = transformers.Idefics3ImageProcessorPil(
        size={"longest_edge": 3 * 48}, max_image_size={"longest_edge": 48}, resample=resample
    )
    _assert_same(processor, [_image(width, height, "RGB") for width, height in ((200, 61), (61, 200))])


def test_pixels_equal_the_processors_at_smolvlm_256m_instructs_published_sizes() -> None:
    """SmolVLM-256M-Instruct's preprocessor_config.json: longest edge 2048, 512-pixel tiles, LANCZOS,
    mean/std 0.5."""
    processor = transformers.Idefics3ImageProcessorPil(
        size={"longest_edge": 2048},
        max_image_size={"longest_edge": 512},
        resample=Image.Resampling.LANCZOS,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    got = _assert_same(processor, [_image(640, 480, "RGB"), _image(300, 900, "L")])
    assert got.grids == [(3, 4), (4, 2)]


def test_processor_settings_it_cannot_reproduce_are_refused() -> None:
    with pytest.raises(PreparationRefused, match="do_pad=False"):
        pixel_settings(transformers.Idefics3ImageProcessorPil(do_pad=False))
    with pytest.raises(PreparationRefused, match="size="):
        pixel_settings(transformers.Idefics3ImageProcessorPil(size={"height": 64, "width": 64}))


@pytest.fixture(scope="module", params=[True, False], ids=["splitting", "no-splitting"])
def tiny(request, tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Idefics3Runtime, Tokenizer]:
    """(transformers' processor, the run-time adapter built from the exporter's manifest, tokenizer)."""
    source = tiny_families.build_idefics3(
        Path(tmp_path_factory.mktemp("idefics3")) / "model", image_splitting=request.param
    )
    exporter = Idefics3Exporter()
    loaded = exporter.load(source)
    runtime = Idefics3Runtime(exporter.manifest(loaded), sessions={})
    return loaded.processor, runtime, Tokenizer.from_file(str(source / "tokenizer.json"))


def test_prompt_ids_equal_the_processors_input_ids(tiny) -> None:
    processor, runtime, tokenizer = tiny
    images = [_image(width, height, "RGB") for width, height in SIZES]
    grids = runtime.pixel_values(images).grids
    for prompt in PROMPTS:
        text = chat_text(processor, prompt)
        for image, grid in zip(images, grids, strict=True):
            expected = processor(text=[text], images=[[image]])["input_ids"][0]
            assert runtime.prompt_ids(prompt, grid, tokenizer) == list(expected)
        # the batch the torch runtime sends: left-padded, each row's real ids ours
        batch = processor(text=[text] * len(images), images=[[image] for image in images], padding=True)
        for row, mask, grid in zip(batch["input_ids"], batch["attention_mask"], grids, strict=True):
            real = [token for token, keep in zip(row, mask, strict=True) if keep]
            assert runtime.prompt_ids(prompt, grid, tokenizer) == real
    if runtime.pixels.split:
        assert len({len(runtime.prompt_ids(PROMPTS[0], grid, tokenizer)) for grid in grids}) > 2


def test_the_decoder_prompt_is_the_text_after_the_image_block(tiny) -> None:
    processor, runtime, tokenizer = tiny
    prompt = PROMPTS[1]
    ids = processor(text=[chat_text(processor, prompt)], images=[[_image(9, 9, "RGB")]])["input_ids"][0]
    start = runtime.decoder_prompt(prompt, tokenizer)
    assert list(ids[-len(start) :]) == start
    assert ids[-len(start) - 1] == processor.fake_image_token_id
    assert tokenizer.decode(start, skip_special_tokens=False).startswith(prompt.strip()[:4])
    with pytest.raises(ValueError, match="needs an instruction"):
        runtime.decoder_prompt("  ", tokenizer)
