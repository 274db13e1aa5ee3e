"""Lambda entry point: S3 notifications (direct, or through SQS) -> fetch -> caption -> persist.

Init runs once per runtime, at import: settings from the environment, boto3 clients, the model. Tests and
the local pipeline set the environment first, then import (or `importlib.reload`) this module.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from captioning.contract.constants import DUPLICATE_STATUS, RETRY_STATUS, ItemStatus
from captioning.function.captioner import Captioner
from captioning.function.captions_table import caption_item, captioned_etags, put_item_once
from captioning.function.events import Delivery, ObjectRef, parse_event
from captioning.function.images import ImageRejected, check_object_size, load_image
from captioning.function.s3_objects import ObjectUnavailable, fetch_object
from captioning.function.settings import Settings
from captioning.function.telemetry import Telemetry
from captioning.function.time_budget import CaptionTimeEstimate, TimeGuard, no_deadline

# Problems no retry can fix: recorded as `failed` items, the invocation succeeds.
PERMANENT_ERRORS = (ImageRejected, ObjectUnavailable)
# Throttling, 5xx, connection errors, after the clients' own retries: the event must be retried.
TRANSIENT_ERRORS = (ClientError, BotoCoreError)

settings = Settings.from_environment()
telemetry = Telemetry.from_environment(
    metrics_enabled=settings.metrics_enabled, tracing_enabled=settings.tracing_enabled
)
logger = telemetry.logger
_client_config = Config(retries={"mode": "standard"})
s3_client = boto3.client("s3", config=_client_config)
dynamodb_client = boto3.client("dynamodb", config=_client_config)
captioner = Captioner.load(
    settings.model_dir,
    num_beams=settings.num_beams,
    max_length=settings.max_length,
    precision=settings.precision,
    model_id=settings.model_id,
    prompt=settings.prompt,
)
if captioner.runtime != settings.runtime:
    logger.warning(
        "the model directory and RUNTIME disagree: captioning with the directory's runtime",
        extra={"model_runtime": captioner.runtime, "configured_runtime": settings.runtime},
    )
caption_time = CaptionTimeEstimate()


class RetryableFailure(RuntimeError):
    """Some objects of a direct S3 event must be retried; raised so Lambda retries the event."""


@dataclass
class Outcome:
    status: str  # captioned | failed | duplicate | retry
    error: str | None = None
    inference_ms: int = 0


@dataclass
class FetchedImage:
    ref: ObjectRef
    etag: str
    size: int
    image: Image.Image


@dataclass
class Rejected:
    """An object with nothing to caption: it gets a `failed` item with the reason."""

    ref: ObjectRef
    etag: str
    size: int | None
    reason: str


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started = time.monotonic()
    delivery = parse_event(event)
    for message_id, reason in delivery.malformed_messages.items():
        logger.error("message is not an S3 notification", extra={"message_id": message_id, "error": reason})
    guard = TimeGuard(getattr(context, "get_remaining_time_in_millis", no_deadline), caption_time)
    objects = delivery.unique_objects()
    outcomes = process(objects, guard, started)
    _record_metrics(len(objects), outcomes.values())
    if delivery.from_queue:
        return batch_item_failures(delivery, outcomes)
    retries = {ref.key: outcome.error for ref, outcome in outcomes.items() if outcome.status == RETRY_STATUS}
    if retries:
        raise RetryableFailure(f"{len(retries)} of {len(outcomes)} objects must be retried: {retries}")
    return {
        status: sum(o.status == status for o in outcomes.values())
        for status in (ItemStatus.CAPTIONED.value, ItemStatus.FAILED.value, DUPLICATE_STATUS)
    }


handler = telemetry.instrument(_handle)
"""The entry point (captioning.function.main.handler): request id in every log line, traced, metrics
flushed."""


def process(objects: list[ObjectRef], guard: TimeGuard, started: float) -> dict[ObjectRef, Outcome]:
    """Fetch every new object, caption all usable images in one call, persist one item per object."""
    outcomes: dict[ObjectRef, Outcome] = {}
    fetched: list[FetchedImage] = []
    rejected: list[Rejected] = []
    with telemetry.step("fetch", objects=len(objects)):
        duplicates = already_captioned(objects)
        for ref in objects:
            if ref in duplicates:
                outcomes[ref] = Outcome(DUPLICATE_STATUS)
                continue
            if not guard.fits(len(fetched) + 1):
                outcomes[ref] = Outcome(RETRY_STATUS, "not started: too little time left in this invocation")
                continue
            result = fetch_image(ref)
            if isinstance(result, Outcome):
                outcomes[ref] = result
            elif isinstance(result, Rejected):
                rejected.append(result)
            else:
                fetched.append(result)

    fitting = guard.images_that_fit(len(fetched))
    for item in fetched[fitting:]:
        outcomes[item.ref] = Outcome(RETRY_STATUS, "not captioned: too little time left in this invocation")
    to_caption = fetched[:fitting]
    with telemetry.step("caption", images=len(to_caption)):
        captions, inference_ms = caption_all([item.image for item in to_caption])

    with telemetry.step("persist", items=len(rejected) + len(to_caption)):
        for failure in rejected:
            outcomes[failure.ref] = persist(failure.ref, failure.etag, failure.size, error=failure.reason)
        for item, caption in zip(to_caption, captions, strict=True):
            if isinstance(caption, Exception):
                outcomes[item.ref] = persist(
                    item.ref, item.etag, item.size, error=f"could not be captioned: {caption}"
                )
            else:
                outcomes[item.ref] = persist(
                    item.ref, item.etag, item.size, caption=caption, inference_ms=inference_ms
                )

    for ref, outcome in outcomes.items():
        _log_outcome(ref, outcome, started)
    return outcomes


def already_captioned(objects: list[ObjectRef]) -> set[ObjectRef]:
    """Objects whose version (the event's ETag) already has its captioned item: redeliveries, recognised
    before anything is fetched or captioned. A failed lookup only costs the saving, never correctness:
    the write stays conditional."""
    with_etag = [ref for ref in objects if ref.etag]
    if not with_etag:
        return set()
    try:
        etags = captioned_etags(dynamodb_client, settings.table_name, [ref.key for ref in with_etag])
    except TRANSIENT_ERRORS as error:
        logger.warning(
            "could not look up existing items; every object is fetched", extra={"error": _describe(error)}
        )
        return set()
    return {ref for ref in with_etag if etags.get(ref.key) == ref.etag}


def fetch_image(ref: ObjectRef) -> FetchedImage | Rejected | Outcome:
    """The object's decoded image; or why there is none to caption (Rejected); or a transient error to
    retry (Outcome)."""
    try:
        if ref.size is not None:
            check_object_size(ref.size, settings.max_object_bytes)
        fetched = fetch_object(s3_client, ref.bucket, ref.key, settings.max_object_bytes)
    except PERMANENT_ERRORS as reason:
        return Rejected(ref, ref.etag, ref.size, str(reason))
    except TRANSIENT_ERRORS as error:
        return Outcome(RETRY_STATUS, _describe(error))
    try:
        return FetchedImage(ref, fetched.etag, fetched.size, load_image(fetched.data))
    except ImageRejected as reason:
        return Rejected(ref, fetched.etag, fetched.size, str(reason))


def caption_all(images: list[Image.Image]) -> tuple[list[str | Exception], int]:
    """Captions for all images in one batched call, and the per-image share of its time in ms.

    Should the batch fail, each image is tried alone, so one image the model cannot take fails alone.
    """
    if not images:
        return [], 0
    call_started = time.monotonic()
    try:
        captions: list[str | Exception] = list(captioner.caption(images))
    except Exception:  # any model/processor error: isolate the culprit below
        logger.exception(
            "batched caption call failed; captioning images one by one", extra={"images": len(images)}
        )
        captions = [_caption_one(image) for image in images]
    elapsed_ms = (time.monotonic() - call_started) * 1000
    caption_time.record(len(images), elapsed_ms)
    return captions, round(elapsed_ms / len(images))


def _caption_one(image: Image.Image) -> str | Exception:
    try:
        return captioner.caption([image])[0]
    except Exception as error:  # noqa: BLE001  recorded as this object's failure
        return error


def persist(
    ref: ObjectRef,
    etag: str,
    size: int | None,
    *,
    caption: str | None = None,
    error: str | None = None,
    inference_ms: int = 0,
) -> Outcome:
    item = caption_item(
        key=ref.key,
        model=captioner.model_id,
        etag=etag,
        size=size,
        caption=caption,
        error=error,
        inference_ms=inference_ms,
    )
    try:
        written = put_item_once(dynamodb_client, settings.table_name, item)
    except TRANSIENT_ERRORS as write_error:
        return Outcome(RETRY_STATUS, f"could not write the item: {_describe(write_error)}")
    if not written:
        return Outcome(DUPLICATE_STATUS)
    return Outcome(item["status"], error, inference_ms)


def batch_item_failures(delivery: Delivery, outcomes: dict[ObjectRef, Outcome]) -> PartialItemFailureResponse:
    """The SQS partial-batch response: messages with an object to retry, or whose body was unreadable.

    Built here rather than with Powertools' BatchProcessor, which calls a handler per record: that would
    mean one caption call per message, and the point of a batch is one call for all its images.
    """
    to_retry = {(ref.bucket, ref.key) for ref, outcome in outcomes.items() if outcome.status == RETRY_STATUS}
    failed_ids = list(delivery.malformed_messages)
    for message in delivery.messages:
        if any((ref.bucket, ref.key) in to_retry for ref in message.objects):
            failed_ids.append(message.message_id)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed_ids]}


def _record_metrics(batch_size: int, outcomes: Iterable[Outcome]) -> None:
    done = list(outcomes)
    telemetry.record_invocation(
        batch_size=batch_size,
        captioned=sum(o.status == ItemStatus.CAPTIONED for o in done),
        failed=sum(o.status == ItemStatus.FAILED for o in done),
        duplicates=sum(o.status == DUPLICATE_STATUS for o in done),
        retries=sum(o.status == RETRY_STATUS for o in done),
        latencies_ms=[o.inference_ms for o in done if o.status == ItemStatus.CAPTIONED],
    )


def _log_outcome(ref: ObjectRef, outcome: Outcome, started: float) -> None:
    fields = {
        "key": ref.key,
        "bucket": ref.bucket,
        "status": outcome.status,
        "latency_ms": round((time.monotonic() - started) * 1000),
        "inference_ms": outcome.inference_ms,
        "error": outcome.error,
    }
    if outcome.status == RETRY_STATUS:
        logger.warning("object will be retried", extra=fields)
    else:
        logger.info("object processed", extra=fields)


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'error')}: {details.get('Message', '')}".strip()
    return f"{type(error).__name__}: {error}"
