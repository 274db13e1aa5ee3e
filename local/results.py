"""Accounting for uploads: wait until each key is captioned, failed or dead-lettered, then report.

A key is accounted for when the captions table holds its item, or when a message naming it sits in
the dead-letter queue. The table wins: a key dead-lettered once but captioned by another delivery
is captioned.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from handler.events import MalformedEvent, objects_in_notification
from local.emulator import Deployment

logger = logging.getLogger(__name__)

CAPTIONED = "captioned"
FAILED = "failed"
POLL_INTERVAL_S = 0.25
BATCH_GET_LIMIT = 100
_DESERIALIZER = TypeDeserializer()


@dataclass
class Outcome:
    """What became of one uploaded key."""

    key: str
    status: str
    caption: str | None = None
    error: str | None = None
    latency_s: float | None = None
    inference_ms: float | None = None
    dead_lettered: bool = False

    def as_json(self) -> dict[str, str]:
        """The object `--json` prints: key, status, and caption or error."""
        result = {"key": self.key, "status": self.status}
        if self.status == CAPTIONED:
            result["caption"] = self.caption or ""
        else:
            result["error"] = self.error or "unknown error"
        return result


def outcome_from_item(item: dict[str, Any], latency_s: float | None = None) -> Outcome:
    """An Outcome from a captions-table item in DynamoDB's wire format."""
    plain = {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}
    inference_ms = plain.get("inference_ms")
    status = plain.get("status")
    return Outcome(
        key=plain["key"],
        status=CAPTIONED if status == CAPTIONED else FAILED,
        caption=plain.get("caption"),
        error=plain.get("error")
        or (None if status in (CAPTIONED, FAILED) else f"unexpected status {status!r}"),
        latency_s=latency_s,
        inference_ms=float(inference_ms) if isinstance(inference_ms, (Decimal, int, float)) else None,
    )


def keys_in_notification(body: str) -> list[str]:
    """Object keys an SQS message body names (the function's own parser, keys decoded); none for
    S3's test event or a body that is no S3 notification."""
    try:
        return [ref.key for ref in objects_in_notification(json.loads(body))]
    except (ValueError, MalformedEvent):  # MalformedEvent is a ValueError; json errors too
        return []


class ResultCollector:
    """Polls the table and the dead-letter queue for the keys it is told to expect."""

    def __init__(self, deployment: Deployment, retry_reasons: Mapping[str, str] | None = None) -> None:
        self.deployment = deployment
        self.retry_reasons = retry_reasons if retry_reasons is not None else {}
        self._dynamodb = deployment.client("dynamodb")
        self._sqs = deployment.client("sqs")
        self._uploaded_at: dict[str, float] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.dead_lettered: dict[str, int] = {}  # key -> receive count when it was parked

    def expect(self, keys: Iterable[str]) -> None:
        """Count these keys in: the wait is over only when each is accounted for."""
        now = time.monotonic()
        for key in keys:
            self._uploaded_at.setdefault(key, now)

    def uploaded(self, key: str) -> None:
        """The key's object is in the bucket now: its latency counts from here."""
        self._uploaded_at[key] = time.monotonic()

    def settle(self, key: str, outcome: Outcome) -> None:
        """Account for a key without looking for it (e.g. its upload failed)."""
        self.outcomes[key] = outcome

    @property
    def pending(self) -> list[str]:
        return [key for key in self._uploaded_at if key not in self.outcomes]

    def poll(self) -> list[Outcome]:
        """One look at the table and the DLQ; returns the outcomes newly accounted for."""
        found = self._read_items(self.pending)
        self.read_dead_letters()
        for key in self.pending:
            if key not in found and key in self.dead_lettered:
                found[key] = self.dead_letter_outcome(key)
        self.outcomes.update(found)
        return list(found.values())

    def refresh_dead_lettered(self) -> None:
        """Re-read dead-lettered keys from the table: a later delivery may have written their item."""
        parked = [key for key, outcome in self.outcomes.items() if outcome.dead_lettered]
        for key, outcome in self._read_items(parked).items():
            self.outcomes[key] = outcome

    def wait(
        self,
        stall_timeout_s: float,
        on_progress: Callable[[Sequence[Outcome]], None] | None = None,
    ) -> bool:
        """Poll until every expected key is accounted for; True when all are.

        Gives up (False) only when nothing new was accounted for during `stall_timeout_s`, so a long
        run that keeps progressing is never cut short and a stuck one never hangs.
        """
        deadline = time.monotonic() + stall_timeout_s
        while True:
            new = self.poll()
            if on_progress is not None:
                on_progress(new)
            if not self.pending:
                self.refresh_dead_lettered()
                return True
            if new:
                deadline = time.monotonic() + stall_timeout_s
            elif time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL_S)

    def wait_until_queue_drained(self, timeout_s: float) -> bool:
        """Wait until the queue holds no message, visible or in flight (redeliveries and duplicates done)."""
        deadline = time.monotonic() + timeout_s
        while True:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self.deployment.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if (
                attributes["ApproximateNumberOfMessages"] == "0"
                and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
            ):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL_S)

    def read_table(self, keys: Sequence[str]) -> dict[str, Outcome]:
        """Current items for `keys` (no latency), for a final read-back."""
        return self._read_items(keys, with_latency=False)

    def _read_items(self, keys: Sequence[str], *, with_latency: bool = True) -> dict[str, Outcome]:
        found: dict[str, Outcome] = {}
        now = time.monotonic()
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.deployment.table: {
                    "Keys": [{"key": {"S": key}} for key in keys[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self._dynamodb.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.deployment.table, []):
                    key = item["key"]["S"]
                    latency = (
                        now - self._uploaded_at[key] if with_latency and key in self._uploaded_at else None
                    )
                    found[key] = outcome_from_item(item, latency)
                request = response.get("UnprocessedKeys") or {}
        return found

    def read_dead_letters(self) -> None:
        """Note the keys of messages newly parked in the dead-letter queue."""
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self.deployment.dead_letter_queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                # Read each parked message once; it stays in the DLQ for a person to inspect or redrive.
                VisibilityTimeout=12 * 3600,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
            if not messages:
                return
            for message in messages:
                receive_count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "0"))
                for key in keys_in_notification(message["Body"]):
                    self.dead_lettered[key] = max(self.dead_lettered.get(key, 0), receive_count)

    def dead_letter_outcome(self, key: str) -> Outcome:
        """A dead-lettered key, as failed with the reason."""
        deliveries = self.deployment.max_receive_count
        last_error = self.retry_reasons.get(key, "transient errors or timeouts")
        return Outcome(
            key=key,
            status=FAILED,
            error=(
                f"dead-lettered after {deliveries} failed deliveries (last error: {last_error}); "
                "the event is kept in the dead-letter queue"
            ),
            latency_s=time.monotonic() - self._uploaded_at[key] if key in self._uploaded_at else None,
            dead_lettered=True,
        )


