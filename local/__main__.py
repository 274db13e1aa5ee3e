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

try:
    from captioning.component import limits
    from local.emulator import EmulatorError, check_port_free
    from local.settings import (
        DEMO_MODEL_DIR,
        LOCAL_TRIGGERS,
        LocalSettings,
        SettingsError,
        check_model_directory,
        soak_settings,
        suffixes_text,
    )
    from local.uploader import UploadError, collect_uploads
    from ops.arguments import fraction, int_in_range, port, positive_int
except ModuleNotFoundError as missing:  # run with a Python that lacks the project's packages
    REPO_ROOT = Path(__file__).resolve().parent.parent
    sys.exit(
        f"python -m local: the package {missing.name!r} is missing from {sys.executable}. Use the project's "
        f"environment, from the repository root: cd {REPO_ROOT} && .venv/bin/python -m local ... "
        "(`make demo` creates .venv; the install is about 1.9 GB)"
    )


def _add_pipeline_options(parser: argparse.ArgumentParser, *, workers: int, batch_size: int) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="DIR",
        help="captioning model directory (config.json and weights, as `python -m captioning.preparation "
        "--output DIR` writes it); default: the demo model in models/demo-shapes",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=workers,
        metavar="N",
        help=f"concurrent function instances (default {workers})",
    )
    low, high = limits.SQS_BATCH_SIZE
    parser.add_argument(
        "--batch-size",
        type=int_in_range(low, high, what=" (the SQS event source mapping's limit)"),
        default=batch_size,
        metavar="N",
        help=f"messages per invocation, {low}-{high} (default {batch_size})",
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="show the function's per-object log lines on stderr"
    )


def _add_delivery_options(parser: argparse.ArgumentParser) -> None:
    """Options of the commands that take files or uploads as a deployed pipeline would."""
    parser.add_argument(
        "--function-image",
        metavar="TAG",
        help="run this function image (e.g. captioning-function:local from `make image`) under the Lambda "
        "runtime emulator instead of the handler in this process; it carries its own model",
    )
    defaults = LocalSettings  # the component's key filter defaults, read from the class
    parser.add_argument(
        "--key-prefix",
        default=defaults.key_prefix,
        metavar="P",
        help="only keys starting with P are delivered, as the stack's keyPrefix (default: the whole bucket)",
    )
    parser.add_argument(
        "--key-suffix",
        action="append",
        dest="key_suffixes",
        metavar="S",
        help="only keys ending with S are delivered, as the stack's keySuffixes (repeat for several; "
        f"default: {suffixes_text(defaults.key_suffixes)})",
    )
    parser.add_argument(
        "--all-keys",
        action="store_true",
        help="deliver every key, even ones the deployed pipeline's key filters would never deliver",
    )
    parser.add_argument(
        "--trigger",
        choices=LOCAL_TRIGGERS,
        default=LocalSettings.trigger,
        help="how uploads reach the upload queue, as the stack's trigger: S3 notifications (queue) or the "
        f"bucket's EventBridge events and a rule (eventbridge); default {LocalSettings.trigger}",
    )
    parser.add_argument(
        "--caption-events",
        action="store_true",
        help="the function publishes an EventBridge event per captioned or failed object (captionEvents); "
        "a rule delivers them to a queue of their own",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description="Run the captioning pipeline (S3 -> SQS, or S3 -> EventBridge -> SQS, -> function -> "
        "DynamoDB) offline on moto's AWS emulator.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{caption,serve,soak}")

    caption = commands.add_parser(
        "caption",
        help="upload files and print their captions",
        description="Upload files (folders walked recursively; key = path relative to the folder, or the "
        "file name for a file; hidden files in folders skipped), caption them, print one row per file. "
        "Files the deployed key filters would not deliver are reported as skipped.",
    )
    caption.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    # LocalSettings' defaults, read from the class: constructing it checks the key filters.
    _add_pipeline_options(caption, workers=LocalSettings.workers, batch_size=LocalSettings.batch_size)
    _add_delivery_options(caption)
    caption.add_argument(
        "--json", action="store_true", help="print only a JSON array of {key, status, caption|error|reason}"
    )

    serve = commands.add_parser(
        "serve",
        help="keep the emulated pipeline running for your own uploads",
        description="Keep the emulator running and caption whatever is uploaded to its bucket until Ctrl-C.",
    )
    _add_pipeline_options(serve, workers=LocalSettings.workers, batch_size=LocalSettings.batch_size)
    _add_delivery_options(serve)
    serve.add_argument(
        "--port", type=port, default=0, help="port for the emulator endpoint (default: any free port)"
    )

    soak = commands.add_parser(
        "soak",
        help="fault-injection soak: prove nothing is lost",
        description="Caption generated objects (spec images and bad objects) while AWS calls fail at a given "
        "rate, one worker is killed mid-batch and some events are delivered twice; then account for every "
        "object.",
    )
    soak_defaults = soak_settings()
    soak.add_argument(
        "--images",
        type=positive_int,
        default=soak_defaults.images,
        metavar="N",
        help=f"objects to upload (default {soak_defaults.images})",
    )
    soak.add_argument(
        "--fault-rate",
        type=fraction,
        default=soak_defaults.fault_rate,
        metavar="P",
        help=f"share of GetObject / DynamoDB writes that fail (default {soak_defaults.fault_rate})",
    )
    soak.add_argument(
        "--seed",
        type=int,
        default=soak_defaults.seed,
        metavar="S",
        help=f"seed for objects and faults (default {soak_defaults.seed})",
    )
    _add_pipeline_options(soak, workers=soak_defaults.workers, batch_size=soak_defaults.batch_size)
    soak.add_argument("--json", action="store_true", help="end with one JSON summary line")
    return parser


