"""The benchmark's own logic, not timed: ratios, JSON keys, model shapes, inputs, chart. (The real code
path on a tiny model: tests/e2e/test_bench_smoke.py.)"""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import io
import json

import pytest
import torch
from PIL import Image

from bench import report
from bench.inputs import synthetic_photo_jpeg
from bench.model import (
    CAPTION_TOKENS,
    END_OF_TEXT_ID,
    GPT2_VOCAB_SIZE,
    build_config,
    build_generation_config,
    build_tokenizer,
    parameter_count,
)

REQUIRED_KEYS = {
    "throughput_ratio",
    "throughput_ratio_reduced_precision",
    "latency_ratio",
    "latency_ratio_reduced_precision",
    "cold_start_bytes_ratio",
    "cold_start_bytes_ratio_half_weights",
    "cold_start_seconds_ratio",
    "peak_rss_ratio",
    "cpu_model",
    "threads",
}
ONNX_KEYS = {
    "onnx_throughput_ratio",
    "onnx_int8_throughput_ratio",
    "onnx_latency_ratio",
    "onnx_int8_latency_ratio",
    "onnx_cold_start_seconds_ratio",
    "onnx_int8_cold_start_seconds_ratio",
    "onnx_cold_start_bytes_ratio",
    "onnx_int8_cold_start_bytes_ratio",
    "onnx_peak_rss_ratio",
    "image_libraries_bytes_ratio",
}


def _cold(total_s: float, read_bytes: int, peak_rss_bytes: int) -> dict:
    return {
        "import_s": 1.0,
        "load_s": 1.0,
        "first_inference_s": total_s - 2.0,
        "total_s": total_s,
        "read_bytes": read_bytes,
        "peak_rss_bytes": peak_rss_bytes,
    }


def _raw(baseline_env: bool = True, onnx: bool = True) -> dict:
    raw = {
        "machine": {"cpu_model": "Test CPU", "threads": 2},
        "baseline_env": baseline_env,
        "reduced_precision": "int8",
        "warm": {
            "baseline": {"latency_s": 2.0, "images_per_s": 0.5},
            "project": {"latency_s": 1.5, "images_per_s": 1.25},
            "project_reduced": {"latency_s": 0.8, "images_per_s": 2.5},
        },
        "cold_start": {
            "baseline": _cold(10.0, 2_000_000_000, 2_000_000_000),
            "project": _cold(4.0, 1_200_000_000, 2_100_000_000),
            "project_half_weights": _cold(3.0, 800_000_000, 2_100_000_000),
        },
        "images": {"available": False, "note": "no Docker engine answers"},
    }
    if onnx:
        raw["warm"]["onnx"] = {"latency_s": 1.0, "images_per_s": 2.25}
        raw["warm"]["onnx_int8"] = {"latency_s": 0.6, "images_per_s": 3.0}
        raw["cold_start"]["onnx"] = _cold(3.5, 1_100_000_000, 1_200_000_000)
        raw["cold_start"]["onnx_int8"] = _cold(2.0, 300_000_000, 400_000_000)
        raw["images"] = {"available": True, "library_bytes": {"onnx": 200_000_000, "torch": 1_000_000_000}}
    return raw


def test_summary_has_every_required_key_and_the_ratios_are_project_over_baseline() -> None:
    summary = report.build_summary(_raw())

    assert REQUIRED_KEYS <= summary.keys()
    assert summary["throughput_ratio"] == pytest.approx(1.25 / 0.5)
    assert summary["throughput_ratio_reduced_precision"] == pytest.approx(2.5 / 0.5)
    assert summary["latency_ratio"] == pytest.approx(1.5 / 2.0)
    assert summary["latency_ratio_reduced_precision"] == pytest.approx(0.8 / 2.0)
    assert summary["cold_start_bytes_ratio"] == pytest.approx(0.6)
    assert summary["cold_start_bytes_ratio_half_weights"] == pytest.approx(0.4)
    assert summary["cold_start_seconds_ratio"] == pytest.approx(0.4)
    assert summary["peak_rss_ratio"] == pytest.approx(1.05)
    assert summary["cpu_model"] == "Test CPU" and summary["threads"] == 2
    assert summary["raw"]["warm"]["baseline"]["latency_s"] == 2.0


