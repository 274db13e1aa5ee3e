"""Caption events: one EventBridge event per captioned or failed object, published after its item is written
(CAPTION_EVENTS=true), to EVENT_BUS_NAME or the account's default bus.

Each event: source CAPTION_EVENT_SOURCE, detail-type CAPTION_EVENT_DETAIL_TYPES[status], detail
{bucket, key, etag, status, caption | error, model}. PutEvents takes at most 10 entries a call and answers
per entry: entries it refuses (FailedEntryCount > 0) are sent again, a few times, and those still refused
are returned so the caller can hand their objects back for a later delivery (their items stay `pending`,
captions_table.CAPTION_EVENT, and the redelivery publishes them again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from captioning.contract.constants import CAPTION_EVENT_DETAIL_TYPES, CAPTION_EVENT_SOURCE
from captioning.function.aws_errors import describe_error

PUT_EVENTS_LIMIT = 10
"""Most entries one PutEvents call may hold (its total size limit, 256 KB, is far above ten caption events:
a key is at most 1 KB)."""
PUBLISH_ATTEMPTS = 3
"""Calls per batch for the entries PutEvents refuses (throttled, internal failure), after the client's own
retries of a failed call."""
RETRY_DELAY_S = 0.1
"""First pause before entries are sent again; doubled each time."""


@dataclass(frozen=True)
class CaptionEvent:
    """What one caption event says about an object whose item was written."""

    bucket: str
    key: str
    etag: str
    status: str
    model: str
    caption: str | None = None
    error: str | None = None

    def detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "bucket": self.bucket,
            "key": self.key,
            "etag": self.etag,
            "status": self.status,
            "model": self.model,
        }
        if self.caption is not None:
            detail["caption"] = self.caption
        if self.error is not None:
            detail["error"] = self.error
        return detail

    def entry(self, event_bus_name: str | None) -> dict[str, Any]:
        """The PutEvents entry (no EventBusName: the default bus)."""
        entry: dict[str, Any] = {
            "Source": CAPTION_EVENT_SOURCE,
            "DetailType": CAPTION_EVENT_DETAIL_TYPES[self.status],
            "Detail": json.dumps(self.detail(), ensure_ascii=False),
            "Resources": [f"arn:aws:s3:::{self.bucket}/{self.key}"],
        }
        if event_bus_name:
            entry["EventBusName"] = event_bus_name
        return entry


def publish(
    events_client: Any, event_bus_name: str | None, events: Sequence[CaptionEvent]
) -> dict[CaptionEvent, str]:
    """Publish `events` in batches of PUT_EVENTS_LIMIT; returns the events not published and why.

    A call that fails as a whole (after the client's retries; e.g. the bus does not exist, or access is
    denied) fails every entry of its batch; entries PutEvents refuses one by one are sent again up to
    PUBLISH_ATTEMPTS calls.
    """
    failures: dict[CaptionEvent, str] = {}
    for start in range(0, len(events), PUT_EVENTS_LIMIT):
        failures.update(
            _publish_batch(events_client, event_bus_name, events[start : start + PUT_EVENTS_LIMIT])
        )
    return failures


def _publish_batch(
    events_client: Any, event_bus_name: str | None, batch: Sequence[CaptionEvent]
) -> dict[CaptionEvent, str]:
    pending = list(batch)
    refused: dict[CaptionEvent, str] = {}
    for attempt in range(PUBLISH_ATTEMPTS):
        if attempt:
            time.sleep(RETRY_DELAY_S * 2 ** (attempt - 1))
        try:
            response = events_client.put_events(Entries=[event.entry(event_bus_name) for event in pending])
        except (ClientError, BotoCoreError) as error:
            return {event: f"PutEvents failed: {describe_error(error)}" for event in pending}
        if not response.get("FailedEntryCount"):
            return {}
        # Entries are answered in order; one with an ErrorCode, or no answer at all, was not published.
        answers = response.get("Entries", [])
        refused = {}
        for index, event in enumerate(pending):
            answer = answers[index] if index < len(answers) else {}
            if answer.get("ErrorCode") or not answer.get("EventId"):
                code, message = answer.get("ErrorCode", "no answer"), answer.get("ErrorMessage", "")
                refused[event] = f"{code}: {message}".strip()
        pending = list(refused)
        if not pending:
            return {}
    return {
        event: f"PutEvents refused it {PUBLISH_ATTEMPTS} times: {reason}" for event, reason in refused.items()
    }
