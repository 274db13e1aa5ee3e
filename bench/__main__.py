"""`make bench`: the original design against the project, same model, same inputs, one run.

Pipelines: the original design (baseline), the project on PyTorch (fp32 and a reduced precision, plus
float16-stored weights for the cold start) and the project on ONNX Runtime (fp32 and int8, exported
with `python -m captioning.preparation`). With Docker and the function images (`make image`) it also
measures the images: sizes, library layers, INIT durations and per-image times at Lambda's CPU share.

Then the families stage (bench/families.py): every exported family's real architecture, ONNX fp32 and
int8 against torch fp32 of the same model, under ``families`` (skip it with --no-families; run it alone
with `python -m bench families [--family F ...]`).

The last line of stdout is one JSON object (ratios, targets met, raw figures, machine).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from captioning.contract.environment import offline_environment

# Before any transformers import: offline, and no progress bars or advice in the benchmark's output.
os.environ.update(offline_environment())
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from rich.console import Console  # noqa: E402

from bench import DEFAULT_CACHE  # noqa: E402
from bench.coldstart import ColdStart, cache_method, median_cold_start, run_cold_start  # noqa: E402
from bench.container import add_container_arguments, measure_images  # noqa: E402
from bench.envs import (  # noqa: E402
    BASELINE_TORCH_VERSION,
    baseline_torch_requirement,
    ensure_env,
    ensure_onnx_env,
    project_torch_requirement,
)
from bench.inputs import ensure_inputs  # noqa: E402
from bench.machine import describe_machine, load_average  # noqa: E402
from bench.model import BenchModels, ensure_models  # noqa: E402
from bench.onnx_models import OnnxModels, ensure_onnx_models  # noqa: E402
from bench.report import build_summary, draw_chart, render_table, summary_line  # noqa: E402
from bench.warm import WarmFigures, measure_warm_interleaved  # noqa: E402
from ops.arguments import positive_int  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
REDUCED_PRECISION = "int8"


def _check_directories(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse unusable directories before anything is built or downloaded."""
    for option, directory in (("--cache-dir", args.cache_dir), ("--output-dir", args.output_dir)):
        directory = directory.expanduser()
        existing = next((path for path in (directory, *directory.parents) if path.exists()), None)
        if existing is None:
            continue
        if not existing.is_dir():
            parser.error(f"argument {option}: {existing} exists and is not a directory")
        if not os.access(existing, os.W_OK | os.X_OK):
            parser.error(f"argument {option}: {existing} is not writable")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help="where the model, inputs and baseline virtualenv are cached (outside the repo)",
    )
    parser.add_argument(
        "--no-baseline-env",
        action="store_true",
        help=f"skip the baseline virtualenv (torch=={BASELINE_TORCH_VERSION}); "
        "cold-start ratios are then reported as unavailable",
    )
    parser.add_argument(
        "--reduced-precision",
        choices=["int8", "bf16"],
        default=REDUCED_PRECISION,
        help="the precision measured as 'reduced precision'",
    )
    # At least one round each: a median of zero rounds is no figure.
    parser.add_argument(
        "--repeats", type=positive_int, default=5, help="timed rounds per warm figure, >= 1 (median)"
    )
    parser.add_argument(
        "--cold-repeats",
        type=positive_int,
        default=3,
        help="cold-start rounds, >= 1 (every pipeline in turn); each figure is the median",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=BENCH_DIR, help="where results.png and results.json are written"
    )
    parser.add_argument(
        "--no-onnx",
        action="store_true",
        help="skip the ONNX Runtime pipelines (their ratios are then reported as unavailable)",
    )
    parser.add_argument(
        "--model-size",
        choices=["full", "tiny"],
        default="full",
        help="full: nlpconnect/vit-gpt2-image-captioning's shapes (the benchmark); tiny: the same "
        "architecture with tiny shapes, to check the benchmark itself (its figures mean nothing)",
    )
    parser.add_argument(
        "--no-families",
        action="store_true",
        help="skip the families stage (`python -m bench families` runs it alone)",
    )
    add_container_arguments(parser)
    args = parser.parse_args(argv)
    _check_directories(parser, args)
    return args


def _warm_dict(figures: WarmFigures) -> dict:
    timings = {key: value for key, value in asdict(figures).items() if "caption" not in key}
    return {**timings, "images_per_s": figures.images_per_s}


def _cold_dict(figures: ColdStart) -> dict:
    return {key: value for key, value in asdict(figures).items() if key != "batch_captions"}


def _same_pixels_captions(pipeline, batch: list[bytes]) -> list[str]:
    """The project's Captioner on the baseline's own full-size decodes: isolates the model path."""
    from PIL import Image

    images = [Image.open(io.BytesIO(data)).convert("RGB") for data in batch]
    return pipeline.captioner.caption(images)


