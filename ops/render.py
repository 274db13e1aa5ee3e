"""How the commands show what they do: a progress bar on stderr, a summary on stdout, or JSON."""

from __future__ import annotations

import json
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ops.backfill import BackfillSummary
from ops.redrive import RedriveSummary
from ops.status import StatusReport


class BarProgress:
    """A rich progress bar (on the stderr console) for ops.backfill.Progress's calls."""

    def __init__(self, console: Console, description: str) -> None:
        self._console = console
        self._description = description
        self._progress: Progress | None = None
        self._task: Any = None
        self._status: Any = None

    def listing(self, listed: int) -> None:
        if self._status is None:
            self._status = self._console.status("")
            self._status.start()
        self._status.update(f"listing the bucket: {listed} objects")

    def start(self, total: int) -> None:
        self._stop_status()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self._description, total=total)

    def advance(self, count: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, count)

    def close(self) -> None:
        self._stop_status()
        if self._progress is not None:
            self._progress.stop()

    def _stop_status(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def print_json(document: dict[str, Any], out: TextIO) -> None:
    out.write(json.dumps(document, indent=2, default=str) + "\n")


def render_backfill(summary: BackfillSummary, console: Console) -> None:
    target = "the upload queue" if summary.mode == "queue" else "the function (asynchronous invocations)"
    table = Table(
        title=f"backfill ({summary.mode} mode{', dry run' if summary.dry_run else ''})", show_header=False
    )
    table.add_column("what")
    table.add_column("objects", justify="right")
    table.add_row(
        f"listed under prefix {summary.prefix!r}" if summary.prefix else "listed (whole bucket)",
        str(summary.listed),
    )
    table.add_row("not delivered by the pipeline's key filters", str(summary.not_delivered))
    table.add_row("already have their item (same ETag)", str(summary.already_done))
    table.add_row(
        "to send" if summary.dry_run else f"sent to {target}",
        str(summary.to_send if summary.dry_run else summary.sent),
    )
    if summary.send_failures:
        table.add_row("could not be sent", str(len(summary.send_failures)))
    console.print(table)
    for key, reason in sorted(summary.send_failures.items())[:20]:
        console.print(f"  not sent: {key}: {reason}")
    if summary.interrupted:
        console.print(
            f"stopped after {summary.sent} of {summary.to_send}: run the same command again to send the rest"
        )
    elif summary.dry_run:
        console.print("dry run: nothing was sent")


def render_redrive(summary: RedriveSummary, console: Console) -> None:
    where = "the upload queue" if summary.mode == "queue" else "the function"
    if summary.dry_run:
        console.print(
            f"dry run: {summary.waiting} message(s) in the dead-letter queue would go back to {where}"
        )
        return
    if summary.waiting == 0:
        console.print("the dead-letter queue is empty: nothing to redrive")
        return
    console.print(
        f"redrive ({summary.mode} mode, {summary.method}): {summary.moved} message(s) back to {where}"
    )
    if summary.note:
        console.print(f"  note: {summary.note}")
    for message_id, reason in sorted(summary.left.items())[:20]:
        console.print(f"  left in the dead-letter queue: {message_id}: {reason}")
    if summary.interrupted:
        console.print("stopped: run the same command again to move the rest")


def render_status(report: StatusReport, console: Console) -> None:
    items = Table(title=f"captions table ({report.total} items)")
    items.add_column("status")
    items.add_column("items", justify="right")
    for status, count in report.items.items():
        items.add_row(status, str(count))
    console.print(items)
    if report.queues:
        queues = Table(title="queues")
        queues.add_column("queue")
        queues.add_column("waiting", justify="right")
        queues.add_column("in flight", justify="right")
        for label, depth in report.queues.items():
            queues.add_row(label, str(depth["visible"]), str(depth["in_flight"]))
        console.print(queues)
    if report.failures:
        failures = Table(title=f"last {len(report.failures)} failure(s)")
        failures.add_column("when")
        failures.add_column("key")
        failures.add_column("reason")
        for failure in report.failures:
            failures.add_row(failure["created_at"][:19], failure["key"], failure["error"])
        console.print(failures)
    if report.alarms is None:
        console.print(f"alarms: {report.alarms_note}")
    elif not report.alarms:
        console.print("alarms: none firing")
    else:
        console.print(f"alarms: {len(report.alarms)} firing")
        for alarm in report.alarms:
            console.print(f"  {alarm['name']} ({alarm['metric']}) since {alarm['since']}: {alarm['reason']}")
