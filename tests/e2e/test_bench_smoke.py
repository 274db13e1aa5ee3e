"""The benchmark end to end on a tiny model, figures meaningless (its logic: tests/tools/test_bench.py)."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import json

from tests.tools.test_bench import ONNX_KEYS, REQUIRED_KEYS


def test_a_tiny_end_to_end_run_prints_every_key_on_its_last_line(tmp_path, monkeypatch, capsys) -> None:
    """The real benchmark code path on a tiny model (figures meaningless): cold starts in fresh
    processes, warm rounds, ONNX export when the exporter is there, no Docker, no cache dropping."""
    import sys

    import bench.__main__ as bench_main
    from bench import coldstart

    monkeypatch.setattr(bench_main, "ensure_env", lambda *args, **kwargs: sys.executable)
    monkeypatch.setattr(bench_main, "ensure_onnx_env", lambda *args, **kwargs: sys.executable)
    monkeypatch.setattr(coldstart, "_empty_cache", lambda *args: None)

    summary = bench_main.main(
        [
            "--model-size",
            "tiny",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--output-dir",
            str(tmp_path / "out"),
            "--repeats",
            "1",
            "--cold-repeats",
            "1",
            "--no-images",
            "--no-families",  # the families stage has its own test: tests/tools/test_bench_families.py
        ]
    )

    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert REQUIRED_KEYS | ONNX_KEYS <= line.keys()
    assert line["throughput_ratio"] > 0 and line["peak_rss_ratio"] > 0
    assert line["raw"]["images"] == {"available": False, "note": "skipped (--no-images)"}
    assert (tmp_path / "out" / "results.json").exists() and (tmp_path / "out" / "results.png").exists()
    cold = summary["raw"]["cold_start"]
    assert cold["baseline"]["peak_rss_bytes"] != cold["project"]["peak_rss_bytes"]
    if summary["raw"]["onnx"]["exported"]:  # the exporter has landed: the ONNX figures are measured
        # Bytes read can be 0 here (the page cache is not dropped in a test): those ratios may be None.
        timed = {key for key in ONNX_KEYS if "bytes" not in key}
        unmeasured = [key for key in timed if line[key] is None]
        assert not unmeasured, summary["raw"]["onnx"]
        assert "torch" not in cold["onnx"]["imported"] and "onnxruntime" in cold["onnx"]["imported"]
    else:
        assert all(line[key] is None for key in ONNX_KEYS)
        assert summary["raw"]["onnx"]["notes"]