def test_onnx_ratios_are_each_onnx_pipeline_over_the_original_design() -> None:
    summary = report.build_summary(_raw())

    assert ONNX_KEYS <= summary.keys()
    assert summary["onnx_throughput_ratio"] == pytest.approx(2.25 / 0.5)
    assert summary["onnx_int8_throughput_ratio"] == pytest.approx(3.0 / 0.5)
    assert summary["onnx_latency_ratio"] == pytest.approx(1.0 / 2.0)
    assert summary["onnx_int8_latency_ratio"] == pytest.approx(0.6 / 2.0)
    assert summary["onnx_cold_start_seconds_ratio"] == pytest.approx(3.5 / 10.0)
    assert summary["onnx_int8_cold_start_seconds_ratio"] == pytest.approx(2.0 / 10.0)
    assert summary["onnx_cold_start_bytes_ratio"] == pytest.approx(0.55)
    assert summary["onnx_int8_cold_start_bytes_ratio"] == pytest.approx(0.15)
    assert summary["onnx_peak_rss_ratio"] == pytest.approx(0.6)
    assert summary["image_libraries_bytes_ratio"] == pytest.approx(0.2)
    # Existing keys keep their meaning: the PyTorch pipelines over the original design.
    assert summary["throughput_ratio"] == pytest.approx(2.5)
    assert summary["peak_rss_ratio"] == pytest.approx(1.05)


def test_onnx_targets_are_issue_10s() -> None:
    met = report.build_summary(_raw())["targets_met"]

    assert met["onnx_throughput_ratio"] is True  # 4.5 >= 4.0
    assert met["onnx_int8_throughput_ratio"] is False  # 6.0 < 6.5
    assert met["onnx_latency_ratio"] is True  # 0.5 <= 0.6
    assert met["onnx_int8_latency_ratio"] is True  # 0.3 <= 0.35
    assert met["onnx_cold_start_seconds_ratio"] is True  # 0.35 <= 0.40
    assert met["onnx_int8_cold_start_seconds_ratio"] is True  # 0.2 <= 0.25
    assert met["onnx_cold_start_bytes_ratio"] is False  # 0.55 > 0.50
    assert met["onnx_int8_cold_start_bytes_ratio"] is True  # 0.15 <= 0.20
    assert met["onnx_peak_rss_ratio"] is True  # 0.6 <= 1.0
    assert met["image_libraries_bytes_ratio"] is True  # 0.2 <= 0.25
    assert report.target_met("onnx_peak_rss_ratio", 1.01) is False
    assert report.target_met("image_libraries_bytes_ratio", 0.26) is False


def test_onnx_and_image_keys_are_present_but_unavailable_when_not_measured() -> None:
    summary = report.build_summary(_raw(onnx=False))
    line = json.loads(report.summary_line(summary))

    assert ONNX_KEYS <= line.keys()
    assert all(line[key] is None for key in ONNX_KEYS)
    assert all(line["targets_met"][key] is None for key in ONNX_KEYS)
    assert line["throughput_ratio"] == pytest.approx(2.5)


def test_targets_are_judged_in_the_right_direction() -> None:
    met = report.build_summary(_raw())["targets_met"]

    assert met["throughput_ratio"] is True  # 2.5 >= 2.0
    assert met["throughput_ratio_reduced_precision"] is True  # 5.0 >= 4.0
    assert met["latency_ratio"] is True  # 0.75 <= 0.9
    assert met["latency_ratio_reduced_precision"] is True  # 0.4 <= 0.5
    assert met["cold_start_bytes_ratio"] is True  # 0.6 <= 0.65
    assert met["peak_rss_ratio"] is True  # 1.05 <= 1.1
    assert report.target_met("throughput_ratio", 1.9) is False
    assert report.target_met("latency_ratio", 0.95) is False
    assert report.target_met("cold_start_bytes_ratio_half_weights", 0.46) is False


