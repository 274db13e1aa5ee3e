"""The sizing check holds to what the benchmark measured (bench/results.json, docs/performance.md "Sizing
and cost"): every size the function image ran out of memory or timed out at is refused, for each
runtime, precision and trigger mode; the smallest size that worked is accepted wherever the runs
covered the setting; beyond that the estimate applies, never below the measured floor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.container import smallest_memory_without_oom
from bench.model import TINY_GPT2_SHAPE, TINY_VIT_SHAPE, build_config
from captioning.component import measured_memory, model_sizing
from captioning.component.model_check import check_model_fits
from captioning.component.model_sizing import memory_errors
from captioning.component.settings import PipelineSettings
from captioning.component.validation import InvalidSettingError

REPO = Path(__file__).resolve().parents[2]
RESULTS = json.loads((REPO / "bench" / "results.json").read_text(encoding="utf-8"))
LAMBDA_SIZES: dict[str, list[dict]] = RESULTS["raw"]["images"]["lambda_sizes"]
VIT_GPT2 = "nlpconnect/vit-gpt2-image-captioning"


@pytest.fixture(autouse=True)
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_sizing, "_note", lambda message: None)
    monkeypatch.setattr(model_sizing, "_hub_reachable", lambda: False)


def _runtime_precision(configuration: str) -> tuple[str, str]:
    """bench/container.py's names: torch, torch_int8, onnx, onnx_int8 (no suffix: fp32)."""
    runtime, _, precision = configuration.partition("_")
    return runtime, precision or "fp32"


def _outcome(run: dict) -> str:
    if "batch_s" in run:
        return measured_memory.WORKS
    if run.get("oom_killed"):
        return measured_memory.OUT_OF_MEMORY
    assert run.get("timed_out"), f"a run neither working, OOM nor timed out: {run}"
    return measured_memory.TIMED_OUT


def _measured_batch(runs: list[dict]) -> int:
    (batch,) = {run["batch_size"] for run in runs if "batch_s" in run}
    return batch


MEASURED = [(name, *_runtime_precision(name), runs) for name, runs in sorted(LAMBDA_SIZES.items())]


def _args(**settings) -> PipelineSettings:
    """Settings changed after creation: memory_errors / check_model_fits are called explicitly below."""
    args = PipelineSettings()
    for name, value in settings.items():
        setattr(args, name, value)
    return args


def _trigger_modes(largest_batch: int) -> list[dict]:
    """Direct mode, and queue batches from 1 to the batch the runs captioned in one call."""
    queue = [
        {"trigger": "queue", "batch_size": size, "batching_window": 1} for size in range(1, largest_batch + 1)
    ]
    return [{"trigger": "direct"}, *queue]


def test_the_results_cover_every_image_configuration_of_the_full_size_model() -> None:
    assert RESULTS["raw"]["model_size"] == "full"
    assert {(runtime, precision) for _, runtime, precision, _ in MEASURED} == {
        ("torch", "fp32"),
        ("torch", "int8"),
        ("onnx", "fp32"),
        ("onnx", "int8"),
    }


@pytest.mark.parametrize(("name", "runtime", "precision", "runs"), MEASURED, ids=[row[0] for row in MEASURED])
def test_the_packaged_table_is_the_benchmarks(
    name: str, runtime: str, precision: str, runs: list[dict]
) -> None:
    sizes = measured_memory.measured(VIT_GPT2, runtime, precision)
    assert sizes is not None, f"{name} measured but not in captioning.component.measured_memory"
    assert sizes.outcomes == tuple(sorted((run["memory_mb"], _outcome(run)) for run in runs))
    assert sizes.images_per_call == _measured_batch(runs)
    assert (
        sizes.floor_mb
        == smallest_memory_without_oom(runs)
        == RESULTS["raw"]["images"]["smallest_memory_mb"][name]
    )


@pytest.mark.parametrize(("name", "runtime", "precision", "runs"), MEASURED, ids=[row[0] for row in MEASURED])
def test_every_size_measured_out_of_memory_or_timed_out_is_refused_in_every_trigger_mode(
    name: str, runtime: str, precision: str, runs: list[dict]
) -> None:
    floor = smallest_memory_without_oom(runs)
    failed = [run for run in runs if "batch_s" not in run]
    assert failed or name == "torch", "the benchmark's failures are what this test is for"
    for run in failed:
        outcome = _outcome(run)
        for mode in [
            *_trigger_modes(_measured_batch(runs)),
            {"trigger": "queue", "batch_size": 20, "batching_window": 1},
        ]:
            args = _args(runtime=runtime, precision=precision, memory_size=run["memory_mb"], **mode)
            errors = list(memory_errors(args))
            assert len(errors) == 1, (
                f"{name} at {run['memory_mb']} MB, {mode}: accepted, but measured {outcome}"
            )
            message = str(errors[0])
            assert errors[0].setting == "memory_size"
            assert f"measured {outcome} at {run['memory_mb']:,} MB" in message
            assert "docs/performance.md" in message
            if mode.get("batch_size", 1) <= _measured_batch(runs):
                assert f"at least {floor:,} MB" in message


