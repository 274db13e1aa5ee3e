"""Fast checks of the ONNX runtime's parts, no export: top-k ties, the exporter's refusals, runtime selection,
generation settings. The end-to-end checks on an exported tiny model are in test_onnx_runtime.py (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GPT2Config, VisionEncoderDecoderConfig, ViTConfig

from captioning.contract.model_files import ONNX_MANIFEST
from captioning.function import beam_search
from captioning.function.captioner import backend_for
from captioning.function.generation import (
    UnsupportedGeneration,
    generation_from_config,
    resolve_beams_and_length,
)
from captioning.function.onnx_captioner import clean_up_tokenization
from captioning.preparation.export import config_problems


def test_topk_equals_torch_topk_and_breaks_ties_towards_the_lower_index() -> None:
    """Without ties, exactly torch.topk. With ties torch's order is unspecified (measured on CPU: neither
    ascending nor stable), so the numpy top-k takes the lower index first, deterministically."""
    rng = np.random.default_rng(0)
    distinct = rng.permutation(40 * 6).astype(np.float32).reshape(6, 40) - 120.0
    wide = rng.standard_normal((3, 5000)).astype(np.float32)  # the partition path
    for scores, k in ((distinct, 8), (distinct, 40), (wide, 12)):
        values, indices = beam_search.topk(scores, k)
        expected_values, expected_indices = torch.topk(torch.from_numpy(scores), k)
        np.testing.assert_array_equal(values, expected_values.numpy())
        np.testing.assert_array_equal(indices, expected_indices.numpy())

    tied = rng.integers(0, 4, (6, 40)).astype(np.float32)
    tied_wide = rng.integers(0, 50, (3, 5000)).astype(np.float32)
    tied_wide[1, :] = -1.0e9  # everything tied, as the -1e9 masks make many scores
    for scores, k in ((tied, 8), (tied_wide, 12)):
        values, indices = beam_search.topk(scores, k)
        np.testing.assert_array_equal(values, torch.topk(torch.from_numpy(scores), k).values.numpy())
        for row_values, row_indices in zip(values, indices, strict=True):
            for value in np.unique(row_values):
                same = row_indices[row_values == value]
                assert list(same) == sorted(same)
        # within the tied value, the lowest indices are taken
        for row in range(len(scores)):
            last = values[row, -1]
            taken = indices[row][values[row] == last]
            assert list(taken) == list(np.flatnonzero(scores[row] == last)[: len(taken)])


def _ved_config(**decoder_options) -> VisionEncoderDecoderConfig:
    encoder = ViTConfig(
        image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2
    )
    decoder = GPT2Config(n_embd=16, n_layer=1, n_head=2, add_cross_attention=True, is_decoder=True)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    for name, value in decoder_options.items():
        setattr(config.decoder, name, value)
    return config


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
        ({"reorder_and_upcast_attn": True}, "reorder_and_upcast_attn"),
        ({"activation_function": "silu"}, "activation 'silu'"),
        ({"add_cross_attention": False}, "without cross-attention"),
        ({"cross_attention_hidden_size": 32}, "cross_attention_hidden_size"),
        ({"model_type": "roberta"}, "decoder 'roberta'"),
    ],
)
def test_the_exporter_names_what_it_cannot_reproduce(options: dict, named: str) -> None:
    problems = config_problems(_ved_config(**options))
    assert any(named in problem for problem in problems), problems


def test_other_families_and_encoders_are_refused() -> None:
    config = _ved_config()
    config.encoder.model_type = "swin"
    assert config_problems(config) == ["encoder 'swin' (supported: vit)"]
    pix2struct_like = type("Config", (), {"model_type": "pix2struct"})()
    assert "model family 'pix2struct'" in config_problems(pix2struct_like)[0]
    assert config_problems(_ved_config()) == []


def test_the_directory_chooses_the_runtime(tmp_path: Path) -> None:
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "config.json").write_text(
        json.dumps({"model_type": "vision-encoder-decoder", "decoder": {"model_type": "gpt2"}})
    )
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / ONNX_MANIFEST).write_text("{}")
    (tmp_path / "onnx" / "config.json").write_text((tmp_path / "torch" / "config.json").read_text())
    (tmp_path / "blip").mkdir()
    (tmp_path / "blip" / "config.json").write_text(json.dumps({"model_type": "blip"}))
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(
        json.dumps({"model_type": "vision-encoder-decoder", "decoder": {"model_type": "bert"}})
    )

    assert [backend_for(tmp_path / name) for name in ("onnx", "torch", "blip", "bert")] == [
        "onnx",
        "torch",
        "generic",
        "generic",
    ]
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        backend_for(tmp_path / "nowhere")


def test_generation_settings_come_from_the_caller_then_the_model_then_transformers_defaults() -> None:
    from transformers import GenerationConfig

    assert resolve_beams_and_length({"num_beams": 2, "max_length": 9}, None, None) == (2, 9)
    assert resolve_beams_and_length({"num_beams": 2, "max_length": 9}, 5, 20) == (5, 20)
    # Unset: what generate() does, greedy and 20 tokens after the decoder's start token(s).
    assert resolve_beams_and_length({}, None, None) == (1, 21)
    assert resolve_beams_and_length({}, None, None, input_length=3) == (1, 23)
    assert resolve_beams_and_length(GenerationConfig().to_dict(), None, None) == (1, 21)
    assert resolve_beams_and_length({"num_beams": 1, "max_new_tokens": 5}, None, None) == (1, 6)
    assert resolve_beams_and_length({"max_new_tokens": 5, "max_length": 30}, None, None) == (1, 6)
    assert resolve_beams_and_length({"max_new_tokens": 5}, None, 8) == (1, 8)
    settings = generation_from_config(
        {"eos_token_id": [5, 7], "decoder_start_token_id": 1, "early_stopping": None, "length_penalty": None},
        num_beams=None,
        max_length=None,
    )
    assert (settings.eos_token_ids, settings.pad_token_id, settings.early_stopping) == ((5, 7), 5, False)


def test_unsupported_generation_settings_are_named() -> None:
    with pytest.raises(UnsupportedGeneration, match="do_sample=True, num_beam_groups=2"):
        generation_from_config({"do_sample": True, "num_beam_groups": 2}, num_beams=None, max_length=None)
    with pytest.raises(UnsupportedGeneration, match="num_beams must be a positive integer; got 0"):
        resolve_beams_and_length({}, 0, None)
    # transformers 5 writes None for settings left at their default: those change nothing.
    generation_from_config({"do_sample": None, "bos_token_id": 0}, num_beams=None, max_length=None)


def test_clean_up_is_transformers_clean_up() -> None:
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    text = "a dog , isn't it ? they 're here ! it 's one . we 've I 'm"
    assert clean_up_tokenization(text) == PreTrainedTokenizerBase.clean_up_tokenization(None, text)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--runtime", "tflite"], "--runtime must be one of onnx, torch; got 'tflite'"),
        (
            ["--precision", "bf16"],
            "--precision 'bf16' is not available with --runtime onnx; allowed: fp32, int8",
        ),
        (
            ["--half-precision-weights"],
            "--half-precision-weights (float16-stored weights) works only with --runtime torch",
        ),
        (["--source", "nowhere"], "--source nowhere: no model directory at nowhere (it does not exist)"),
    ],
)
def test_prepare_model_refuses_bad_options_in_one_line(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from captioning.preparation.__main__ import main

    assert main(["--output", str(tmp_path / "out"), *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_manifests_name_their_family_and_graphs_and_format_1_reads_as_vit_gpt2(tmp_path: Path) -> None:
    from captioning.contract.model_files import missing_model_files
    from captioning.function.onnx_captioner import read_manifest
    from captioning.function.onnx_family import UnsupportedFamily, runtime_class

    old, new = tmp_path / "old", tmp_path / "new"
    for directory in (old, new):
        directory.mkdir()
        (directory / "tokenizer.json").write_text("{}")
    (old / ONNX_MANIFEST).write_text(json.dumps({"format": 1, "precision": "fp32"}))
    graphs = {"encoder": "vision.onnx", "decoder": "step.onnx"}
    (new / ONNX_MANIFEST).write_text(json.dumps({"format": 2, "family": "blip", "graphs": graphs}))

    assert (read_manifest(old)["family"], read_manifest(old)["graphs"]) == (
        "vit-gpt2",
        {"encoder": "encoder.onnx", "decoder": "decoder_step.onnx"},
    )
    assert missing_model_files(old) == ["encoder.onnx", "decoder_step.onnx"]
    assert missing_model_files(new) == ["vision.onnx", "step.onnx"]
    (new / "vision.onnx").write_bytes(b"")
    assert missing_model_files(new) == ["step.onnx"]
    assert runtime_class("blip").takes_prompt and not runtime_class("vit-gpt2").takes_prompt
    with pytest.raises(UnsupportedFamily, match="ONNX family 'pix2struct' is not known"):
        runtime_class("pix2struct")
    (new / ONNX_MANIFEST).write_text(json.dumps({"format": 3}))
    with pytest.raises(ValueError, match="format 3, this runtime reads 1, 2"):
        read_manifest(new)