def test_cold_start_ratios_are_unavailable_without_the_baseline_env() -> None:
    summary = report.build_summary(_raw(baseline_env=False))

    assert summary["cold_start_bytes_ratio"] is None
    assert summary["cold_start_bytes_ratio_half_weights"] is None
    assert summary["cold_start_seconds_ratio"] is None
    assert summary["onnx_cold_start_seconds_ratio"] is None
    assert summary["onnx_int8_cold_start_bytes_ratio"] is None
    assert summary["onnx_peak_rss_ratio"] == pytest.approx(0.6)  # same interpreter for both: comparable
    assert summary["targets_met"]["cold_start_bytes_ratio"] is None
    assert summary["throughput_ratio"] == pytest.approx(2.5)


def test_summary_line_is_one_line_of_json() -> None:
    line = report.summary_line(report.build_summary(_raw()))

    assert "\n" not in line
    assert REQUIRED_KEYS <= json.loads(line).keys()


def test_table_and_chart_render(tmp_path) -> None:
    from rich.console import Console

    summary = report.build_summary(_raw())
    console = Console(file=io.StringIO(), width=160)
    console.print(report.render_table(summary))
    text = console.file.getvalue()
    assert "throughput" in text and "2.500×" in text
    assert "ONNX int8" in text and "6.000×" in text and "image library layers" in text

    chart = tmp_path / "results.png"
    report.draw_chart(summary, chart)
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.width > 400


def test_model_config_has_the_nlpconnect_vit_gpt2_shapes() -> None:
    from transformers import VisionEncoderDecoderModel

    config = build_config()
    encoder, decoder = config.encoder, config.decoder
    assert (encoder.model_type, encoder.hidden_size, encoder.num_hidden_layers) == ("vit", 768, 12)
    assert (encoder.image_size, encoder.patch_size, encoder.num_attention_heads) == (224, 16, 12)
    assert encoder.intermediate_size == 3072
    assert (decoder.model_type, decoder.n_embd, decoder.n_layer, decoder.n_head) == ("gpt2", 768, 12, 12)
    assert decoder.vocab_size == GPT2_VOCAB_SIZE == 50257
    assert decoder.add_cross_attention and decoder.is_decoder
    assert config.decoder_start_token_id == config.eos_token_id == END_OF_TEXT_ID

    with torch.device("meta"):  # shapes only: no 239M-parameter allocation in a test
        model = VisionEncoderDecoderModel(config=config)
    assert 238_000_000 < parameter_count(model) < 240_000_000


def test_generation_config_forces_every_token_with_four_beams() -> None:
    generation = build_generation_config()

    assert generation.min_length == generation.max_length == CAPTION_TOKENS == 16
    assert generation.num_beams == 4


def test_tokenizer_decodes_and_ends_with_end_of_text() -> None:
    tokenizer = build_tokenizer(vocab_size=300)

    assert len(tokenizer) == 300
    assert tokenizer.eos_token_id == 299
    assert tokenizer.decode([3, 17, 299], skip_special_tokens=True) == "w3 w17"


def test_inputs_are_deterministic_jpegs() -> None:
    first = synthetic_photo_jpeg((160, 120), seed=3)

    assert first == synthetic_photo_jpeg((160, 120), seed=3)
    assert first != synthetic_photo_jpeg((160, 120), seed=4)
    with Image.open(io.BytesIO(first)) as image:
        assert (image.format, image.size) == ("JPEG", (160, 120))


def test_sizing_follows_lambdas_memory_to_cpu_rules_and_prices() -> None:
    from bench import sizing

    assert [sizing.vcpus_for(mb) for mb in (128, 3008, 3009, 5308, 7077, 8846, 10240)] == [
        2,
        2,
        3,
        4,
        5,
        6,
        6,
    ]
    with pytest.raises(ValueError, match="128-10240 MB"):
        sizing.vcpus_for(20000)
    assert sizing.seconds_at(1769, 1.0) == pytest.approx(2.0)  # one vCPU's worth: half the measured CPU
    assert sizing.seconds_at(4096, 1.0) == pytest.approx(1.0)  # no speed-up assumed past 2 full vCPUs
    # 1,000 images x 0.5 s x 2 GB = 1,000 GB-s, plus 100 requests.
    assert sizing.cost_per_thousand(2048, 0.5, 10, "x86_64") == pytest.approx(
        1000 * 0.0000166667 + 100 * 0.2e-6
    )


