"""What the function does: object-created events (S3 notifications or S3's EventBridge events, direct or
through SQS) -> fetch -> caption -> persist -> (with CAPTION_EVENTS) publish a caption event per item.

`CaptionHandler.from_environment()` is the function's INIT (settings, boto3 clients, the model);
captioning/function/main.py runs it at import, as Lambda's INIT phase does. Tests and the local pipeline
build one the same way, or from parts (fake clients, a captioner of their own), without importing main.

Each invocation's per-object outcomes are an `Invocation`: Lambda gets its `response()` (or, for a direct
S3 event with objects to retry, the `RetryableFailure` it raises, which carries the retry reasons); a
caller that wants the outcomes themselves (the local pipeline) sets `on_invocation`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from captioning.contract.constants import ObjectStatus
from captioning.function import caption_events
from captioning.function.aws_errors import describe_error
from captioning.function.caption_events import CaptionEvent
from captioning.function.captioner import Captioner
from captioning.function.captions_table import (
    StoredItem,
    caption_item,
    captioned_items,
    mark_event_published,
    put_item_once,
)
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

CLIENT_CONFIG = Config(retries={"mode": "standard"})
"""Standard retries whatever the runtime's defaults (AWS_RETRY_MODE) say."""


class RetryableFailure(RuntimeError):
    """Some objects of a direct S3 event must be retried; raised so Lambda retries the event.

    `retries`: object key -> why it must be retried.
    """

    def __init__(self, retries: Mapping[str, str], objects: int) -> None:
        super().__init__(f"{len(retries)} of {objects} objects must be retried: {dict(retries)}")
        self.retries = dict(retries)


@dataclass
class Outcome:
    status: ObjectStatus
    error: str | None = None
    inference_ms: int = 0
    event: CaptionEvent | None = None
    """With caption events on: the event still to publish for this object's item."""


@dataclass(frozen=True)
class Invocation:
    """What one invocation did with each object of its event."""

    delivery: Delivery
    outcomes: dict[ObjectRef, Outcome]

    @property
    def retry_reasons(self) -> dict[str, str]:
        """Object key -> why it is handed back for a later delivery."""
        return {
            ref.key: outcome.error or ObjectStatus.RETRY
            for ref, outcome in self.outcomes.items()
            if outcome.status == ObjectStatus.RETRY
        }

    def response(self) -> dict[str, Any]:
        """Lambda's answer: the partial-batch response for an SQS event; for a direct S3 event the
        count of each status, or RetryableFailure when an object must be retried."""
        if self.delivery.from_queue:
            return batch_item_failures(self.delivery, self.outcomes)
        retries = self.retry_reasons
        if retries:
            raise RetryableFailure(retries, len(self.outcomes))
        return {
            status.value: sum(o.status == status for o in self.outcomes.values())
            for status in (ObjectStatus.CAPTIONED, ObjectStatus.FAILED, ObjectStatus.DUPLICATE)
        }


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


