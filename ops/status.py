"""`python -m ops status`: how the pipeline is doing, in one look.

Items by status, the last failures with their reasons, what waits in the upload and dead-letter queues,
and which alarms are firing (the alarms that notify this stack's topic).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from captioning.contract.constants import TABLE_KEY
from ops.backfill import describe_error
from ops.locate import Locations
from ops.redrive import queue_depth

DEFAULT_FAILURES = 10


@dataclass
class StatusReport:
    mode: str
    items: dict[str, int] = field(default_factory=dict)
    """status -> number of items."""
    failures: list[dict[str, str]] = field(default_factory=list)
    """The most recent failed items, newest first: key, error, created_at."""
    queues: dict[str, dict[str, int]] = field(default_factory=dict)
    """"upload queue" / "dead-letter queue" -> visible, in_flight."""
    alarms: list[dict[str, str]] | None = None
    """Alarms in ALARM state (None: not known, see alarms_note)."""
    alarms_note: str | None = None

    @property
    def total(self) -> int:
        return sum(self.items.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "command": "status",
            "mode": self.mode,
            "items": {"total": self.total, **self.items},
            "failures": self.failures,
            "queues": self.queues,
            "alarms_firing": self.alarms,
            "alarms_note": self.alarms_note,
        }


def scan_items(locations: Locations) -> tuple[Counter[str], list[dict[str, str]]]:
    """Counts by status, and every failed item's key, error and time (a full, paginated scan)."""
    paginator = locations.client("dynamodb").get_paginator("scan")
    counts: Counter[str] = Counter()
    failed: list[dict[str, str]] = []
    for page in paginator.paginate(
        TableName=locations.table,
        ProjectionExpression="#key, #status, #error, #created",
        ExpressionAttributeNames={
            "#key": TABLE_KEY,
            "#status": "status",
            "#error": "error",
            "#created": "created_at",
        },
    ):
        for item in page.get("Items", []):
            status = item.get("status", {}).get("S", "unknown")
            counts[status] += 1
            if status == "failed":
                failed.append(
                    {
                        "key": item[TABLE_KEY]["S"],
                        "error": item.get("error", {}).get("S", ""),
                        "created_at": item.get("created_at", {}).get("S", ""),
                    }
                )
    return counts, failed


def firing_alarms(locations: Locations) -> list[dict[str, str]]:
    """Alarms in ALARM state among those that notify this stack's alarm topic."""
    paginator = locations.client("cloudwatch").get_paginator("describe_alarms")
    firing = []
    for page in paginator.paginate(ActionPrefix=locations.alarm_topic_arn, StateValue="ALARM"):
        for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
            if alarm.get("StateValue") != "ALARM":  # asked for; some endpoints ignore it beside ActionPrefix
                continue
            firing.append(
                {
                    "name": alarm["AlarmName"],
                    "metric": alarm.get("MetricName", ""),
                    "since": str(alarm.get("StateUpdatedTimestamp", "")),
                    "reason": alarm.get("StateReason", ""),
                }
            )
    return firing


def run_status(locations: Locations, *, failures: int = DEFAULT_FAILURES) -> StatusReport:
    locations.require("table")
    report = StatusReport(mode=locations.mode)
    counts, failed = scan_items(locations)
    report.items = dict(sorted(counts.items()))
    report.failures = sorted(failed, key=lambda item: item["created_at"], reverse=True)[:failures]
    for label, url in (
        ("upload queue", locations.queue_url),
        ("dead-letter queue", locations.dead_letter_queue_url),
    ):
        if url:
            visible, in_flight = queue_depth(locations, url)
            report.queues[label] = {"visible": visible, "in_flight": in_flight}
    if locations.local:
        report.alarms_note = "the local emulator has no alarms"
    elif not locations.alarm_topic_arn:
        report.alarms_note = "alarm topic unknown: pass --alarm-topic-arn (the stack output alarmTopicArn)"
    else:
        try:
            report.alarms = firing_alarms(locations)
        except (ClientError, BotoCoreError) as error:
            report.alarms_note = f"could not read the alarms: {describe_error(error)}"
    return report
