"""`python -m local caption|serve|soak`: the deployed queue-mode pipeline, emulated on 127.0.0.1.

Arguments are checked before torch, transformers and moto are imported, so a typo fails in a moment
with one line saying what is wrong.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from local.function import DEMO_MODEL_DIR, ModelDirectoryError, check_model_directory
from local.uploader import UploadError, collect_uploads


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _batch_size(text: str) -> int:
    value = _positive_int(text)
    if value > 10_000:
        raise argparse.ArgumentTypeError(f"the SQS event source mapping allows 1-10000, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535 (0: any free port), got {value}")
    return value


def _fault_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _add_pipeline_options(parser: argparse.ArgumentParser, *, workers: int, batch_size: int = 10) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        default=DEMO_MODEL_DIR,
        metavar="DIR",
        help="captioning model directory (VisionEncoderDecoder: config.json, weights, tokenizer, "
        "preprocessor_config.json); default: the demo model in models/demo-shapes",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=workers,
        metavar="N",
        help=f"concurrent function instances (default {workers})",
    )
    parser.add_argument(
        "--batch-size",
        type=_batch_size,
        default=batch_size,
        metavar="N",
        help=f"messages per invocation, 1-10000 (default {batch_size})",
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="show the function's per-object log lines on stderr"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description="Run the captioning pipeline (S3 -> SQS -> function -> DynamoDB) offline on moto's AWS emulator.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{caption,serve,soak}")

    caption = commands.add_parser(
        "caption",
        help="upload files and print their captions",
        description="Upload files (folders walked recursively; key = path relative to the folder, or the file "
        "name for a file; hidden files in folders skipped), caption them, print one row per file.",
    )
    caption.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    _add_pipeline_options(caption, workers=1)
    caption.add_argument(
        "--json", action="store_true", help="print only a JSON array of {key, status, caption|error}"
    )

    serve = commands.add_parser(
        "serve",
        help="keep the emulated pipeline running for your own uploads",
        description="Keep the emulator running and caption whatever is uploaded to its bucket until Ctrl-C.",
    )
    _add_pipeline_options(serve, workers=1)
    serve.add_argument(
        "--port", type=_port, default=0, help="port for the emulator endpoint (default: any free port)"
    )

    soak = commands.add_parser(
        "soak",
        help="fault-injection soak: prove nothing is lost",
        description="Caption generated objects (spec images and bad objects) while AWS calls fail at a given rate, "
        "one worker is killed mid-batch and some events are delivered twice; then account for every object.",
    )
    soak.add_argument(
        "--images", type=_positive_int, default=300, metavar="N", help="objects to upload (default 300)"
    )
    soak.add_argument(
        "--fault-rate",
        type=_fault_rate,
        default=0.2,
        metavar="P",
        help="share of GetObject / DynamoDB writes that fail (default 0.2)",
    )
    soak.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed for objects and faults (default 0)"
    )
    _add_pipeline_options(soak, workers=2, batch_size=5)
    soak.add_argument("--json", action="store_true", help="end with one JSON summary line")
    return parser


def _claim_stdout() -> TextIO:
    """Keep the real stdout for results and send everything else written to fd 1 to stderr.

    The function's logger and libraries may print to stdout; results must be all that lands there.
    """
    sys.stdout.flush()
    results = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", closefd=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return results


def _configure_logging(verbose: bool) -> str:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if verbose else logging.WARNING,
        format="%(relativeCreated)7.0f ms %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("werkzeug", "botocore", "urllib3"):  # moto's access log, SDK chatter
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return "INFO" if verbose else "WARNING"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def fail(reason: str) -> int:
        print(f"{parser.prog} {args.command}: error: {reason}", file=sys.stderr)
        return 2

    try:
        uploads = collect_uploads(args.paths) if args.command == "caption" else []
        check_model_directory(args.model)
    except (UploadError, ModelDirectoryError) as error:
        return fail(str(error))

    log_level = _configure_logging(args.verbose)
    results = _claim_stdout()

    # Heavy imports (moto, rich, and torch via the function) only once the arguments are known good.
    from rich.console import Console

    from local.pipeline import PipelineSettings

    status = Console(stderr=True)
    if args.command == "caption":
        from local.caption import run_caption

        settings = PipelineSettings(
            model_dir=args.model, workers=args.workers, batch_size=args.batch_size, log_level=log_level
        )
        return run_caption(uploads, settings, as_json=args.json, results=results, status=status)
    if args.command == "serve":
        from local.serve import run_serve

        settings = PipelineSettings(
            model_dir=args.model,
            workers=args.workers,
            batch_size=args.batch_size,
            log_level=log_level,
            port=args.port,
        )
        return run_serve(settings, results=results, status=status)
    from local.soak import run_soak

    # Injected faults make the function log a warning per retry; show them only when asked.
    log_level = "INFO" if args.verbose else "ERROR"
    return run_soak(
        images=args.images,
        fault_rate=args.fault_rate,
        workers=args.workers,
        seed=args.seed,
        model_dir=args.model,
        batch_size=args.batch_size,
        log_level=log_level,
        as_json=args.json,
        results=results,
        status=status,
    )


def run() -> None:
    """Entry point: everything is stopped and flushed when main returns, so skip the interpreter's
    teardown of torch and friends, which takes seconds after a Ctrl-C."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    run()
