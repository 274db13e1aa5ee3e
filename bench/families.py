"""`python -m bench families [--family F ...]`: every exported family against torch, same model.

Per family (bench/family_models.py: the real architecture, random weights, exported in fp32 and int8 by
`python -m captioning.preparation`), each pipeline -- torch fp32 (the project's torch environment), ONNX
fp32 and ONNX int8 (the function image's onnx environment: no torch) -- runs in a fresh process after
the page cache is dropped (bench/family_child.py): cold start to the first caption, bytes read, then
a batch of ten and a warm one-image caption, peak RSS. Rounds interleave the pipelines (same background
load for all); figures are medians. The results go under ``families`` in bench/results.json
(bench/family_report.py names the keys); run alone, this stage replaces the measured families there
and keeps the rest of the file.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import DEFAULT_CACHE, coldstart
from bench.envs import ensure_env, ensure_onnx_env, project_torch_requirement
from bench.family_models import FAMILIES, FULL_SIZE_BUILDERS, FamilyModels, ensure_family_models
from bench.family_report import family_summary, markdown_families
from bench.inputs import ensure_inputs
from bench.machine import cpu_flags, describe_machine, load_average
from ops.arguments import positive_int

BENCH_DIR = Path(__file__).resolve().parent
KERNEL_FLAGS = {"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"}
"""CPU flags that pick ONNX Runtime's and torch's kernels (int8 above all)."""


def run_child(python: Path, model_dir: Path, precision: str, inputs, *, drop_cache: bool = True) -> dict:
    """One fresh process of bench/family_child.py, the page cache emptied first; its JSON figures."""
    import subprocess  # noqa: S404  fixed argument list, no shell

    from captioning.contract.environment import OFFLINE_ENVIRONMENT

    if drop_cache:
        coldstart._empty_cache(python, model_dir)
    environment = {
        **os.environ,
        "PYTHONPATH": str(coldstart.REPO_ROOT),
        **OFFLINE_ENVIRONMENT,
        "TRANSFORMERS_VERBOSITY": "error",
    }
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    spawned_at = time.time()
    command = [
        str(python),
        "-m",
        "bench.family_child",
        "--model-dir",
        str(model_dir),
        "--precision",
        precision,
        "--first-image",
        str(inputs.large_jpeg),
        "--spawned-at",
        repr(spawned_at),
        "--batch-images",
        *map(str, inputs.batch_jpegs),
    ]
    completed = subprocess.run(  # noqa: S603  our own interpreter and module
        command, cwd=coldstart.REPO_ROOT, env=environment, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{model_dir} ({precision}) failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_profile(python: Path, model_dir: Path) -> dict:
    """bench/family_profile.py in a fresh process (warm cache): load, and each graph's share of a batch."""
    import subprocess  # noqa: S404  fixed argument list, no shell

    completed = subprocess.run(  # noqa: S603  our own interpreter and module
        [str(python), "-m", "bench.family_profile", str(model_dir)],
        cwd=coldstart.REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(coldstart.REPO_ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        return {"failed": completed.stderr.strip().splitlines()[-1:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _pipelines(models: FamilyModels, pythons: dict[str, Path]) -> dict[str, tuple[Path, Path, str]]:
    """Pipeline -> (interpreter, model directory, precision), for what was built."""
    pipelines = {"torch_fp32": (pythons["torch"], models.source, "fp32")}
    for precision, directory in models.onnx.items():
        pipelines[f"onnx_{precision}"] = (pythons["onnx"], directory, precision)
    return pipelines


def _captions_agreement(rounds: dict[str, list[dict]]) -> dict[str, Any]:
    def captions(pipeline: str) -> list[str]:
        first = rounds[pipeline][0]
        return [first["first_caption"], *first["batch_captions"]]

    agreement: dict[str, Any] = {"compared": 1 + len(rounds["torch_fp32"][0]["batch_captions"])}
    for pipeline in ("onnx_fp32", "onnx_int8"):
        if pipeline in rounds:
            agreement[f"{pipeline}_same_as_torch_fp32"] = sum(
                ours == theirs
                for ours, theirs in zip(captions(pipeline), captions("torch_fp32"), strict=True)
            )
    return agreement


def measure_family(
    models: FamilyModels,
    pythons: dict[str, Path],
    inputs,
    repeats: int,
    *,
    original_design_cold_start_s: float | None = None,
    drop_cache: bool = True,
    profile: bool = True,
    log=print,
) -> dict[str, Any]:
    pipelines = _pipelines(models, pythons)
    rounds: dict[str, list[dict]] = {name: [] for name in pipelines}
    started = time.perf_counter()
    for round_index in range(repeats):
        for name, (python, model_dir, precision) in pipelines.items():
            figures = run_child(python, model_dir, precision, inputs, drop_cache=drop_cache)
            rounds[name].append(figures)
            log(
                f"{models.family} {name} round {round_index + 1}: "
                f"cold start {figures['cold_start_s']:.2f} s, "
                f"{figures['images_per_s']:.3f} img/s, peak RSS {figures['peak_rss_bytes'] / 2**20:,.0f} MB"
            )
    profiles = {}
    if profile:
        for name, (python, model_dir, _) in pipelines.items():
            if name.startswith("onnx"):
                profiles[name] = run_profile(python, model_dir)
                log(f"{models.family} {name} profile: {profiles[name]}")
    extra = {
        "model_id": models.model_id,
        "profile": profiles,
        "source_dir_bytes": _dir_bytes(models.source),
        "onnx_dir_bytes": {precision: _dir_bytes(path) for precision, path in models.onnx.items()},
        "export_seconds_this_run": models.export_seconds,
        "exporter_changed_since_export": models.exporter_changed_since,
        "notes": models.notes,
        "captions": _captions_agreement(rounds),
        "measure_seconds": round(time.perf_counter() - started, 1),
        "repeats": repeats,
    }
    return family_summary(
        models.family, rounds, original_design_cold_start_s=original_design_cold_start_s, extra=extra
    )


def _dir_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def environments(cache_dir: Path, log=print) -> dict[str, Path]:
    """The interpreters: the project's torch environment and the function image's onnx one (cached)."""
    return {
        "torch": ensure_env(cache_dir / "project-venv", project_torch_requirement(), log=log),
        "onnx": ensure_onnx_env(cache_dir / "onnx-venv", log=log),
    }


def run_families(
    families: list[str],
    cache_dir: Path,
    *,
    tiny: bool = False,
    repeats: int = 1,
    original_design_cold_start_s: float | None = None,
    pythons: dict[str, Path] | None = None,
    drop_cache: bool = True,
    keep_exports: bool = False,
    cached_only: bool = False,
    profile: bool = True,
    log=print,
) -> dict[str, Any]:
    """``families`` measured one after another; a family whose torch model cannot be built or whose
    exports all fail is reported with its notes instead of figures."""
    pythons = pythons or environments(cache_dir, log=log)
    inputs = ensure_inputs(cache_dir)
    root = cache_dir / ("families-tiny" if tiny else "families")
    results: dict[str, Any] = {}
    for family in families:
        started = time.perf_counter()
        started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        load_at_start = load_average()
        models = ensure_family_models(
            family, root / family, tiny=tiny, keep_exports=keep_exports, cached_only=cached_only, log=log
        )
        for precision, note in models.notes.items():
            log(f"[yellow]{family} ONNX {precision} not measured: {note}[/yellow]")
        summary = measure_family(
            models,
            pythons,
            inputs,
            repeats,
            original_design_cold_start_s=original_design_cold_start_s,
            drop_cache=drop_cache,
            profile=profile,
            log=log,
        )
        summary["raw"]["run"] = run_conditions(
            started_at, load_at_start, time.perf_counter() - started, tiny=tiny
        )
        results[family] = summary
    return results


def run_conditions(started_at: str, load_at_start, seconds: float, *, tiny: bool) -> dict[str, Any]:
    """Where and how a family was measured (kept in its ``raw.run``)."""
    machine = describe_machine()
    flags = cpu_flags()
    return {
        "lscpu_model_name": machine["cpu_model"],
        "cpu_flags_of_note": sorted(flags & KERNEL_FLAGS),
        "machine": machine,
        "model_size": "tiny" if tiny else "full",
        "started_at_utc": started_at,
        "seconds": round(seconds, 1),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
        "cache_method": coldstart.cache_method(),
        "shared_machine_note": "2 cores shared with other agents' work during the run; see load averages",
    }


def original_design_cold_start(results_path: Path) -> float | None:
    """The original design's cold start of the default model, from the main benchmark's results."""
    try:
        summary = json.loads(results_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    baseline = summary.get("raw", {}).get("cold_start", {}).get("baseline") or {}
    return baseline.get("total_s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench families", description=__doc__)
    parser.add_argument(
        "--family",
        action="append",
        choices=FAMILIES,
        help=f"a family to measure (repeatable); default: every family with a full-size builder "
        f"({', '.join(FULL_SIZE_BUILDERS)})",
    )
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--output-dir", type=Path, default=BENCH_DIR, help="where results.json is updated")
    parser.add_argument("--repeats", type=positive_int, default=1, help="rounds per pipeline (median)")
    parser.add_argument(
        "--model-size",
        choices=["full", "tiny"],
        default="full",
        help="tiny: tests/tiny_families.py's models, to check the stage itself (figures mean nothing)",
    )
    parser.add_argument(
        "--keep-exports",
        action="store_true",
        help="reuse cached exports even when captioning/preparation changed since (recorded per family)",
    )
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="build and export nothing: measure what the cache holds (a missing export is a note)",
    )
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the per-graph profile of each ONNX pipeline (one more warm process each)",
    )
    args = parser.parse_args(argv)
    if args.model_size == "full":
        missing = [family for family in args.family or () if family not in FULL_SIZE_BUILDERS]
        if missing:
            parser.error(
                f"no full-size model for {', '.join(missing)} yet; "
                f"full size: {', '.join(FULL_SIZE_BUILDERS)} "
                "(--model-size tiny runs every family)"
            )
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    tiny = args.model_size == "tiny"
    families = args.family or list(FAMILIES if tiny else FULL_SIZE_BUILDERS)
    results_path = args.output_dir / "results.json"
    try:
        results = run_families(
            families,
            args.cache_dir.expanduser(),
            tiny=tiny,
            repeats=args.repeats,
            keep_exports=args.keep_exports,
            cached_only=args.cached_only,
            profile=not args.no_profile,
            original_design_cold_start_s=original_design_cold_start(results_path),
            log=Console(stderr=True).log,
        )
    except FileNotFoundError as error:  # --cached-only with nothing built: a usage error, not a traceback
        raise SystemExit(f"python -m bench families: {error}") from None
    try:
        summary = json.loads(results_path.read_text())
    except FileNotFoundError:
        summary = {}
    summary["families"] = {**summary.get("families", {}), **results}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(summary, indent=2) + "\n")
    print(markdown_families(results))
    print(f"wrote families {', '.join(results)} into {results_path}")
    return summary["families"]