@pytest.mark.parametrize(("name", "runtime", "precision", "runs"), MEASURED, ids=[row[0] for row in MEASURED])
def test_the_smallest_measured_working_size_is_accepted_and_nothing_below_it(
    name: str, runtime: str, precision: str, runs: list[dict]
) -> None:
    floor = smallest_memory_without_oom(runs)
    for mode in _trigger_modes(_measured_batch(runs)):
        assert not list(
            memory_errors(_args(runtime=runtime, precision=precision, memory_size=floor, **mode))
        ), f"{name} at {floor} MB ({mode}) measured working but refused"
        below = list(
            memory_errors(_args(runtime=runtime, precision=precision, memory_size=floor - 1, **mode))
        )
        assert below and f"at least {floor:,} MB" in str(below[0])


@pytest.mark.parametrize(("name", "runtime", "precision", "runs"), MEASURED, ids=[row[0] for row in MEASURED])
def test_a_batch_larger_than_measured_gets_the_estimate_never_below_the_measured_floor(
    name: str, runtime: str, precision: str, runs: list[dict]
) -> None:
    floor = smallest_memory_without_oom(runs)
    footprint = model_sizing.model_footprint(_args())
    for batch in (_measured_batch(runs) + 1, 20, 40):
        args = _args(
            runtime=runtime, precision=precision, trigger="queue", batch_size=batch, batching_window=1
        )
        need = model_sizing.required_memory_mb(args, footprint)
        assert need.measured is not None and not need.measured.covers(batch)
        assert need.total == max(need.estimate_mb, floor) >= floor


def test_the_default_settings_at_1536_mb_are_refused_as_measured() -> None:
    """The issue's case: the default model, ONNX fp32, direct mode, 1,536 MB (estimated 1,330 MB)."""
    with pytest.raises(InvalidSettingError) as caught:
        check_model_fits(_args(memory_size=1536))
    message = str(caught.value)
    assert caught.value.setting == "memory_size"
    assert "measured out of memory at 1,536 MB" in message and "at least 2,048 MB" in message
    check_model_fits(_args(memory_size=2048))


def _prepared_directory(tmp_path: Path, config: dict, onnx: bool) -> Path:
    model_dir = tmp_path / "prepared"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(config))
    if onnx:
        (model_dir / "onnx_model.json").write_text("{}")
        (model_dir / "encoder.onnx").write_bytes(b"\0" * 2**20)
    else:
        header = json.dumps({"w": {"dtype": "F32", "shape": [16], "data_offsets": [0, 64]}}).encode()
        (model_dir / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 64)
    return model_dir


@pytest.mark.parametrize(
    ("runtime", "precision", "refused", "floor"),
    [("onnx", "fp32", 1769, 2048), ("torch", "int8", 1024, 1536)],
)
def test_a_prepared_directory_of_the_measured_architecture_is_held_to_the_measurements(
    tmp_path: Path, runtime: str, precision: str, refused: int, floor: int
) -> None:
    """The benchmark's own model config (the measured architecture) in a model directory: its tiny
    files would otherwise be estimated at a few hundred MB."""
    config = build_config().to_dict()
    model_dir = _prepared_directory(tmp_path, config, onnx=runtime == "onnx")
    settings = {"model_dir": str(model_dir), "runtime": runtime, "precision": precision}
    (error,) = memory_errors(_args(memory_size=refused, **settings))
    assert f"at least {floor:,} MB" in str(error) and f"at {refused:,} MB" in str(error)
    assert not list(memory_errors(_args(memory_size=floor, **settings)))


def test_another_architecture_in_a_directory_is_estimated_not_measured(tmp_path: Path) -> None:
    config = build_config(TINY_VIT_SHAPE, TINY_GPT2_SHAPE).to_dict()
    assert measured_memory.measured_architecture(config) is None
    model_dir = _prepared_directory(tmp_path, config, onnx=True)
    assert not list(memory_errors(_args(model_dir=str(model_dir), memory_size=1024)))
