"""Captioner: loading offline, batched generate == one by one, precision settings, threads."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel
from transformers.pytorch_utils import Conv1D

import captioning.function.torch_captioner as captioner_module
from captioning.contract.constants import GENERATE_DEFAULT_NEW_TOKENS, GENERATE_DEFAULT_NUM_BEAMS, PRECISIONS
from captioning.function.captioner import Captioner


def _noise_images(count: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(rng.integers(0, 256, (24 + 7 * index, 40, 3), dtype=np.uint8))
        for index in range(count)
    ]


def _plain_fp32_captions(
    model_dir: Path, images: list[Image.Image], num_beams: int, max_length: int
) -> list[str]:
    """What the original design did: plain float32 model, one generate per image."""
    processor = AutoImageProcessor.from_pretrained(model_dir, backend="pil")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = VisionEncoderDecoderModel.from_pretrained(model_dir).eval()
    captions = []
    for image in images:
        pixel_values = processor(images=image, return_tensors="pt").pixel_values
        with torch.no_grad():
            token_ids = model.generate(pixel_values, num_beams=num_beams, max_length=max_length)
        captions.append(tokenizer.decode(token_ids[0], skip_special_tokens=True).strip())
    return captions


@pytest.fixture
def restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_one_batched_generate_gives_the_same_captions_as_one_by_one(tiny_captioner: Captioner) -> None:
    images = _noise_images(6)
    single_captions = [tiny_captioner.caption([image])[0] for image in images]
    with mock.patch.object(tiny_captioner.model, "generate", wraps=tiny_captioner.model.generate) as generate:
        batch_captions = tiny_captioner.caption(images)
    assert generate.call_count == 1
    assert batch_captions == single_captions
    assert len(set(batch_captions)) > 1, (
        "the tiny model must tell images apart for this test to mean anything"
    )


def test_default_precision_matches_plain_fp32_generate(
    tiny_captioner: Captioner, tiny_model_dir: Path
) -> None:
    images = _noise_images(4, seed=1)
    expected = _plain_fp32_captions(tiny_model_dir, images, num_beams=3, max_length=12)
    assert tiny_captioner.precision == "fp32"
    assert tiny_captioner.caption(images) == expected


def test_no_images_no_generate(tiny_captioner: Captioner) -> None:
    with mock.patch.object(tiny_captioner.model, "generate") as generate:
        assert tiny_captioner.caption([]) == []
    generate.assert_not_called()


def test_loading_never_touches_the_network(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access during Captioner.load")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    captioner = Captioner.load(tiny_model_dir, num_beams=2, max_length=8)
    assert captioner.model_id == tiny_model_dir.name
    assert captioner.model.training is False
    assert len(captioner.caption(_noise_images(2))) == 2


def test_model_id_can_be_named(tiny_model_dir: Path) -> None:
    assert Captioner.load(tiny_model_dir, model_id="org/tiny").model_id == "org/tiny"


def test_invalid_precision_names_the_allowed_values(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, int8; got 'fp16'"):
        Captioner.load(tiny_model_dir, precision="fp16")


def test_missing_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        Captioner.load(tmp_path / "nowhere")


def test_float16_stored_weights_are_upcast_at_load(tiny_model_dir: Path, tmp_path: Path) -> None:
    half_dir = tmp_path / "half"
    VisionEncoderDecoderModel.from_pretrained(tiny_model_dir, dtype=torch.float16).save_pretrained(half_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        (half_dir / name).write_bytes((tiny_model_dir / name).read_bytes())
    captioner = Captioner.load(half_dir, num_beams=2, max_length=8)
    assert {parameter.dtype for parameter in captioner.model.parameters()} == {torch.float32}
    assert len(captioner.caption(_noise_images(2))) == 2


def test_int8_quantizes_gpt2_conv1d_layers_too(tiny_model_dir: Path) -> None:
    captioner = Captioner.load(tiny_model_dir, precision="int8", num_beams=3, max_length=12)
    modules = list(captioner.model.modules())
    assert not any(isinstance(module, Conv1D) for module in modules)
    quantized = [module for module in modules if isinstance(module, torch.ao.nn.quantized.dynamic.Linear)]
    decoder_quantized = [
        module
        for module in captioner.model.decoder.modules()
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear)
    ]
    # Per GPT-2 block: self-attention c_attn + c_proj, cross-attention q_attn + c_attn + c_proj,
    # MLP c_fc + c_proj = 7 Conv1D layers; plus the lm_head Linear.
    assert len(decoder_quantized) == 7 * captioner.model.config.decoder.n_layer + 1
    assert len(quantized) > len(decoder_quantized)
    captions = captioner.caption(_noise_images(3))
    assert len(captions) == 3 and all(isinstance(caption, str) for caption in captions)


def test_conv1d_to_linear_computes_the_same_function() -> None:
    torch.manual_seed(0)
    holder = torch.nn.Sequential(Conv1D(5, 3))
    inputs = torch.randn(2, 4, 3)
    expected = holder(inputs)
    captioner_module._conv1d_to_linear(holder)
    assert isinstance(holder[0], torch.nn.Linear)
    torch.testing.assert_close(holder(inputs), expected)


def test_bf16_where_supported(tiny_model_dir: Path) -> None:
    if not captioner_module.cpu_supports_bf16():
        pytest.skip("this CPU has no bfloat16 kernels")
    captioner = Captioner.load(tiny_model_dir, precision="bf16", num_beams=2, max_length=8)
    assert captioner.precision == "bf16"
    assert captioner.model.dtype == torch.bfloat16
    assert len(captioner.caption(_noise_images(2))) == 2


def test_bf16_falls_back_to_fp32_with_one_log_line(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(captioner_module, "cpu_supports_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="captioning.function.torch_captioner"):
        captioner = Captioner.load(tiny_model_dir, precision="bf16")
    assert captioner.precision == "fp32"
    assert captioner.model.dtype == torch.float32
    fallback_lines = [record for record in caplog.records if "bf16" in record.getMessage()]
    assert len(fallback_lines) == 1


def test_threads_follow_the_cpus_the_process_may_use(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, restore_torch_threads: None
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    Captioner.load(tiny_model_dir)
    assert torch.get_num_threads() == 1
    Captioner.load(tiny_model_dir, num_threads=2)
    assert torch.get_num_threads() == 2


def test_precisions_are_the_documented_three() -> None:
    assert PRECISIONS == ("fp32", "bf16", "int8")


def test_the_vit_gpt2_fast_path_refuses_a_prompt_naming_it(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="prompt 'a photo of' is not supported.*caption without a prompt"):
        Captioner.load(tiny_model_dir, prompt="a photo of")
    assert Captioner.load(tiny_model_dir, prompt="").runtime == "torch"  # empty = unset


def test_generation_settings_default_to_the_models_generation_config(tiny_model_dir: Path) -> None:
    captioner = Captioner.load(tiny_model_dir)
    assert (captioner.runtime, captioner.num_beams, captioner.max_length) == ("torch", 3, 12)


def _without_generation_settings(model_dir: Path, target: Path, *, keep_file: bool) -> Path:
    """A copy of `model_dir` whose generation config sets neither num_beams nor max_length (or, without
    `keep_file`, that has no generation_config.json: transformers derives one from config.json)."""
    shutil.copytree(model_dir, target)
    path = target / "generation_config.json"
    if keep_file:
        saved = json.loads(path.read_text())
        path.write_text(json.dumps({k: v for k, v in saved.items() if k not in ("num_beams", "max_length")}))
    else:
        path.unlink()
    return target


@pytest.mark.parametrize("keep_file", [True, False], ids=["settings-unset", "no-generation-config"])
def test_fast_path_defaults_are_those_of_the_models_own_generate(
    tiny_model_dir: Path, tmp_path: Path, keep_file: bool
) -> None:
    model_dir = _without_generation_settings(tiny_model_dir, tmp_path / "unset", keep_file=keep_file)
    captioner = Captioner.load(model_dir)
    assert captioner._shared_cross_attention, "the ViT + GPT-2 fast path"
    # transformers' defaults: greedy, and 20 tokens after the decoder's start token.
    assert (captioner.num_beams, captioner.max_length) == (
        GENERATE_DEFAULT_NUM_BEAMS,
        1 + GENERATE_DEFAULT_NEW_TOKENS,
    )
    images = _noise_images(3, seed=4)
    processor = AutoImageProcessor.from_pretrained(model_dir, backend="pil")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = VisionEncoderDecoderModel.from_pretrained(model_dir).eval()
    with torch.inference_mode():
        generated = model.generate(processor(images=images, return_tensors="pt").pixel_values)
    expected = [text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True)]
    assert captioner.caption(images) == expected
    assert Captioner.load(model_dir, num_beams=2, max_length=6).caption(images) == _plain_fp32_captions(
        model_dir, images, 2, 6
    ), "num_beams / max_length still override"


def test_images_in_other_modes_are_captioned_as_their_rgb_conversion(tiny_captioner: Captioner) -> None:
    """Grey, palette and RGBA images as Captioner.load's callers may pass them (the function converts
    uploads itself; the core must not depend on that)."""
    rgb = _noise_images(3, seed=5)
    others = [rgb[0].convert("L"), rgb[1].convert("P"), rgb[2].convert("RGBA")]
    expected = tiny_captioner.caption([image.convert("RGB") for image in others])
    assert tiny_captioner.caption(others) == expected
