"""Where an ONNX model's cold start goes, and what each way of opening its sessions saves.

    python -m bench.onnx_load (--model-dir DIR | --export SOURCE [--precision fp32,int8]) ... [--repeats 3]

Each DIR is a prepared ONNX model with its graphs as exported, not yet optimised: `--export SOURCE` makes
one per `--precision` from a transformers model directory (the build's export with its last step, the
optimisation, left out), since `python -m captioning.preparation` now optimises. A copy of each gets the
build step captioning/preparation/optimise.py (which
itself checks that the captions stay equal) and, for comparison, the optimised graphs in ONNX Runtime's
own format (`<graph>.ort`). Every way (VARIANTS) then runs in a fresh process with the page cache dropped
(bench/onnx_load_child.py), the ways in turn for each round; medians over the rounds. The last line of
stdout is one JSON object; `--output` also writes it to a file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess  # noqa: S404  fixed argument lists, no shell
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import DEFAULT_CACHE
from bench.coldstart import REPO_ROOT, cache_method, can_drop_page_cache, drop_page_cache, evict_files
from bench.machine import describe_machine, load_average
from captioning.contract.environment import OFFLINE_ENVIRONMENT
from ops.arguments import positive_int


@dataclass(frozen=True)
class Variant:
    name: str
    optimised: bool
    """Open the build-time optimised copy (else the graphs as exported)."""
    parallel: bool
    use_index: bool = True
    """Open graphs the index lists with the optimisers off (else at ONNX Runtime's default level)."""
    level: str | None = None
    """A GraphOptimizationLevel name forced for every graph."""
    prepacking: bool = True
    threads: int | None = None
    """Intra-op threads of each session (None: the CPUs available, as the function)."""
    parallel_prepacking: bool = False
    ort_format: bool = False
    """The optimised graphs in ORT format, memory-mapped, initialisers used from the mapping."""


VARIANTS = (
    Variant("exported, one after the other (before)", optimised=False, parallel=False),
    Variant("exported, in parallel", optimised=False, parallel=True),
    Variant("optimised at build, one after the other", optimised=True, parallel=False),
    Variant("optimised at build, in parallel (after)", optimised=True, parallel=True),
    Variant("optimised, opened at ORT_ENABLE_ALL", optimised=True, parallel=True, use_index=False),
    Variant("optimised, 1 thread per session", optimised=True, parallel=True, threads=1),
    Variant(
        "optimised, session.prepack.enable_parallel", optimised=True, parallel=True, parallel_prepacking=True
    ),
    Variant("optimised, session.disable_prepacking", optimised=True, parallel=True, prepacking=False),
    Variant("optimised, ORT format memory-mapped", optimised=True, parallel=True, ort_format=True),
)
BEFORE, AFTER = VARIANTS[0].name, VARIANTS[3].name
FIGURES = (
    "load_s",
    "load_cpu_s",
    "first_caption_s",
    "total_s",
    "warm_caption_s",
    "read_bytes",
    "load_peak_rss_bytes",
    "peak_rss_bytes",
)


def graph_names(model_dir: Path) -> list[str]:
    from captioning.function.onnx_captioner import read_manifest

    return sorted(set(read_manifest(model_dir)["graphs"].values()))


def graph_bytes(model_dir: Path, names: list[str]) -> int:
    paths = [model_dir / name for name in names] + [model_dir / f"{name}.data" for name in names]
    return sum(path.stat().st_size for path in paths if path.exists())


def prepare_optimised(source: Path, target: Path, image: Path) -> None:
    """`source` copied to `target`, its graphs optimised by the build step, plus `<graph>.ort` copies."""
    import onnxruntime

    from captioning.function.images import load_image
    from captioning.function.onnx_captioner import OnnxCaptioner
    from captioning.preparation.optimise import optimise_graphs

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    pictures = [load_image(image.read_bytes())]
    names = graph_names(target)
    if not optimise_graphs(
        target, names, lambda directory: OnnxCaptioner.load(directory).token_ids(pictures)
    ):
        raise SystemExit(f"{source}: the optimised graphs caption differently (see the warning above)")
    for name in names:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.optimized_model_filepath = str(target / f"{name}.ort")
        options.add_session_config_entry("session.disable_prepacking", "1")
        onnxruntime.InferenceSession(str(target / name), options, providers=["CPUExecutionProvider"])


def export_unoptimised(source: Path, work_dir: Path, precision: str) -> Path:
    """`source` exported as the build does, without its last step (the optimisation), cached."""
    from captioning.preparation import optimise
    from captioning.preparation.export import export_onnx

    target = work_dir / f"{source.resolve().name}-exported-{precision}"
    if not target.exists():
        real = optimise.optimise_graphs
        optimise.optimise_graphs = lambda *args, **kwargs: False  # the graphs as exported
        try:
            export_onnx(source, target, precision=precision)
        finally:
            optimise.optimise_graphs = real
    return target


def run_child(python: str, model_dir: Path, variant: Variant, image: Path) -> dict:
    if can_drop_page_cache():
        drop_page_cache()
    else:
        evict_files([model_dir, Path(python).resolve().parent.parent])
    environment = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", **OFFLINE_ENVIRONMENT}
    spawned_at = time.time()
    completed = subprocess.run(  # noqa: S603  fixed argument list, our own interpreter
        [
            python,
            "-m",
            "bench.onnx_load_child",
            "--model-dir",
            str(model_dir),
            "--variant",
            json.dumps(asdict(variant)),
            "--image",
            str(image),
            "--spawned-at",
            repr(spawned_at),
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{model_dir} {variant.name!r} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_model(
    python: str, source: Path, work_dir: Path, image: Path, repeats: int, variants=VARIANTS, log=print
) -> dict:
    optimised = work_dir / f"{source.name}-optimised"
    log(f"{source}: optimising a copy in {optimised}")
    prepare_optimised(source, optimised, image)
    names = graph_names(source)
    runs: dict[str, list[dict]] = {variant.name: [] for variant in variants}
    for round_number in range(repeats):
        for variant in variants:
            figures = run_child(python, optimised if variant.optimised else source, variant, image)
            runs[variant.name].append(figures)
            log(
                f"  round {round_number + 1} {variant.name}: load {figures['load_s']:.2f} s"
                f" (cpu {figures['load_cpu_s']:.2f}), first caption {figures['first_caption_s']:.2f} s"
            )
    reference = runs[BEFORE][0]["token_ids"]
    variants = {}
    for name, figures in runs.items():
        variants[name] = {
            **{figure: statistics.median(run[figure] for run in figures) for figure in FIGURES},
            "captions_equal_to_before": all(run["token_ids"] == reference for run in figures),
            "opened_without_optimisation": figures[0]["optimised_at_build"],
            "rounds": [{figure: run[figure] for figure in FIGURES} for run in figures],
        }
    return {
        "model_dir": str(source),
        "caption": runs[BEFORE][0]["caption"],
        "graph_bytes_exported": graph_bytes(source, names),
        "graph_bytes_optimised": graph_bytes(optimised, names),
        "ort_format_bytes": sum((optimised / f"{name}.ort").stat().st_size for name in names),
        "variants": variants,
    }


def table(result: dict) -> str:
    before = result["variants"][BEFORE]
    lines = [
        f"**{result['model_dir']}** (graphs {result['graph_bytes_exported'] / 1e6:,.1f} MB as exported,"
        f" {result['graph_bytes_optimised'] / 1e6:,.1f} MB optimised; caption {result['caption']!r})",
        "",
        "| way | load (s) | load CPU (s) | first caption (s) | spawn to caption (s) | warm caption (s)"
        " | read (MB) | peak RSS after load / after captions (MB) | captions equal |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, figures in result["variants"].items():
        ratio = f" ({figures['total_s'] / before['total_s']:.2f}×)" if name != BEFORE else ""
        cells = [
            name,
            f"{figures['load_s']:.2f}",
            f"{figures['load_cpu_s']:.2f}",
            f"{figures['first_caption_s']:.2f}",
            f"{figures['total_s']:.2f}{ratio}",
            f"{figures['warm_caption_s']:.2f}",
            f"{figures['read_bytes'] / 1e6:,.0f}",
            f"{figures['load_peak_rss_bytes'] / 1e6:,.0f} / {figures['peak_rss_bytes'] / 1e6:,.0f}",
            "yes" if figures["captions_equal_to_before"] else "NO",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ways(text: str) -> tuple[Variant, ...]:
    try:
        numbers = {int(part) for part in text.split(",")} | {0, 3}
        return tuple(VARIANTS[number] for number in sorted(numbers))
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give numbers 0-{len(VARIANTS) - 1} separated by commas"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.onnx_load", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-dir", type=Path, action="append", default=[], help="a prepared ONNX model, not optimised"
    )
    parser.add_argument("--export", type=Path, help="a transformers model directory to export first")
    parser.add_argument("--precision", default="fp32,int8", help="precisions to --export (comma-separated)")
    parser.add_argument("--image", type=Path, help="the JPEG to caption (default: a benchmark 800×600 input)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="rounds of every way (medians)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_CACHE / "onnx-load", help="for the copies")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the children")
    parser.add_argument("--output", type=Path, help="also write the JSON object here")
    parser.add_argument(
        "--ways",
        type=_ways,
        default=VARIANTS,
        help=f"comma-separated numbers of the ways to run (0-{len(VARIANTS) - 1}; default all; 0, 3 always)",
    )
    args = parser.parse_args(argv)
    from captioning.contract.model_files import is_prepared_onnx, model_directory_problem
    from captioning.function.onnx_sessions import OPTIMISED_INDEX

    if not args.model_dir and args.export is None:
        parser.error("give --model-dir DIR (a prepared ONNX model) or --export SOURCE (a transformers model)")
    precisions = args.precision.split(",")
    if any(precision not in ("fp32", "int8") for precision in precisions):
        parser.error(f"argument --precision: fp32, int8 or both comma-separated; got {args.precision!r}")
    if args.export is not None and model_directory_problem(args.export) is not None:
        parser.error(f"argument --export: {model_directory_problem(args.export)}")
    for model_dir in args.model_dir:
        if (model_dir / OPTIMISED_INDEX).exists():
            parser.error(
                f"argument --model-dir: {model_dir} is already optimised ({OPTIMISED_INDEX}); give the"
                " graphs as exported, e.g. with --export SOURCE"
            )
        if not is_prepared_onnx(model_dir):
            parser.error(f"argument --model-dir: {model_dir} holds no prepared ONNX model (onnx_model.json)")
    if args.image is None:
        from bench.inputs import ensure_inputs

        args.image = ensure_inputs(DEFAULT_CACHE).batch_jpegs[0]
    args.work_dir.mkdir(parents=True, exist_ok=True)
    if args.export is not None:
        args.model_dir += [
            export_unoptimised(args.export, args.work_dir, precision) for precision in precisions
        ]
    started = load_average()
    results = [
        measure_model(args.python, model_dir, args.work_dir, args.image, args.repeats, args.ways, log=print)
        for model_dir in args.model_dir
    ]
    for result in results:
        print(table(result) + "\n")
    summary = {
        "machine": describe_machine(),
        "cache_method": cache_method(),
        "load_average": {"start": started, "end": load_average()},
        "python": args.python,
        "repeats": args.repeats,
        "models": results,
    }
    line = json.dumps(summary)
    if args.output is not None:
        args.output.write_text(json.dumps(summary, indent=1) + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