def _caption_agreement(warm: dict[str, WarmFigures], same_pixels: list[str], reduced_precision: str) -> dict:
    """How many of the 11 captions (12 MP image + batch of 10) each pipeline shares with the baseline
    (and the ONNX pipelines with the project's PyTorch pipeline of the same precision)."""

    def captions(name: str) -> list[str]:
        return [warm[name].large_caption, *warm[name].batch_captions]

    def agreeing(name: str, reference: str = "baseline") -> int:
        return sum(ours == theirs for ours, theirs in zip(captions(name), captions(reference), strict=True))

    baseline = warm["baseline"]
    agreement = {
        "compared": 1 + len(baseline.batch_captions),
        "fp32_same_decoded_images_identical": same_pixels == baseline.batch_captions,
        "fp32_end_to_end_identical": agreeing("project"),
        f"{reduced_precision}_end_to_end_identical": agreeing("project_reduced"),
        "note": "same_decoded_images: the project's Captioner on the baseline's own full-size decodes "
        "(the model path alone). end_to_end: with the project's image preparation, whose JPEG "
        "draft decoding changes pixel values slightly; a random-weights model's captions react "
        "to that, so these can differ without any change in the model path. onnx_*_same_as_torch: "
        "the ONNX pipeline against the project's PyTorch pipeline on the same inputs.",
        "baseline": captions("baseline"),
        "project_fp32": captions("project"),
        f"project_{reduced_precision}": captions("project_reduced"),
    }
    if "onnx" in warm:
        agreement["onnx_fp32_end_to_end_identical"] = agreeing("onnx")
        agreement["onnx_fp32_same_as_torch_fp32"] = agreeing("onnx", "project")
        agreement["onnx_fp32"] = captions("onnx")
    if "onnx_int8" in warm:
        agreement["onnx_int8_end_to_end_identical"] = agreeing("onnx_int8")
        if reduced_precision == "int8":
            agreement["onnx_int8_same_as_torch_int8"] = agreeing("onnx_int8", "project_reduced")
        agreement["onnx_int8"] = captions("onnx_int8")
    return agreement


def _cold_runs(args, cache_dir: Path, models: BenchModels, onnx: OnnxModels, log) -> dict[str, tuple]:
    """Cold-start pipelines: name -> (label, interpreter, child pipeline, model dir, precision)."""
    project_python = ensure_env(cache_dir / "project-venv", project_torch_requirement(), log=log)
    baseline_python = project_python
    if not args.no_baseline_env:
        baseline_python = ensure_env(cache_dir / "baseline-venv", baseline_torch_requirement(), log=log)
    runs = {
        "baseline": ("baseline", baseline_python, "baseline", models.baseline_dir, "fp32"),
        "project": ("project", project_python, "project", models.fp32_dir, "fp32"),
        "project_half_weights": (
            "project, fp16-stored weights",
            project_python,
            "project",
            models.fp16_dir,
            "fp32",
        ),
    }
    if onnx.dirs:
        onnx_python = ensure_onnx_env(cache_dir / "onnx-venv", log=log)
        for precision, model_dir in onnx.dirs.items():
            name = "onnx" if precision == "fp32" else f"onnx_{precision}"
            runs[name] = (f"ONNX Runtime, {precision}", onnx_python, "project", model_dir, precision)
    return runs


