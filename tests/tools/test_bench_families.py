"""The benchmark's families stage (bench/families.py) on tiny models: the real stage (build, export with
`python -m captioning.preparation`, a fresh process per pipeline), its JSON keys, ratios recomputed
from the measured figures by hand, the command line and its merge into results.json."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import families, family_report
from bench.family_report import family_summary

REPO_ROOT = Path(__file__).resolve().parents[2]
FIGURE_KEYS = {
    f"{pipeline}_{figure}" for pipeline in family_report.PIPELINES for figure in family_report.FIGURES
}
RATIO_KEYS = {f"{prefix}{suffix}" for prefix in ("onnx_", "onnx_int8_") for suffix in family_report.RATIOS}
ORIGINAL_DESIGN_KEYS = {
    "onnx_cold_start_seconds_ratio_vs_original_design",
    "onnx_int8_cold_start_seconds_ratio_vs_original_design",
}


@pytest.fixture(scope="module")
def tiny_families(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The stage itself on a tiny BLIP (this venv's interpreter for both sides; the page cache
    is not dropped: a test must not empty the shared machine's cache)."""
    cache = tmp_path_factory.mktemp("bench-families")
    python = Path(sys.executable)
    return families.run_families(
        ["blip"],
        cache,
        tiny=True,
        pythons={"torch": python, "onnx": python},
        drop_cache=False,
        log=lambda *args: None,
    )


def _first(summary: dict, pipeline: str) -> dict:
    return summary["raw"]["rounds"][pipeline][0]


def test_every_family_has_the_figures_and_ratios(tiny_families: dict) -> None:
    assert set(tiny_families) == {"blip"}
    summary = tiny_families["blip"]
    assert FIGURE_KEYS | RATIO_KEYS <= set(summary)
    # Bytes read from disk depend on the page cache, which this test does not drop: with the torch side's
    # files already cached it reads nothing and a bytes ratio has no denominator (None, not a division by 0).
    bytes_ratios = {key for key in RATIO_KEYS if key.endswith("cold_start_bytes_ratio")}
    nothing_read = summary["torch_fp32_read_bytes"] == 0
    expected_none = bytes_ratios if nothing_read else set()
    assert {key for key in FIGURE_KEYS | RATIO_KEYS if summary[key] is None} == expected_none
    assert set(summary["targets_met"]) == set(summary["targets"])
    assert all(isinstance(met, bool) for met in summary["targets_met"].values())
    assert not ORIGINAL_DESIGN_KEYS & set(summary)  # only the default model has the original design


def test_pipelines_ran_their_runtimes(tiny_families: dict) -> None:
    summary = tiny_families["blip"]
    assert _first(summary, "torch_fp32")["runtime"] == "torch"
    for pipeline in ("onnx_fp32", "onnx_int8"):
        assert _first(summary, pipeline)["runtime"] == "onnx"
        assert "torch" not in _first(summary, pipeline)["imported"]
    for pipeline in ("onnx_fp32", "onnx_int8"):
        calls = summary["raw"]["profile"][pipeline]["session_calls"]
        assert calls["encoder"] >= 1 and calls["decoder"] >= 2  # timed through the proxies
    assert summary["raw"]["captions"]["compared"] == 11
    # fp32 ONNX reproduces torch (the build verified it); forced lengths: same work on both sides.
    assert summary["raw"]["captions"]["onnx_fp32_same_as_torch_fp32"] == 11


def test_ratios_are_computed_from_the_measured_figures(tiny_families: dict) -> None:
    blip = tiny_families["blip"]
    torch, onnx, int8 = (_first(blip, p) for p in ("torch_fp32", "onnx_fp32", "onnx_int8"))
    assert blip["onnx_cold_start_seconds_ratio"] == round(onnx["cold_start_s"] / torch["cold_start_s"], 4)
    assert blip["onnx_int8_throughput_ratio"] == round(int8["images_per_s"] / torch["images_per_s"], 4)
    assert blip["onnx_peak_rss_ratio"] == round(onnx["peak_rss_bytes"] / torch["peak_rss_bytes"], 4)
    expected_bytes_ratio = round(int8["read_bytes"] / torch["read_bytes"], 4) if torch["read_bytes"] else None
    assert blip["onnx_int8_cold_start_bytes_ratio"] == expected_bytes_ratio
    assert blip["torch_fp32_images_per_s"] == torch["images_per_s"] == 10 / torch["batch_s"]
    assert blip["targets_met"]["onnx_int8_throughput_ratio"] == (blip["onnx_int8_throughput_ratio"] >= 1.5)


