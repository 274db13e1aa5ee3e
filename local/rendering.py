"""How the local commands show results: a progress bar on stderr, a table or JSON on stdout, the
lines `serve` prints as captions land, the soak's summary. No AWS calls here (local/tracking.py polls)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from captioning.contract.constants import ItemStatus
from local.dead_letters import DeadLetter
from local.tracking import SKIPPED, KeyResult

STATUS_STYLES = {ItemStatus.CAPTIONED: "green", SKIPPED: "yellow"}
DEAD_LETTERED = "dead-lettered"


class ProgressDisplay:
    """A rich progress bar on stderr counting accounted keys."""

    def __init__(self, total: int, console: Console, description: str = "Captioning") -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[summary]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task(description, total=total, summary="")
        self._counts = {ItemStatus.CAPTIONED: 0, ItemStatus.FAILED: 0, SKIPPED: 0}
        self._lock = threading.Lock()  # updated by the poller and the uploader

    def __enter__(self) -> ProgressDisplay:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def update(self, new: Sequence[KeyResult]) -> None:
        with self._lock:
            for result in new:
                status = result.status if result.status in self._counts else ItemStatus.FAILED
                self._counts[status] += 1
            captioned, failed = self._counts[ItemStatus.CAPTIONED], self._counts[ItemStatus.FAILED]
            summary = f"[green]{captioned} captioned[/] · [red]{failed} failed[/]"
            if self._counts[SKIPPED]:
                summary += f" · [yellow]{self._counts[SKIPPED]} skipped[/]"
            self._progress.update(self._task, advance=len(new), summary=summary)


def results_table(results: Sequence[KeyResult]) -> Table:
    """key | status | caption or error | latency, for people."""
    table = Table(title=None, show_lines=False)
    table.add_column("key", overflow="fold")
    table.add_column("status")
    table.add_column("caption or error", overflow="fold")
    table.add_column("latency", justify="right")
    for result in results:
        latency = f"{result.latency_s:.2f} s" if result.latency_s is not None else "–"
        style = STATUS_STYLES.get(result.status, "red")
        table.add_row(Text(result.key), Text(result.status, style=style), Text(result.text), latency)
    return table


def results_json(results: Sequence[KeyResult]) -> str:
    return json.dumps([result.as_json() for result in results], ensure_ascii=False, indent=2)


def print_results(results: Sequence[KeyResult], stream: Any, *, as_json: bool) -> None:
    """The results on `stream`: JSON, or a table (one line per row when piped)."""
    if as_json:
        stream.write(results_json(results) + "\n")
    else:
        console = Console(file=stream)
        if not console.is_terminal:  # piped or redirected: long rows stay on one line
            console.width = 240
        console.print(results_table(results))
    stream.flush()


def item_line(result: KeyResult) -> str:
    """`serve`'s line for a captions-table item."""
    return f"{result.status:<10} {result.key}  {result.text}"


def dead_letter_line(letter: DeadLetter, max_receive_count: int, retry_reasons: Mapping[str, str]) -> str:
    """`serve`'s line for a message newly parked in the dead-letter queue."""
    if not letter.keys:
        return f"{DEAD_LETTERED} message {letter.message_id}  {letter.problem or 'names no object'}"
    reasons = "; ".join(f"{key}: {retry_reasons[key]}" for key in letter.keys if key in retry_reasons)
    why = f"last error: {reasons}" if reasons else "transient errors or timeouts"
    return (
        f"{DEAD_LETTERED} {', '.join(letter.keys)}  after {max_receive_count} failed deliveries ({why}); "
        f"message {letter.message_id} is kept in the dead-letter queue"
    )


def summary_table(summary: Mapping[str, Any], fault_kinds: Mapping[str, int]) -> Table:
    """The soak's summary, one measure a row, then the injected faults by kind."""
    table = Table(title="soak summary")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in summary.items():
        table.add_row(name, str(value))
    for kind, count in fault_kinds.items():
        table.add_row(f"  fault: {kind}", str(count))
    return table