def _measure_cold(runs: dict[str, tuple], inputs, repeats: int, log) -> dict[str, list[ColdStart]]:
    """``repeats`` rounds; in each, every pipeline once in turn (same background load for all)."""
    log(f"cold starts ({', '.join(runs)}), {repeats} rounds: {cache_method()}")
    rounds: dict[str, list[ColdStart]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (label, python, pipeline, model_dir, precision) in runs.items():
            rounds[name].append(
                run_cold_start(
                    label,
                    python,
                    pipeline,
                    model_dir,
                    inputs.large_jpeg,
                    list(inputs.batch_jpegs),
                    precision=precision,
                )
            )
    return rounds


def _onnx_models(args, models: BenchModels, log) -> OnnxModels:
    if args.no_onnx:
        return OnnxModels(notes={"all": "skipped (--no-onnx)"})
    onnx = ensure_onnx_models(models.fp32_dir.parent, models.fp32_dir, log=log)
    for precision, note in onnx.notes.items():
        log(f"[yellow]ONNX {precision} not measured: {note}[/yellow]")
    return onnx


def _warm_pipelines(args, models: BenchModels, onnx: OnnxModels, log) -> dict:
    from bench.baseline import BaselineCaptioner
    from bench.project import ProjectPipeline

    pipelines = {
        "baseline": BaselineCaptioner(models.baseline_dir),
        "project": ProjectPipeline(models.fp32_dir, precision="fp32"),
        "project_reduced": ProjectPipeline(models.fp32_dir, precision=args.reduced_precision),
    }
    for precision, model_dir in onnx.dirs.items():
        name = "onnx" if precision == "fp32" else f"onnx_{precision}"
        pipelines[name] = ProjectPipeline(model_dir, precision=precision)
    effective = pipelines["project_reduced"].captioner.precision
    if effective != args.reduced_precision:
        log(
            f"[yellow]{args.reduced_precision} is not available on this CPU: the captioner ran "
            f"{effective}[/yellow]"
        )
    return pipelines


def _model_bytes(models: BenchModels, onnx: OnnxModels) -> dict[str, int]:
    sizes = {
        "baseline_pytorch_model_bin": (models.baseline_dir / "pytorch_model.bin").stat().st_size,
        "project_safetensors_fp32": (models.fp32_dir / "model.safetensors").stat().st_size,
        "project_safetensors_fp16": (models.fp16_dir / "model.safetensors").stat().st_size,
    }
    for precision, model_dir in onnx.dirs.items():
        sizes[f"onnx_{precision}_dir"] = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    return sizes


TINY_FAMILIES = ("blip",)
"""With --model-size tiny the stage is checked on one family (`python -m bench families --model-size tiny`
runs them all)."""


def _families(args, cache_dir: Path, cold: dict[str, ColdStart], log) -> dict:
    from bench.families import run_families
    from bench.family_models import FULL_SIZE_BUILDERS

    tiny = args.model_size == "tiny"
    pythons = {
        "torch": ensure_env(cache_dir / "project-venv", project_torch_requirement(), log=log),
        "onnx": ensure_onnx_env(cache_dir / "onnx-venv", log=log),
    }
    return run_families(
        list(TINY_FAMILIES if tiny else FULL_SIZE_BUILDERS),
        cache_dir,
        tiny=tiny,
        original_design_cold_start_s=cold["baseline"].total_s if not args.no_baseline_env else None,
        pythons=pythons,
        log=log,
    )


def main(argv: list[str] | None = None) -> dict:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["families"]:
        from bench import families

        return families.main(arguments[1:])
    args = parse_args(arguments)
    out = Console()
    log = Console(stderr=True).log
    machine = describe_machine()
    load_at_start = load_average()
    log(f"machine: {machine['cpu_model']}, {machine['threads']} threads; load average {load_at_start}")
    if load_at_start[0] > 1.0:
        log("[yellow]the machine is busy (1-min load average > 1): timings will be noisy[/yellow]")

    cache_dir = args.cache_dir.expanduser()
    tiny = args.model_size == "tiny"
    models = ensure_models(cache_dir / ("models-tiny" if tiny else "models"), log=log, tiny=tiny)
    inputs = ensure_inputs(cache_dir)
    large = inputs.large_jpeg.read_bytes()
    batch = [path.read_bytes() for path in inputs.batch_jpegs]
    onnx = _onnx_models(args, models, log)

    rounds = _measure_cold(_cold_runs(args, cache_dir, models, onnx, log), inputs, args.cold_repeats, log)
    cold = {name: median_cold_start(runs) for name, runs in rounds.items()}
    for name, figures in cold.items():
        log(
            f"cold start {name}: {figures.total_s:.2f} s, {figures.read_bytes / 1e9:.3f} GB read, "
            f"peak RSS {figures.peak_rss_bytes / 1e9:.3f} GB (imported: {', '.join(figures.imported)})"
        )

    pipelines = _warm_pipelines(args, models, onnx, log)
    log(f"warm: {', '.join(pipelines)}, interleaved, {args.repeats} rounds after a warm-up")
    warm = measure_warm_interleaved(pipelines, large, batch, args.repeats)
    same_pixels = _same_pixels_captions(pipelines["project"], batch)
    effective_reduced = pipelines["project_reduced"].captioner.precision
    for name, figures in warm.items():
        log(f"{name}: {figures.latency_s:.3f} s one 12 MP image, {figures.images_per_s:.3f} img/s")
    del pipelines  # the image measurements below want the memory back

    images = measure_images(args, models, onnx, inputs, log=log)

    raw = {
        "machine": machine,
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
        "shared_machine_note": "2 cores shared with other agents' work during the run; see load averages",
        "model_size": args.model_size,
        "baseline_env": not args.no_baseline_env,
        "baseline_torch": cold["baseline"].torch_version,
        "reduced_precision": args.reduced_precision,
        "reduced_precision_in_effect": effective_reduced,
        "cache_method": cache_method(),
        "onnx": {
            "exported": sorted(onnx.dirs),
            "notes": onnx.notes,
            "onnxruntime": next(
                (run.onnxruntime_version for run in cold.values() if "onnxruntime" in run.imported), None
            ),
        },
        "model_bytes": _model_bytes(models, onnx),
        "warm": {name: _warm_dict(figures) for name, figures in warm.items()},
        "cold_start": {name: _cold_dict(figures) for name, figures in cold.items()},
        "cold_start_runs": {name: [_cold_dict(run) for run in runs] for name, runs in rounds.items()},
        "captions": _caption_agreement(warm, same_pixels, args.reduced_precision),
        "images": images,
    }
    summary = build_summary(raw)
    if not args.no_families:
        summary["families"] = _families(args, cache_dir, cold, log)
    out.print(render_table(summary))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    draw_chart(summary, args.output_dir / "results.png")
    (args.output_dir / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"wrote {args.output_dir / 'results.png'} and {args.output_dir / 'results.json'}")
    print(summary_line(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