def _run(cold_start_s: float, images_per_s: float, peak_rss_mb: float) -> dict:
    return {
        "cold_start_s": cold_start_s,
        "read_bytes": 1_000_000,
        "peak_rss_bytes": peak_rss_mb * 2**20,
        "images_per_s": images_per_s,
        "latency_s": 1.0,
        "import_s": 0.1,
        "load_s": 0.5,
        "first_inference_s": cold_start_s - 0.6,
        "batch_s": 10 / images_per_s,
    }


def test_medians_targets_and_missing_sides() -> None:
    rounds = {
        "torch_fp32": [_run(10.0, 1.0, 1000), _run(12.0, 1.0, 1000), _run(30.0, 1.0, 1000)],
        "onnx_fp32": [_run(3.0, 1.2, 1100), _run(4.0, 1.1, 1100), _run(5.0, 0.1, 1100)],
        "onnx_int8": [_run(1.0, 2.0, 500)] * 3,
    }
    summary = family_summary("git", rounds)
    assert summary["torch_fp32_cold_start_seconds"] == 12.0  # the median, not the mean
    assert summary["onnx_cold_start_seconds_ratio"] == round(4.0 / 12.0, 4)
    assert summary["targets_met"]["onnx_cold_start_seconds_ratio"] is True  # 0.333 <= 0.35
    assert summary["targets_met"]["onnx_throughput_ratio"] is True  # 1.1 >= 1.0
    assert summary["targets_met"]["onnx_peak_rss_ratio"] is False  # 1.1 > 1.0
    assert summary["targets_met"]["onnx_int8_cold_start_seconds_ratio"] is True  # 1/12
    default = family_summary("vit-gpt2", rounds, original_design_cold_start_s=10.0)
    assert default["onnx_int8_cold_start_seconds_ratio_vs_original_design"] == 0.1
    assert default["targets_met"]["onnx_int8_cold_start_seconds_ratio_vs_original_design"] is True
    assert default["targets_met"]["onnx_cold_start_seconds_ratio_vs_original_design"] is False  # 0.4 > 0.30
    missing = family_summary("vit-gpt2", {"torch_fp32": rounds["torch_fp32"]})
    assert missing["onnx_throughput_ratio"] is None
    assert missing["targets_met"]["onnx_throughput_ratio"] is None
    assert missing["onnx_cold_start_seconds_ratio_vs_original_design"] is None
    table = family_report.markdown_families({"git": summary})
    assert "| git | cold start (s) | 12.000 | 4.000 | 1.000 | 0.333× (met) | 0.083× (met) |" in table


def test_command_runs_one_family_and_keeps_the_rest_of_results(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "results.json").write_text(
        json.dumps({"throughput_ratio": 3.0, "raw": {"cold_start": {"baseline": {"total_s": 6.0}}}})
    )
    calls = []

    def fake_run(names, cache_dir, **options):
        calls.append((names, options["original_design_cold_start_s"]))
        return {name: {"onnx_throughput_ratio": 2.0} for name in names}

    monkeypatch.setattr(families, "run_families", fake_run)
    families.main(["--family", "blip", "--output-dir", str(tmp_path), "--cache-dir", str(tmp_path)])
    families.main(["--family", "git", "--output-dir", str(tmp_path), "--cache-dir", str(tmp_path)])
    written = json.loads((tmp_path / "results.json").read_text())
    assert calls == [(["blip"], 6.0), (["git"], 6.0)]
    assert written["throughput_ratio"] == 3.0
    assert set(written["families"]) == {"blip", "git"}


def test_a_family_without_a_full_size_model_is_a_usage_error() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "families", "--family", "idefics3"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    assert "no full-size model for idefics3" in completed.stderr
    assert "Traceback" not in completed.stderr