@dataclass
class CaptionHandler:
    """The function after its INIT: settings, clients, the model, and the learned caption time.

    `handler` is the Lambda entry point (request id in every log line, traced, metrics flushed).
    """

    settings: Settings
    telemetry: Telemetry
    captioner: Captioner
    s3_client: Any = None
    dynamodb_client: Any = None
    events_client: Any = None
    """EventBridge, with caption events on only."""
    caption_time: CaptionTimeEstimate = field(default_factory=CaptionTimeEstimate)
    on_invocation: Callable[[Invocation], None] | None = None
    """Called with every invocation's outcomes before Lambda's response is made of them."""

    def __post_init__(self) -> None:
        self.handler = self.telemetry.instrument(self._handle)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> CaptionHandler:
        """The INIT: settings from the environment, boto3 clients, the model loaded."""
        settings = Settings.from_environment(environ)
        telemetry = Telemetry.from_environment(
            metrics_enabled=settings.metrics_enabled, tracing_enabled=settings.tracing_enabled
        )
        captioner = Captioner.load(
            settings.model_dir,
            num_beams=settings.num_beams,
            max_length=settings.max_length,
            precision=settings.precision,
            model_id=settings.model_id,
            prompt=settings.prompt,
        )
        if captioner.runtime != settings.runtime:
            telemetry.logger.warning(
                "the model directory and RUNTIME disagree: captioning with the directory's runtime",
                extra={"model_runtime": captioner.runtime, "configured_runtime": settings.runtime},
            )
        function = cls(settings=settings, telemetry=telemetry, captioner=captioner)
        function.renew_clients()
        return function

    def renew_clients(self) -> None:
        """(Re)create every boto3 client the function uses: S3, DynamoDB and, with caption events on,
        EventBridge. The one place they are made: the INIT calls it, and so does whatever must replace
        clients made before a snapshot (SnapStart's after-restore hook: their connections and credentials
        would be the snapshot's)."""
        self.s3_client = boto3.client("s3", config=CLIENT_CONFIG)
        self.dynamodb_client = boto3.client("dynamodb", config=CLIENT_CONFIG)
        self.events_client = (
            boto3.client("events", config=CLIENT_CONFIG) if self.settings.caption_events else None
        )

    @property
    def logger(self) -> Any:
        return self.telemetry.logger

    def _handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        invocation = self.invoke(event, context)
        if self.on_invocation is not None:
            self.on_invocation(invocation)
        return invocation.response()

    def invoke(self, event: dict[str, Any], context: Any) -> Invocation:
        """One invocation's work and metrics, its outcomes returned."""
        started = time.monotonic()
        delivery = parse_event(event)
        for message_id, reason in delivery.malformed_messages.items():
            self.logger.error(
                "message is neither an S3 notification nor S3's EventBridge event",
                extra={"message_id": message_id, "error": reason},
            )
        guard = TimeGuard(getattr(context, "get_remaining_time_in_millis", no_deadline), self.caption_time)
        objects = delivery.unique_objects()
        outcomes = self.process(objects, guard, started)
        self._record_metrics(len(objects), list(outcomes.values()))
        return Invocation(delivery, outcomes)

    def process(self, objects: list[ObjectRef], guard: TimeGuard, started: float) -> dict[ObjectRef, Outcome]:
        """Fetch every new object, caption all usable images in one call, persist one item per object."""
        outcomes: dict[ObjectRef, Outcome] = {}
        fetched: list[FetchedImage] = []
        rejected: list[Rejected] = []
        with self.telemetry.step("fetch", objects=len(objects)):
            duplicates = self.already_captioned(objects)
            for ref in objects:
                if ref in duplicates:
                    outcomes[ref] = Outcome(
                        ObjectStatus.DUPLICATE, event=self._unpublished(ref, duplicates[ref])
                    )
                    continue
                if not guard.fits(len(fetched) + 1):
                    outcomes[ref] = Outcome(
                        ObjectStatus.RETRY, "not started: too little time left in this invocation"
                    )
                    continue
                result = self.fetch_image(ref)
                if isinstance(result, Outcome):
                    outcomes[ref] = result
                elif isinstance(result, Rejected):
                    rejected.append(result)
                else:
                    fetched.append(result)

        fitting = guard.images_that_fit(len(fetched))
        for item in fetched[fitting:]:
            outcomes[item.ref] = Outcome(
                ObjectStatus.RETRY, "not captioned: too little time left in this invocation"
            )
        to_caption = fetched[:fitting]
        with self.telemetry.step("caption", images=len(to_caption)):
            captions, inference_ms = self.caption_all([item.image for item in to_caption])

        with self.telemetry.step("persist", items=len(rejected) + len(to_caption)):
            for failure in rejected:
                outcomes[failure.ref] = self.persist(
                    failure.ref, failure.etag, failure.size, error=failure.reason
                )
            for item, caption in zip(to_caption, captions, strict=True):
                if isinstance(caption, Exception):
                    outcomes[item.ref] = self.persist(
                        item.ref, item.etag, item.size, error=f"could not be captioned: {caption}"
                    )
                else:
                    outcomes[item.ref] = self.persist(
                        item.ref, item.etag, item.size, caption=caption, inference_ms=inference_ms
                    )

        to_publish = {ref: outcome for ref, outcome in outcomes.items() if outcome.event is not None}
        if to_publish:
            with self.telemetry.step("publish", events=len(to_publish)):
                outcomes.update(self.publish_events(to_publish))

        for ref, outcome in outcomes.items():
            self._log_outcome(ref, outcome, started)
        return outcomes

    def already_captioned(self, objects: list[ObjectRef]) -> dict[ObjectRef, StoredItem]:
        """Objects whose version (the event's ETag) already has its captioned item, with that item:
        redeliveries, recognised before anything is fetched or captioned. A failed lookup only costs the
        saving, never correctness: the write stays conditional."""
        with_etag = [ref for ref in objects if ref.etag]
        if not with_etag:
            return {}
        try:
            items = captioned_items(
                self.dynamodb_client, self.settings.table_name, [ref.key for ref in with_etag]
            )
        except TRANSIENT_ERRORS as error:
            self.logger.warning(
                "could not look up existing items; every object is fetched",
                extra={"error": describe_error(error)},
            )
            return {}
        return {
            ref: items[ref.key] for ref in with_etag if ref.key in items and items[ref.key].etag == ref.etag
        }

    def _unpublished(self, ref: ObjectRef, stored: StoredItem) -> CaptionEvent | None:
        """A duplicate's caption event if an earlier delivery wrote the item but never published it (the
        publish failed, or the environment died in between); None for every other duplicate."""
        if not (self.settings.caption_events and stored.event_pending):
            return None
        return CaptionEvent(
            bucket=ref.bucket,
            key=ref.key,
            etag=stored.etag,
            status=stored.status,
            model=stored.model,
            caption=stored.caption,
            error=stored.error,
        )

    def publish_events(self, outcomes: dict[ObjectRef, Outcome]) -> dict[ObjectRef, Outcome]:
        """Publish the outcomes' caption events (their items are written); returns the outcomes that
        change: an object whose event could not be published is handed back for a later delivery, which
        finds its item still pending and publishes again. Published items are marked so."""
        refs = {outcome.event: ref for ref, outcome in outcomes.items() if outcome.event is not None}
        failures = caption_events.publish(self.events_client, self.settings.event_bus_name, list(refs))
        changed: dict[ObjectRef, Outcome] = {}
        for event, ref in refs.items():
            if event in failures:
                changed[ref] = Outcome(
                    ObjectStatus.RETRY,
                    f"item written, but its caption event could not be published: {failures[event]}",
                )
                continue
            try:
                mark_event_published(self.dynamodb_client, self.settings.table_name, event.key, event.etag)
            except TRANSIENT_ERRORS as error:
                # Published all the same; a redelivery of this object would publish it once more.
                self.logger.warning(
                    "caption event published, but the item could not be marked so",
                    extra={"key": ref.key, "error": describe_error(error)},
                )
        return changed

    def fetch_image(self, ref: ObjectRef) -> FetchedImage | Rejected | Outcome:
        """The object's decoded image; or why there is none to caption (Rejected); or a transient error
        to retry (Outcome)."""
        try:
            if ref.size is not None:
                check_object_size(ref.size, self.settings.max_object_bytes)
            fetched = fetch_object(self.s3_client, ref.bucket, ref.key, self.settings.max_object_bytes)
        except PERMANENT_ERRORS as reason:
            return Rejected(ref, ref.etag, ref.size, str(reason))
        except TRANSIENT_ERRORS as error:
            return Outcome(ObjectStatus.RETRY, describe_error(error))
        try:
            return FetchedImage(ref, fetched.etag, fetched.size, load_image(fetched.data))
        except ImageRejected as reason:
            return Rejected(ref, fetched.etag, fetched.size, str(reason))

    def caption_all(self, images: list[Image.Image]) -> tuple[list[str | Exception], int]:
        """Captions for all images in one batched call, and the per-image share of its time in ms.

        Should the batch fail, each image is tried alone, so one image the model cannot take fails alone.
        """
        if not images:
            return [], 0
        call_started = time.monotonic()
        try:
            captions: list[str | Exception] = list(self.captioner.caption(images))
        except Exception:  # any model/processor error: isolate the culprit below
            self.logger.exception(
                "batched caption call failed; captioning images one by one", extra={"images": len(images)}
            )
            captions = [self._caption_one(image) for image in images]
        elapsed_ms = (time.monotonic() - call_started) * 1000
        self.caption_time.record(len(images), elapsed_ms)
        return captions, round(elapsed_ms / len(images))

    def _caption_one(self, image: Image.Image) -> str | Exception:
        try:
            return self.captioner.caption([image])[0]
        except Exception as error:  # noqa: BLE001  recorded as this object's failure
            return error

    def persist(
        self,
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
            model=self.captioner.model_id,
            etag=etag,
            size=size,
            caption=caption,
            error=error,
            inference_ms=inference_ms,
            event_pending=self.settings.caption_events,
        )
        try:
            written = put_item_once(self.dynamodb_client, self.settings.table_name, item)
        except TRANSIENT_ERRORS as write_error:
            return Outcome(ObjectStatus.RETRY, f"could not write the item: {describe_error(write_error)}")
        if not written:
            return Outcome(ObjectStatus.DUPLICATE)
        event = None
        if self.settings.caption_events:
            event = CaptionEvent(
                bucket=ref.bucket,
                key=ref.key,
                etag=etag,
                status=item["status"],
                model=item["model"],
                caption=caption,
                error=error,
            )
        return Outcome(ObjectStatus(item["status"]), error, inference_ms, event)

    def _record_metrics(self, batch_size: int, outcomes: list[Outcome]) -> None:
        self.telemetry.record_invocation(
            batch_size=batch_size,
            captioned=sum(o.status == ObjectStatus.CAPTIONED for o in outcomes),
            failed=sum(o.status == ObjectStatus.FAILED for o in outcomes),
            duplicates=sum(o.status == ObjectStatus.DUPLICATE for o in outcomes),
            retries=sum(o.status == ObjectStatus.RETRY for o in outcomes),
            latencies_ms=[o.inference_ms for o in outcomes if o.status == ObjectStatus.CAPTIONED],
        )

    def _log_outcome(self, ref: ObjectRef, outcome: Outcome, started: float) -> None:
        fields = {
            "key": ref.key,
            "bucket": ref.bucket,
            "status": outcome.status.value,
            "latency_ms": round((time.monotonic() - started) * 1000),
            "inference_ms": outcome.inference_ms,
            "error": outcome.error,
        }
        if outcome.status == ObjectStatus.RETRY:
            self.logger.warning("object will be retried", extra=fields)
        else:
            self.logger.info("object processed", extra=fields)


def batch_item_failures(delivery: Delivery, outcomes: dict[ObjectRef, Outcome]) -> PartialItemFailureResponse:
    """The SQS partial-batch response: messages with an object to retry, or whose body was unreadable.

    Built here rather than with Powertools' BatchProcessor, which calls a handler per record: that would
    mean one caption call per message, and the point of a batch is one call for all its images.
    """
    to_retry = {
        (ref.bucket, ref.key) for ref, outcome in outcomes.items() if outcome.status == ObjectStatus.RETRY
    }
    failed_ids = list(delivery.malformed_messages)
    for message in delivery.messages:
        if any((ref.bucket, ref.key) in to_retry for ref in message.objects):
            failed_ids.append(message.message_id)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed_ids]}
