"""captioning/component/model_sizing.py: memory sizes a model cannot run in are refused before deploy."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from captioning.component import model_sizing
from captioning.component.model_sizing import KNOWN_MODELS, memory_errors
from captioning.component.settings import PipelineSettings
from tests import real_architectures

VIT_GPT2 = "nlpconnect/vit-gpt2-image-captioning"
BLIP_BASE = "Salesforce/blip-image-captioning-base"
BLIP_LARGE = "Salesforce/blip-image-captioning-large"


@pytest.fixture(autouse=True)
def no_hub(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No test reaches the network; notes are collected instead of logged."""
    notes: list[str] = []
    monkeypatch.setattr(model_sizing, "_note", notes.append)
    monkeypatch.setattr(model_sizing, "_hub_reachable", lambda: False)
    return notes


def _args(**settings) -> PipelineSettings:
    """Args built without the hook's check (memory_errors is called explicitly below)."""
    args = PipelineSettings()
    for name, value in settings.items():
        setattr(args, name, value)
    return args


def _smallest(**settings) -> int:
    """The smallest memory memory_errors accepts, found by asking it (bisection over Lambda's range)."""
    low, high = 128, 10240
    assert not list(memory_errors(_args(memory_size=high, **settings))), "nothing fits"
    while low < high:
        middle = (low + high) // 2
        if list(memory_errors(_args(memory_size=middle, **settings))):
            low = middle + 1
        else:
            high = middle
    return low


def test_a_memory_the_model_cannot_fit_is_refused_naming_weights_and_the_smallest_that_fits() -> None:
    errors = list(
        memory_errors(_args(model_id=BLIP_BASE, runtime="torch", precision="fp32", memory_size=1024))
    )
    assert len(errors) == 1
    error = errors[0]
    smallest = _smallest(model_id=BLIP_BASE, runtime="torch", precision="fp32")
    assert error.setting == "memory_size" and error.value == 1024
    assert f"at least {smallest:,} MB, the smallest memory that fits {BLIP_BASE}" in str(error)
    assert "855 MB of weights (224 M parameters, torch fp32)" in str(error)  # 223,971,644 x 4 bytes
    assert not list(memory_errors(_args(model_id=BLIP_BASE, runtime="torch", memory_size=smallest)))
    assert list(memory_errors(_args(model_id=BLIP_BASE, runtime="torch", memory_size=smallest - 1)))


def test_runtime_and_precision_change_what_fits() -> None:
    torch_fp32 = _smallest(model_id=BLIP_LARGE, runtime="torch", precision="fp32")
    torch_bf16 = _smallest(model_id=BLIP_LARGE, runtime="torch", precision="bf16")
    torch_int8 = _smallest(model_id=BLIP_LARGE, runtime="torch", precision="int8")
    assert torch_int8 < torch_fp32 and torch_bf16 < torch_fp32
    # ViT + GPT-2 is sized by measurement (tests/unit/test_measured_memory.py); its estimates still order so
    estimate = {
        (runtime, precision): model_sizing.required_memory_mb(
            _args(runtime=runtime, precision=precision),
            model_sizing.model_footprint(_args(model_id=VIT_GPT2)),
        ).estimate_mb
        for runtime, precision in (("onnx", "fp32"), ("onnx", "int8"), ("torch", "fp32"))
    }
    assert estimate["onnx", "int8"] < estimate["onnx", "fp32"] < estimate["torch", "fp32"]


def test_a_queue_batch_is_captioned_in_one_call_so_its_activations_count() -> None:
    direct = _smallest(model_id=BLIP_LARGE, runtime="torch")
    queued = _smallest(model_id=BLIP_LARGE, runtime="torch", trigger="queue", batch_size=10)
    per_image = KNOWN_MODELS[BLIP_LARGE.lower()].more_image_mb
    assert queued - direct >= 9 * per_image
    error = next(
        memory_errors(_args(model_id=BLIP_LARGE, runtime="torch", trigger="queue", batch_size=10000))
    )
    assert "none fits" in str(error) and "lower batchSize" in str(error)


def test_a_family_the_onnx_runtime_does_not_export_is_refused_naming_torch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import huggingface_hub

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "blip-2"}))

    class FakeApi:
        def get_safetensors_metadata(self, model_id: str):
            return SimpleNamespace(parameter_count={"F32": 3_000_000_000})

        def hf_hub_download(self, model_id: str, filename: str) -> str:
            return str(config)

    monkeypatch.setattr(model_sizing, "_hub_reachable", lambda: True)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    error = next(memory_errors(_args(model_id="Salesforce/blip2-opt-2.7b", runtime="onnx")))
    assert error.setting == "runtime"
    assert "'torch' for Salesforce/blip2-opt-2.7b (a blip-2 model)" in str(error)
    assert "exports vision-encoder-decoder, blip, git, florence2, idefics3 models only" in str(error)


def test_smolvlm_is_sized_for_the_onnx_runtime_from_its_table_entry() -> None:
    assert not list(memory_errors(_args(model_id="HuggingFaceTB/SmolVLM-256M-Instruct", runtime="onnx")))