def _child_peak(megabytes: int) -> int:
    """A fresh interpreter that touches ``megabytes`` of memory and reports its peak as the bench does."""
    import subprocess  # noqa: S404
    import sys

    code = (
        "from bench.memory import peak_rss_bytes\n"
        f"block = bytearray(b'x') * ({megabytes} * 1024 * 1024)\n"
        "print(peak_rss_bytes())\n"
    )
    completed = subprocess.run(  # noqa: S603  our own interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return int(completed.stdout.strip())


def test_each_cold_start_process_reports_its_own_peak_memory_not_its_parents() -> None:
    from bench.memory import peak_rss_bytes

    # Make this (parent) process larger than both children: ru_maxrss would hand them this figure.
    ballast = bytearray(b"x") * (400 * 1024 * 1024)
    parent_peak = peak_rss_bytes()

    small, large = _child_peak(8), _child_peak(160)

    assert len(ballast) and parent_peak > 400 * 1024 * 1024
    assert small < large < parent_peak
    assert large - small > 120 * 1024 * 1024


def test_the_cold_start_child_measures_peak_memory_with_vmhwm() -> None:
    import inspect

    from bench import coldstart_child

    source = inspect.getsource(coldstart_child)
    assert "ru_maxrss" not in source and "peak_rss()" in source


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--repeats", "0"], "argument --repeats: must be at least 1, got 0"),
        (["--repeats", "-3"], "argument --repeats: must be at least 1, got -3"),
        (["--cold-repeats", "0"], "argument --cold-repeats: must be at least 1, got 0"),
        (["--cold-repeats", "two"], "argument --cold-repeats: expected a whole number, got 'two'"),
    ],
)
def test_bench_refuses_bad_arguments_before_any_work(arguments, message, tmp_path, capsys) -> None:
    from bench.__main__ import main

    cache = tmp_path / "cache"
    with pytest.raises(SystemExit) as exit_info:
        main(["--cache-dir", str(cache), "--output-dir", str(tmp_path / "out"), *arguments])

    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not cache.exists()  # nothing built, nothing downloaded


def test_bench_refuses_an_output_dir_that_is_a_file(tmp_path, capsys) -> None:
    from bench.__main__ import parse_args

    occupied = tmp_path / "results.json"
    occupied.write_text("{}")
    with pytest.raises(SystemExit):
        parse_args(["--output-dir", str(occupied / "sub")])

    assert f"argument --output-dir: {occupied} exists and is not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["bench.report", "bench.sizing"])