def settings_from(args: argparse.Namespace) -> LocalSettings:
    """One LocalSettings from the parsed arguments of any command; raises SettingsError."""
    image = getattr(args, "function_image", None)
    if image is not None and args.model is not None:
        raise SettingsError(
            "--model and --function-image exclude each other: the image carries its own model"
        )
    if image is not None and not image.strip():
        raise SettingsError("--function-image needs an image tag, such as captioning-function:local")
    model_dir = args.model if args.model is not None else DEMO_MODEL_DIR
    if image is None:
        check_model_directory(model_dir)
    common = {
        "model_dir": model_dir,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "verbose": args.verbose,
        "as_json": getattr(args, "json", False),
        **({"log_level": "INFO"} if args.verbose else {}),  # else the command's default
    }
    if args.command == "soak":
        return soak_settings(**common, images=args.images, fault_rate=args.fault_rate, seed=args.seed)
    return LocalSettings(
        **common,
        function_image=image,
        port=getattr(args, "port", 0),
        key_prefix=args.key_prefix,
        key_suffixes=(
            tuple(args.key_suffixes) if args.key_suffixes is not None else LocalSettings.key_suffixes
        ),
        all_keys=args.all_keys,
        trigger=args.trigger,
        caption_events=args.caption_events,
    )


def _claim_stdout() -> TextIO:
    """Keep the real stdout for results and send everything else written to fd 1 to stderr.

    The function's logger and libraries may print to stdout; results must be all that lands there.
    """
    sys.stdout.flush()
    results = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", closefd=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return results


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if verbose else logging.WARNING,
        format="%(relativeCreated)7.0f ms %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("werkzeug", "botocore", "urllib3"):  # moto's access log, SDK chatter
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def fail(reason: str, code: int = 2) -> int:
        print(f"{parser.prog} {args.command}: error: {reason}", file=sys.stderr)
        return code

    try:
        uploads = collect_uploads(args.paths) if args.command == "caption" else []
        settings = settings_from(args)
        check_port_free(settings.port)
    except (UploadError, SettingsError, EmulatorError) as error:
        return fail(str(error))

    _configure_logging(args.verbose)
    results = _claim_stdout()

    # Heavy imports (moto, rich, and torch via the function) only once the arguments are known good.
    from rich.console import Console

    status = Console(stderr=True)
    try:
        if args.command == "caption":
            from local.caption import run_caption

            return run_caption(uploads, settings, results=results, status=status)
        if args.command == "serve":
            from local.serve import run_serve

            return run_serve(settings, results=results, status=status)
        from local.soak import run_soak

        return run_soak(settings, results=results, status=status)
    except EmulatorError as error:
        return fail(str(error), 1)
    except Exception as error:
        if settings.function_image is None:
            raise
        # Docker missing, no such image, the container's INIT failed: say so without a traceback.
        return fail(f"cannot run the function image {settings.function_image}: {error}", 1)


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
