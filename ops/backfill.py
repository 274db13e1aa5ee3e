"""`python -m ops backfill`: caption the objects already in the bucket, fed to the pipeline as S3 would.

S3 notifies only of new uploads; objects put before the pipeline existed (or while its notification was
off) are never captioned. This lists the bucket, keeps the keys the component's filters would deliver,
skips those whose item already exists for the same ETag (unless --all), and sends the rest: in queue
mode (the queue and eventbridge triggers: both feed the function from the upload queue, which takes
S3-notification bodies in either) one S3-notification message per object on the upload queue, in direct
mode one asynchronous invocation per object with an S3 event, as S3 itself does. Safe to stop and run
again: what was already captioned is skipped, and the function recognises a redelivery of anything sent
twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from captioning.aws_events import s3_notification_event, s3_notification_record
from captioning.contract.key_filters import delivered, key_filters
from captioning.function.captions_table import item_versions
from ops.aws import SQS_MESSAGES_PER_CALL
from ops.control import RateLimit, StopRequested
from ops.locate import LocateError, Locations

DEFAULT_RATE = 10.0
"""Objects sent per second by default: a pace the pipeline absorbs without a burst of throttles."""


@dataclass(frozen=True)
class ListedObject:
    key: str
    size: int
    etag: str
    last_modified: datetime


@dataclass
class BackfillSummary:
    mode: str
    prefix: str
    dry_run: bool
    listed: int = 0
    not_delivered: int = 0
    """Keys the component's key filters would never deliver (S3 would not notify the function)."""
    already_done: int = 0
    """Keys whose item exists for the same ETag (not sent; --all sends them)."""
    to_send: int = 0
    sent: int = 0
    send_failures: dict[str, str] = field(default_factory=dict)
    """key -> why it could not be sent."""
    interrupted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"command": "backfill", **asdict(self)}


class Progress:
    """What a command reports while it works (the CLI draws a bar; tests may pass a recorder)."""

    def listing(self, listed: int) -> None: ...

    def start(self, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


def effective_prefix(locations: Locations, prefix: str | None) -> str:
    """The listing prefix: the user's, which must lie inside the pipeline's own key prefix."""
    own = locations.key_prefix or ""
    if prefix is None or prefix == "":
        return own
    if prefix.startswith(own):
        return prefix
    if own.startswith(prefix):
        return own  # a wider prefix than the pipeline's: only the pipeline's keys can be delivered
    raise LocateError(
        f"--prefix {prefix!r} is outside the pipeline's key prefix {own!r}: S3 never notifies the function "
        "of those keys, so they cannot be backfilled"
    )


def list_objects(locations: Locations, prefix: str) -> Iterator[list[ListedObject]]:
    """The bucket's objects under `prefix`, a page (up to 1,000) at a time."""
    paginator = locations.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=locations.bucket, Prefix=prefix):
        yield [
            ListedObject(
                key=entry["Key"],
                size=int(entry.get("Size", 0)),
                etag=entry.get("ETag", "").strip('"'),
                last_modified=entry["LastModified"],
            )
            for entry in page.get("Contents", [])
        ]


def plan(
    locations: Locations,
    summary: BackfillSummary,
    *,
    include_done: bool,
    progress: Progress,
    stop: StopRequested | None = None,
) -> list[ListedObject]:
    """The objects to send: listed, filtered as S3 would, without those already captioned (or failed)
    for the same version unless `include_done`. A stop asked for while listing ends it after the page."""
    dynamodb = locations.client("dynamodb")
    filters = key_filters(locations.key_prefix, locations.key_suffixes)
    pending: list[ListedObject] = []
    for page in list_objects(locations, summary.prefix):
        summary.listed += len(page)
        progress.listing(summary.listed)
        candidates = [obj for obj in page if delivered(obj.key, filters)]
        summary.not_delivered += len(page) - len(candidates)
        if not include_done and candidates:
            versions = item_versions(dynamodb, locations.table, [obj.key for obj in candidates])
            done = [obj for obj in candidates if obj.key in versions and versions[obj.key][1] == obj.etag]
            summary.already_done += len(done)
            done_keys = {obj.key for obj in done}
            candidates = [obj for obj in candidates if obj.key not in done_keys]
        pending.extend(candidates)
        if stop is not None and stop.requested:
            summary.interrupted = True
            break
    summary.to_send = len(pending)
    return pending


def notification(locations: Locations, obj: ListedObject, region: str) -> dict[str, Any]:
    """The S3 notification S3 would have sent when `obj` was created."""
    record = s3_notification_record(
        locations.bucket or "",
        obj.key,
        size=obj.size,
        etag=obj.etag,
        event_time=obj.last_modified,
        region=region,
    )
    return s3_notification_event([record])


def run_backfill(
    locations: Locations,
    *,
    prefix: str | None = None,
    dry_run: bool = False,
    include_done: bool = False,
    rate: float = DEFAULT_RATE,
    progress: Progress | None = None,
    stop: StopRequested | None = None,
) -> BackfillSummary:
    locations.require("bucket", "table")
    if locations.mode == "direct":
        locations.require("function_name")
    progress = progress or Progress()
    summary = BackfillSummary(
        mode=locations.mode, prefix=effective_prefix(locations, prefix), dry_run=dry_run
    )
    pending = plan(locations, summary, include_done=include_done, progress=progress, stop=stop)
    if dry_run or not pending or summary.interrupted:
        return summary
    send = _queue_sender(locations) if locations.mode == "queue" else _function_invoker(locations)
    limit = RateLimit(rate)
    progress.start(len(pending))
    for start in range(0, len(pending), SQS_MESSAGES_PER_CALL):
        if stop is not None and stop.requested:
            summary.interrupted = True
            break
        batch = pending[start : start + SQS_MESSAGES_PER_CALL]
        limit.wait(len(batch), stop)
        if stop is not None and stop.requested:  # asked while waiting for the rate limit
            summary.interrupted = True
            break
        failures = send(batch)
        summary.sent += len(batch) - len(failures)
        summary.send_failures.update(failures)
        progress.advance(len(batch))
    return summary


Sender = Callable[[list[ListedObject]], dict[str, str]]


def _queue_sender(locations: Locations) -> Sender:
    sqs = locations.client("sqs")
    region = sqs.meta.region_name

    def send(batch: list[ListedObject]) -> dict[str, str]:
        entries = [
            {"Id": str(index), "MessageBody": json.dumps(notification(locations, obj, region))}
            for index, obj in enumerate(batch)
        ]
        try:
            response = sqs.send_message_batch(QueueUrl=locations.queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as error:
            return {obj.key: describe_error(error) for obj in batch}
        return {
            batch[int(failed["Id"])].key: f"{failed.get('Code', 'error')}: {failed.get('Message', '')}"
            for failed in response.get("Failed", [])
        }

    return send


def _function_invoker(locations: Locations) -> Sender:
    lambda_client = locations.client("lambda")
    region = lambda_client.meta.region_name

    def send(batch: list[ListedObject]) -> dict[str, str]:
        failures = {}
        for obj in batch:
            try:
                response = lambda_client.invoke(
                    FunctionName=locations.function_name,
                    InvocationType="Event",
                    Payload=json.dumps(notification(locations, obj, region)).encode(),
                )
            except (ClientError, BotoCoreError) as error:
                failures[obj.key] = describe_error(error)
                continue
            if response.get("StatusCode") != 202:
                failures[obj.key] = f"asynchronous invocation answered {response.get('StatusCode')}"
        return failures

    return send


def describe_error(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'error')}: {details.get('Message', '')}".strip()
    return f"{type(error).__name__}: {error}"