def test_report_and_sizing_help_and_missing_files_are_usage_messages(module, tmp_path) -> None:
    import subprocess  # noqa: S404
    import sys

    def run(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603  our own interpreter, fixed arguments
            [sys.executable, "-m", module, *arguments], capture_output=True, text=True, check=False
        )

    helped = run("--help")
    assert helped.returncode == 0 and f"usage: python -m {module}" in helped.stdout

    missing = run(str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "nope.json: no such file" in missing.stderr

    (tmp_path / "other.json").write_text('{"a": 1}')
    wrong = run(str(tmp_path / "other.json"))
    assert wrong.returncode == 2 and "not a benchmark summary" in wrong.stderr


def test_lambda_memory_sizes_are_validated_and_get_lambdas_cpu_share(capsys) -> None:
    from bench import container
    from bench.__main__ import parse_args

    assert parse_args(["--lambda-memory", "3538,1024,1769"]).lambda_memory == (1024, 1769, 3538)
    assert container.cpus_for(1769, cores=2) == 1.0
    assert container.cpus_for(1024, cores=2) == pytest.approx(0.579, abs=1e-3)
    assert container.cpus_for(10240, cores=2) == 2  # never more than the machine has
    for bad in ("0", "64,1024", "20000", "1024,lots", ""):
        with pytest.raises(SystemExit):
            parse_args(["--lambda-memory", bad])
        assert "argument --lambda-memory" in capsys.readouterr().err


def test_smallest_memory_is_the_smallest_size_above_every_oom() -> None:
    from bench.container import smallest_memory_without_oom

    def run(memory_mb: int, ok: bool) -> dict:
        return {"memory_mb": memory_mb, **({"batch_s": 1.0} if ok else {"oom_killed": True})}

    assert smallest_memory_without_oom([run(1024, False), run(1536, True), run(2048, True)]) == 1536
    assert smallest_memory_without_oom([run(1024, True), run(1536, True)]) == 1024
    assert smallest_memory_without_oom([run(1024, True), run(1536, False), run(2048, True)]) == 2048
    assert smallest_memory_without_oom([run(1024, False), run(2048, False)]) is None


def test_library_layers_are_the_requirements_installs() -> None:
    from bench.container import is_library_layer, is_model_layer

    assert is_library_layer(
        "RUN /bin/sh -c pip install --no-cache-dir --no-deps -r /tmp/requirements-onnx.txt"
    )
    assert not is_library_layer("COPY captioning/function/*.py /var/task/handler/")
    assert not is_library_layer("RUN /bin/sh -c python -m compileall -q /var/task/handler")
    assert is_model_layer("COPY /opt/ml/model /opt/ml/model # buildkit")


def test_without_docker_the_image_figures_are_skipped_with_a_note(monkeypatch) -> None:
    from types import SimpleNamespace

    from bench import container

    monkeypatch.setenv("PATH", "/nonexistent")
    args = SimpleNamespace(no_images=False, onnx_image="x:onnx", torch_image="x:torch", lambda_memory=(1024,))
    notes: list[str] = []

    images = container.measure_images(args, models=None, onnx=None, inputs=None, log=notes.append)

    assert images["available"] is False and "no docker command" in images["note"]
    assert notes and "not measured" in notes[0]
    assert report.image_libraries_ratio(images) is None
    assert container.measure_images(
        SimpleNamespace(no_images=True), models=None, onnx=None, inputs=None, log=notes.append
    ) == {"available": False, "note": "skipped (--no-images)"}


def test_sizing_rows_say_which_are_measured_out_of_memory_or_extrapolated() -> None:
    from bench import sizing

    measured = [
        {"memory_mb": 1024, "oom_killed": True},
        {"memory_mb": 1769, "batch_s": 20.0, "latency_s": 3.0, "seconds_per_image_batch10": 2.0},
    ]
    rows = {row["memory_mb"]: row for row in sizing.sizing_rows(1.0, 0.5, measured)}

    assert rows[1024]["source"] == "OOM" and rows[1024]["cost_x86_64_batch1"] is None
    assert rows[1769]["source"] == "measured"
    assert (rows[1769]["seconds_batch1"], rows[1769]["seconds_batch10"]) == (3.0, 2.0)
    assert rows[2048]["source"] == "extrapolated"
    assert rows[2048]["seconds_batch10"] == pytest.approx(0.5 * 2 * 1769 / 2048)
    assert rows[10240]["source"] == "extrapolated" and rows[10240]["seconds_batch1"] == 1.0
    table = sizing.markdown_table("onnx", 1.0, 0.5, measured, smallest_mb=1769)
    assert "| 1,024 | 2 | 0.58 | OOM | — |" in table and "does not run out: 1,769 MB" in table


def test_images_table_shows_sizes_init_and_smallest_memory() -> None:
    raw = _raw()
    raw["images"] = {
        "available": True,
        "library_bytes": {"onnx": 2e8, "torch": 1.2e9},
        "images": {
            "onnx": {"tag": "f:local", "bytes": 4e8, "layer_groups": {"base": 1.9e8, "libraries": 2e8}},
        },
        "init": {"onnx": {"init_s": 3.25}},
        "smallest_memory_mb": {"onnx": 1536},
        "lambda_sizes": {
            "onnx": [
                {"memory_mb": 1024, "oom_killed": True},
                {"memory_mb": 1769, "latency_s": 1.5, "seconds_per_image_batch10": 0.9, "batch_s": 9.0},
            ]
        },
    }
    text = report.markdown_images(report.build_summary(raw))

    assert "| `f:local` (runtime onnx) | 0.400 GB | 0.190 GB | 0.200 GB |" in text
    assert "| onnx, fp32 | 3.250 | 1,536 MB | 0.90 | not run | 1.50 | not run |" in text
    assert report.markdown_images(report.build_summary(_raw(onnx=False))).startswith(
        "Function images not measured: no Docker engine answers"
    )