def test_blip_is_sized_for_the_onnx_runtime_from_its_table_entry() -> None:
    assert not list(memory_errors(_args(model_id=BLIP_LARGE, runtime="onnx", memory_size=10240)))
    need = model_sizing.required_memory_mb(
        _args(model_id=BLIP_LARGE, runtime="onnx", precision="int8"),
        model_sizing.model_footprint(_args(model_id=BLIP_LARGE)),
    )
    torch_need = model_sizing.required_memory_mb(
        _args(model_id=BLIP_LARGE, runtime="torch"), model_sizing.model_footprint(_args(model_id=BLIP_LARGE))
    )
    assert need.total < torch_need.total
    error = next(memory_errors(_args(model_id=BLIP_LARGE, runtime="onnx", memory_size=512)))
    assert error.setting == "memory_size" and "onnx fp32" in str(error)


def test_the_prepared_directory_is_sized_from_safetensors_headers(tmp_path: Path) -> None:
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "blip"}))
    # 300 M float16 parameters stored, as --half-precision-weights writes them: the torch runtime holds
    # them in float32
    tensors = {"a": torch.zeros(15_000, 10_000, dtype=torch.float16)}
    save_file(tensors, model_dir / "model-00001-of-00002.safetensors")
    save_file(
        {"b": torch.zeros(150_000_000, dtype=torch.float16)}, model_dir / "model-00002-of-00002.safetensors"
    )
    args = _args(model_dir=str(model_dir), runtime="torch", memory_size=1024)
    error = next(memory_errors(args))
    assert f"the model in {model_dir}: 1.12 GB of weights (300 M parameters, torch fp32)" in str(error)


def test_an_exported_onnx_directory_is_sized_from_its_graphs(tmp_path: Path) -> None:
    model_dir = tmp_path / "exported"
    model_dir.mkdir()
    (model_dir / "onnx_model.json").write_text("{}")
    (model_dir / "encoder.onnx").write_bytes(b"\0" * (3 * 2**20))
    (model_dir / "decoder.onnx").write_bytes(b"\0" * (5 * 2**20))
    footprint = model_sizing.model_footprint(_args(model_dir=str(model_dir)))
    assert footprint.weights_bytes == 8 * 2**20
    need = model_sizing.required_memory_mb(_args(runtime="onnx", precision="int8"), footprint)
    assert need.weights_mb == 8


def test_an_unknown_model_offline_skips_the_check_with_a_note(
    no_hub: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the handler's backends set it when imported
    assert not list(memory_errors(_args(model_id="acme/captioner", memory_size=128)))
    assert no_hub == [
        "acme/captioner is not in the sizing table and the Hub is unreachable: memory check skipped"
    ]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(model_sizing, "_hub_reachable", lambda: pytest.fail("offline: no connection attempt"))
    assert not list(memory_errors(_args(model_id="acme/captioner", memory_size=128)))
    assert "HF_HUB_OFFLINE is set" in no_hub[-1]


def test_an_unknown_model_is_sized_from_the_hubs_safetensors_metadata_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import huggingface_hub

    calls: list[str] = []
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "blip-2"}))

    class FakeApi:
        def get_safetensors_metadata(self, model_id: str):
            calls.append(f"metadata {model_id}")
            return SimpleNamespace(parameter_count={"F32": 1_000_000_000, "I64": 24})

        def hf_hub_download(self, model_id: str, filename: str) -> str:
            calls.append(f"download {filename}")
            return str(config)

    monkeypatch.setattr(model_sizing, "_hub_reachable", lambda: True)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    error = next(memory_errors(_args(model_id="acme/big-git", runtime="torch", memory_size=2048)))
    assert calls == ["metadata acme/big-git", "download config.json"], (
        "metadata and config only, never weights"
    )
    assert "3.73 GB of weights (1000 M parameters, torch fp32)" in str(error)
    onnx = next(memory_errors(_args(model_id="acme/big-git", runtime="onnx", memory_size=10240)))
    assert onnx.setting == "runtime", "the family from the Hub's config.json: a blip-2 model needs torch"


def test_a_hub_that_does_not_answer_in_time_skips_the_check(
    no_hub: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    class SlowApi:
        def get_safetensors_metadata(self, model_id: str):
            time.sleep(1.0)

    monkeypatch.setattr(model_sizing, "_hub_reachable", lambda: True)
    monkeypatch.setattr(model_sizing, "HUB_TIMEOUT_SECONDS", 0.1)
    monkeypatch.setattr(huggingface_hub, "HfApi", SlowApi)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert not list(memory_errors(_args(model_id="acme/slow", memory_size=128)))
    assert "did not answer" in no_hub[-1]


@pytest.mark.parametrize(
    "model_id", sorted({model_id for model_id in real_architectures.ARCHITECTURES if "coco" not in model_id})
)
def test_the_tables_parameter_counts_are_the_architectures(model_id: str) -> None:
    known = KNOWN_MODELS[model_id.lower()]
    assert known.parameters == real_architectures.parameter_count(model_id)
    assert known.family == real_architectures.ARCHITECTURES[model_id].family


def test_the_demo_model_fits_lambdas_smallest_memory_with_onnx() -> None:
    assert not list(memory_errors(_args(model_dir="models/demo-shapes", memory_size=128, runtime="onnx")))