def in_upload_order(keys: Sequence[str], outcomes: dict[str, Outcome]) -> list[Outcome]:
    """One outcome per key, in the order given; a key never accounted for is failed, saying so."""
    return [
        outcomes.get(key)
        or Outcome(
            key=key, status=FAILED, error="not accounted for: no caption item and no dead-lettered event"
        )
        for key in keys
    ]


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
        self._captioned = 0
        self._failed = 0
        self._lock = threading.Lock()  # updated by the poller and the uploader

    def __enter__(self) -> ProgressDisplay:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def update(self, new: Sequence[Outcome]) -> None:
        with self._lock:
            for outcome in new:
                if outcome.status == CAPTIONED:
                    self._captioned += 1
                else:
                    self._failed += 1
            self._progress.update(
                self._task,
                advance=len(new),
                summary=f"[green]{self._captioned} captioned[/] · [red]{self._failed} failed[/]",
            )


def results_table(outcomes: Sequence[Outcome]) -> Table:
    """key | status | caption or error | latency, for people."""
    table = Table(title=None, show_lines=False)
    table.add_column("key", overflow="fold")
    table.add_column("status")
    table.add_column("caption or error", overflow="fold")
    table.add_column("latency", justify="right")
    for outcome in outcomes:
        style = "green" if outcome.status == CAPTIONED else "red"
        text = outcome.caption if outcome.status == CAPTIONED else outcome.error
        latency = f"{outcome.latency_s:.2f} s" if outcome.latency_s is not None else "–"
        table.add_row(Text(outcome.key), Text(outcome.status, style=style), Text(text or ""), latency)
    return table


def results_json(outcomes: Sequence[Outcome]) -> str:
    return json.dumps([outcome.as_json() for outcome in outcomes], ensure_ascii=False, indent=2)


class TableWatcher:
    """Reports each new or changed captions-table item and each newly dead-lettered key (for `serve`)."""

    def __init__(self, deployment: Deployment, retry_reasons: Mapping[str, str] | None = None) -> None:
        self.deployment = deployment
        self._dynamodb = deployment.client("dynamodb")
        self._collector = ResultCollector(deployment, retry_reasons)
        self._seen_items: dict[str, tuple[str, str]] = {}
        self._seen_dead_letters: set[str] = set()

    def poll(self) -> list[Outcome]:
        new: list[Outcome] = []
        for page in self._dynamodb.get_paginator("scan").paginate(
            TableName=self.deployment.table, ConsistentRead=True
        ):
            for item in page["Items"]:
                outcome = outcome_from_item(item)
                version = (item.get("etag", {}).get("S", ""), item.get("created_at", {}).get("S", ""))
                if self._seen_items.get(outcome.key) != version:
                    self._seen_items[outcome.key] = version
                    new.append(outcome)
        self._collector.read_dead_letters()
        for key in sorted(set(self._collector.dead_lettered) - self._seen_dead_letters):
            self._seen_dead_letters.add(key)
            if key not in self._seen_items:
                new.append(self._collector.dead_letter_outcome(key))
        return new
