"""Prepare a captioning model for the function image: download or copy it, export and check it.

    python -m captioning.preparation (--source DIR | --model-id ID) --output DIR
        [--runtime onnx|torch] [--precision fp32|int8] [--half-precision-weights]

The model comes from `--source`, a model directory (an offline build, e.g. the demo model; a directory
that holds no model is refused, never replaced by a download), or from the Hub with huggingface_hub
(`--model-id`, default the project's model; an unreachable Hub is refused within seconds). A prepared
ONNX model as `--source` is copied as it is, for `--runtime onnx` at the precision it was built in.
`--runtime torch` stores safetensors weights, tokenizer and image processor for `Captioner.load`;
`--half-precision-weights` stores those weights in float16 (half the bytes read at cold start, upcast
at load).
`--runtime onnx` exports the encoder and one decoder step to ONNX, quantises them at build for
`--precision int8`, and checks that the graphs caption like the torch model before it succeeds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from captioning.contract.constants import (
    DEFAULT_MODEL_ID,
    DEFAULT_PRECISION,
    DEFAULT_RUNTIME,
    RUNTIMES,
)
from captioning.contract.environment import offline_environment
from captioning.contract.model_files import is_prepared_onnx, model_directory_problem, prepared_onnx_precision
from captioning.contract.runtimes import half_precision_weights_problem, precision_problem
from captioning.preparation.errors import PreparationRefused
from captioning.preparation.fetch import fetch_from_hub

PROG = "captioning.preparation"
"""The command's name, in its usage line and at the start of each refusal."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="directory to write the model to")
    parser.add_argument(
        "--model-id",
        help=f"Hub repository to download, when no --source is given (default {DEFAULT_MODEL_ID})",
    )
    parser.add_argument(
        "--source", type=Path, help="local model directory to prepare instead of downloading one"
    )
    parser.add_argument("--runtime", default=DEFAULT_RUNTIME, help=f"one of {', '.join(RUNTIMES)}")
    parser.add_argument("--precision", default=DEFAULT_PRECISION, help="fp32 or int8 (onnx: quantised now)")
    parser.add_argument(
        "--half-precision-weights", action="store_true", help="store float16 weights (torch runtime only)"
    )
    return parser


def check_options(runtime: str, precision: str, half_precision_weights: bool) -> None:
    """Refuse option combinations the runtimes cannot honour, naming what is allowed."""
    if runtime not in RUNTIMES:
        raise PreparationRefused(f"--runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}")
    problem = precision_problem(runtime, precision, runtime_name="--runtime", precision_name="--precision")
    if problem is None and half_precision_weights:
        problem = half_precision_weights_problem(
            runtime, runtime_name="--runtime", setting_name="--half-precision-weights"
        )
    if problem is not None:
        raise PreparationRefused(problem)


def prepare(
    source: Path, output: Path, *, runtime: str, precision: str, half_precision_weights: bool
) -> None:
    """Write the directory `Captioner.load` loads for `runtime` from the model directory `source`."""
    check_options(runtime, precision, half_precision_weights)
    if is_prepared_onnx(source):
        _copy_prepared_onnx(source, output, runtime=runtime, precision=precision)
        return
    if runtime == "torch":
        from captioning.preparation.save_torch import save_torch_model

        save_torch_model(source, output, half_precision_weights=half_precision_weights)
    else:
        from captioning.preparation.export import export_onnx

        export_onnx(source, output, precision=precision)


def _copy_prepared_onnx(source: Path, output: Path, *, runtime: str, precision: str) -> None:
    """An exported ONNX model is already what the onnx runtime loads; its precision was fixed at export."""
    built = prepared_onnx_precision(source)
    if runtime != "onnx" or precision != built:
        raise PreparationRefused(
            f"--source {source} is a prepared ONNX model ({built} graphs): it serves only --runtime onnx"
            f" --precision {built}; for --runtime {runtime} --precision {precision}, give the transformers"
            " model it was exported from (config.json and weights) as --source"
        )
    shutil.copytree(source, output, dirs_exist_ok=True)


def check_source(source: Path | None, model_id: str | None) -> None:
    """A --source must hold a model (no download replaces it) and excludes --model-id."""
    if source is None:
        return
    problem = model_directory_problem(source)
    if problem is not None:
        raise PreparationRefused(f"--source {source}: {problem}")
    if model_id is not None:
        raise PreparationRefused(
            f"--source {source} and --model-id {model_id} exclude each other: give the local model"
            " directory or the Hub id to download"
        )


def format_size(size_bytes: int) -> str:
    """Bytes in the unit that fits (decimal units: 1 MB = 1,000,000 bytes), e.g. "812 KB", "1.23 GB"."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size_bytes >= scale:
            value = size_bytes / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{size_bytes} bytes"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    os.environ.update(offline_environment(hub_downloads=True))  # a --model-id download reaches the Hub
    try:
        check_options(args.runtime, args.precision, args.half_precision_weights)
        check_source(args.source, args.model_id)
        if args.source is not None:
            prepare(
                args.source,
                args.output,
                runtime=args.runtime,
                precision=args.precision,
                half_precision_weights=args.half_precision_weights,
            )
            origin = str(args.source)
        else:
            origin = args.model_id or DEFAULT_MODEL_ID
            with tempfile.TemporaryDirectory() as download_dir:
                source = fetch_from_hub(origin, Path(download_dir))
                prepare(
                    source,
                    args.output,
                    runtime=args.runtime,
                    precision=args.precision,
                    half_precision_weights=args.half_precision_weights,
                )
    except PreparationRefused as refusal:
        print(f"{PROG}: {refusal}", file=sys.stderr)
        return 2
    size = format_size(sum(path.stat().st_size for path in args.output.rglob("*") if path.is_file()))
    print(f"model from {origin} -> {args.output} (runtime {args.runtime}, {args.precision}; {size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
