"""Accounting for uploads: poll the captions table and the dead-letter queue until each key is
captioned, failed or dead-lettered.

The table wins: a key dead-lettered once but captioned by another delivery is captioned.
(Showing the results is local/rendering.py's job.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from captioning.contract.constants import TABLE_KEY, ItemStatus
from local.dead_letters import DeadLetter, DeadLetterPeek
from local.resources import EmulatedResources

SKIPPED = "skipped"
"""A local-only status: a file the deployed notification's key filters would not deliver."""
POLL_INTERVAL_S = 0.25
BATCH_GET_LIMIT = 100
_DESERIALIZER = TypeDeserializer()


@dataclass
class KeyResult:
    """What became of one uploaded key: captioned, failed (with the reason) or skipped."""

    key: str
    status: str
    caption: str | None = None
    error: str | None = None
    latency_s: float | None = None
    inference_ms: float | None = None
    dead_lettered: bool = False

    @property
    def text(self) -> str:
        """The caption, or why there is none."""
        return (self.caption if self.status == ItemStatus.CAPTIONED else self.error) or ""

    def as_json(self) -> dict[str, str]:
        """The object `--json` prints: key, status, and caption, error or (skipped) reason."""
        result = {"key": self.key, "status": self.status}
        if self.status == ItemStatus.CAPTIONED:
            result["caption"] = self.caption or ""
        elif self.status == SKIPPED:
            result["reason"] = self.error or ""
        else:
            result["error"] = self.error or "unknown error"
        return result


def result_from_item(item: dict[str, Any], latency_s: float | None = None) -> KeyResult:
    """A KeyResult from a captions-table item in DynamoDB's wire format."""
    plain = {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}
    inference_ms = plain.get("inference_ms")
    status = plain.get("status")
    known = status in (ItemStatus.CAPTIONED, ItemStatus.FAILED)
    return KeyResult(
        key=plain["key"],
        status=ItemStatus.CAPTIONED if status == ItemStatus.CAPTIONED else ItemStatus.FAILED,
        caption=plain.get("caption"),
        error=plain.get("error") or (None if known else f"unexpected status {status!r}"),
        latency_s=latency_s,
        inference_ms=float(inference_ms) if isinstance(inference_ms, (Decimal, int, float)) else None,
    )


def dead_letter_result(
    key: str, max_receive_count: int, retry_reasons: Mapping[str, str], latency_s: float | None = None
) -> KeyResult:
    """A dead-lettered key, as failed with the reason."""
    last_error = retry_reasons.get(key, "transient errors or timeouts")
    return KeyResult(
        key=key,
        status=ItemStatus.FAILED,
        error=(
            f"dead-lettered after {max_receive_count} failed deliveries (last error: {last_error}); "
            "the event is kept in the dead-letter queue"
        ),
        latency_s=latency_s,
        dead_lettered=True,
    )


def read_items(
    dynamodb: Any, table: str, keys: Sequence[str], latency: Callable[[str], float | None] = lambda key: None
) -> dict[str, KeyResult]:
    """The table's current items for `keys` (consistent reads), as KeyResults."""
    found: dict[str, KeyResult] = {}
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {
                "Keys": [{TABLE_KEY: {"S": key}} for key in keys[start : start + BATCH_GET_LIMIT]],
                "ConsistentRead": True,
            }
        }
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(table, []):
                key = item[TABLE_KEY]["S"]
                found[key] = result_from_item(item, latency(key))
            request = response.get("UnprocessedKeys") or {}
    return found


class ResultTracker:
    """Polls the table and the dead-letter queue for the keys it is told to expect."""

    def __init__(self, resources: EmulatedResources, retry_reasons: Mapping[str, str] | None = None) -> None:
        self.resources = resources
        self.retry_reasons: Mapping[str, str] = retry_reasons if retry_reasons is not None else {}
        self.dead_letters = DeadLetterPeek(resources)
        self._dynamodb = resources.client("dynamodb")
        self._sqs = resources.client("sqs")
        self._uploaded_at: dict[str, float] = {}
        self.results: dict[str, KeyResult] = {}

    def expect(self, keys: Iterable[str]) -> None:
        """Count these keys in: the wait is over only when each is accounted for."""
        now = time.monotonic()
        for key in keys:
            self._uploaded_at.setdefault(key, now)

    def uploaded(self, key: str) -> None:
        """The key's object is in the bucket now: its latency counts from here."""
        self._uploaded_at[key] = time.monotonic()

    def settle(self, key: str, result: KeyResult) -> None:
        """Account for a key without looking for it (its upload failed, or it was skipped)."""
        self.results[key] = result

    @property
    def pending(self) -> list[str]:
        return [key for key in self._uploaded_at if key not in self.results]

    def _latency(self, key: str) -> float | None:
        return time.monotonic() - self._uploaded_at[key] if key in self._uploaded_at else None

    def poll(self) -> list[KeyResult]:
        """One look at the table and the DLQ; returns the results newly accounted for."""
        found = read_items(self._dynamodb, self.resources.table, self.pending, self._latency)
        self.dead_letters.new_messages()
        parked = self.dead_letters.keys
        for key in self.pending:
            if key not in found and key in parked:
                found[key] = dead_letter_result(
                    key, self.resources.max_receive_count, self.retry_reasons, self._latency(key)
                )
        self.results.update(found)
        return list(found.values())

    def read_table(self, keys: Sequence[str]) -> dict[str, KeyResult]:
        """Current items for `keys` (no latency), for a final read-back."""
        return read_items(self._dynamodb, self.resources.table, keys)

    def refresh_dead_lettered(self) -> None:
        """Re-read dead-lettered keys from the table: a later delivery may have written their item."""
        parked = [key for key, result in self.results.items() if result.dead_lettered]
        self.results.update(read_items(self._dynamodb, self.resources.table, parked))

    def wait(
        self, stall_timeout_s: float, on_progress: Callable[[Sequence[KeyResult]], None] | None = None
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
                QueueUrl=self.resources.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if (
                attributes["ApproximateNumberOfMessages"]
                == attributes["ApproximateNumberOfMessagesNotVisible"]
                == "0"
            ):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL_S)


def in_upload_order(keys: Sequence[str], results: Mapping[str, KeyResult]) -> list[KeyResult]:
    """One result per key, in the order given; a key never accounted for is failed, saying so."""
    return [
        results.get(key)
        or KeyResult(
            key=key,
            status=ItemStatus.FAILED,
            error="not accounted for: no caption item and no dead-lettered event",
        )
        for key in keys
    ]


class NewItemsWatcher:
    """For `serve`: each new or changed captions-table item, and each newly dead-lettered message."""

    def __init__(self, resources: EmulatedResources, retry_reasons: Mapping[str, str] | None = None) -> None:
        self.resources = resources
        self.retry_reasons: Mapping[str, str] = retry_reasons if retry_reasons is not None else {}
        self.dead_letters = DeadLetterPeek(resources)
        self._dynamodb = resources.client("dynamodb")
        self._seen_items: dict[str, tuple[str, str]] = {}

    def new_items(self) -> list[KeyResult]:
        new: list[KeyResult] = []
        pages = self._dynamodb.get_paginator("scan").paginate(
            TableName=self.resources.table, ConsistentRead=True
        )
        for page in pages:
            for item in page["Items"]:
                result = result_from_item(item)
                version = (item.get("etag", {}).get("S", ""), item.get("created_at", {}).get("S", ""))
                if self._seen_items.get(result.key) != version:
                    self._seen_items[result.key] = version
                    new.append(result)
        return new

    def new_dead_letters(self) -> list[DeadLetter]:
        return self.dead_letters.new_messages()
