"""`python -m ops backfill|redrive|status`: everyday jobs on a deployed pipeline, or on the local one;
`python -m ops plan`: which Lambda setup is cheapest for a workload (ops/plan.py; needs no pipeline).

Where the pipeline is comes from flags, from `--local` (a running `python -m local serve`), or from
`pulumi stack output --json` when the Pulumi CLI is installed. Options may come before or after the command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from rich.console import Console

from ops import backfill, plan, redrive, render, status
from ops.arguments import help_description, positive_int, positive_number
from ops.control import StopRequested
from ops.locate import FLAG_FIELDS, LocateError, Locations, describe, locate

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _common_options() -> argparse.ArgumentParser:
    """Options every command takes, before or after its name (defaults suppressed so that a value given
    before the command is not overwritten by the subcommand's default)."""
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    where = common.add_argument_group(
        "where the pipeline is: these flags, else --local, else `pulumi stack output`"
    )
    where.add_argument(
        "--local", action="store_true", help="the pipeline of a running `python -m local serve`"
    )
    where.add_argument(
        "--stack", metavar="NAME", help="Pulumi stack whose outputs to read (default: the selected one)"
    )
    where.add_argument(
        "--endpoint-url", metavar="URL", help="AWS endpoint (default: $AWS_ENDPOINT_URL, else AWS)"
    )
    where.add_argument("--region", metavar="REGION", help="AWS region (default: the AWS configuration's)")
    where.add_argument("--bucket", metavar="NAME", help="the images bucket")
    where.add_argument("--table", metavar="NAME", help="the captions table")
    where.add_argument("--queue-url", metavar="URL", help="the upload queue (queue mode)")
    where.add_argument("--dead-letter-queue-url", metavar="URL", help="the dead-letter queue")
    where.add_argument(
        "--function-name", metavar="NAME", help="function (name, ARN or name:alias) S3 invokes (direct mode)"
    )
    where.add_argument(
        "--alarm-topic-arn", metavar="ARN", help="the alarm topic (stack output alarmTopicArn)"
    )
    where.add_argument(
        "--key-prefix", metavar="P", help="the pipeline's keyPrefix (default: the stack's, else '')"
    )
    where.add_argument(
        "--key-suffix",
        dest="key_suffixes",
        metavar="S",
        action="append",
        help="one of the pipeline's keySuffixes; repeat for several (default: the stack's)",
    )
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="python -m ops",
        description="Operate a captioning pipeline: backfill existing objects, redrive dead letters, status.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fill = commands.add_parser(
        "backfill",
        parents=[common],
        help="caption the objects already in the bucket",
        description="Feed the bucket's existing objects into the pipeline the way S3 would notify it.",
    )
    fill.add_argument(
        "--prefix", metavar="P", help="only keys starting with P (inside the pipeline's keyPrefix)"
    )
    fill.add_argument("--dry-run", action="store_true", help="list and count, send nothing")
    fill.add_argument(
        "--all",
        dest="include_done",
        action="store_true",
        help="also send keys whose item exists for the same ETag",
    )
    fill.add_argument(
        "--rate",
        type=positive_number,
        default=backfill.DEFAULT_RATE,
        metavar="N",
        help=f"objects sent per second (default {backfill.DEFAULT_RATE:g})",
    )
    drive = commands.add_parser(
        "redrive",
        parents=[common],
        help="send the dead-lettered events back through the pipeline",
        description="Queue mode: move the dead-letter queue's messages back to the upload queue. "
        "Direct mode: invoke the function again with each on-failure record's original event.",
    )
    drive.add_argument("--dry-run", action="store_true", help="count the dead-lettered events, move nothing")
    look = commands.add_parser(
        "status", parents=[common], help="items by status, last failures, queue depths, alarms firing"
    )
    planner = commands.add_parser(
        "plan",
        help="the cheapest Lambda setup for a workload: x86_64/arm64, on demand, provisioned, SnapStart,"
        " Managed Instances",
        description=help_description(plan.__doc__),
    )
    plan.add_arguments(planner)
    planner.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="every row and the prices, as JSON"
    )
    look.add_argument(
        "--failures",
        type=positive_int,
        default=status.DEFAULT_FAILURES,
        metavar="N",
        help=f"how many of the latest failures to list (default {status.DEFAULT_FAILURES})",
    )
    return parser


def _locate(args: argparse.Namespace) -> Locations:
    flags = {name: getattr(args, name, None) for name in (*FLAG_FIELDS, "key_prefix", "key_suffixes")}
    return locate(flags, local=getattr(args, "local", False), stack=getattr(args, "stack", None))


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    as_json = getattr(args, "json", False)
    stdout = Console(file=out, highlight=False, soft_wrap=True)
    stderr = Console(file=err, highlight=False)
    locations = _locate(args)
    if args.command == "status":
        report = status.run_status(locations, failures=args.failures)
        render.print_json(
            {**report.as_json(), "locations": _where(locations)}, out
        ) if as_json else render.render_status(report, stdout)
        return EXIT_OK
    bar = render.BarProgress(stderr, "sending" if args.command == "backfill" else "redriving")
    with StopRequested() as stop:
        try:
            if args.command == "backfill":
                result: Any = backfill.run_backfill(
                    locations,
                    prefix=getattr(args, "prefix", None),
                    dry_run=args.dry_run,
                    include_done=args.include_done,
                    rate=args.rate,
                    progress=bar,
                    stop=stop,
                )
            else:
                result = redrive.run_redrive(locations, dry_run=args.dry_run, progress=bar, stop=stop)
        finally:
            bar.close()
    if as_json:
        render.print_json({**result.as_json(), "locations": _where(locations)}, out)
    elif args.command == "backfill":
        render.render_backfill(result, stdout)
    else:
        render.render_redrive(result, stdout)
    if result.interrupted:
        return EXIT_INTERRUPTED
    failed = result.send_failures if args.command == "backfill" else result.left
    return EXIT_FAILED if failed else EXIT_OK


def _where(locations: Locations) -> dict[str, Any]:
    where = describe(locations)
    where["key_suffixes"] = list(where["key_suffixes"])
    where["mode"] = locations.mode
    return where


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    if args.command == "plan":
        try:
            plan.run_plan(args, out)
        except plan.PlanError as error:
            err.write(f"error: {error}\n")
            return EXIT_USAGE
        return EXIT_OK
    try:
        return run(args, out, err)
    except LocateError as error:
        err.write(f"error: {error}\n")
        return EXIT_USAGE
    except NoCredentialsError:
        err.write(
            "error: no AWS credentials found: configure them (aws configure, AWS_PROFILE) or use --local\n"
        )
        return EXIT_FAILED
    except ClientError as error:
        details = error.response.get("Error", {})
        code, message = details.get("Code", "error"), details.get("Message", "")
        err.write(f"error: AWS refused {error.operation_name}: {code}: {message}\n")
        return EXIT_FAILED
    except BotoCoreError as error:
        err.write(f"error: {error}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
