"""Incoming events -> the S3 objects to caption, grouped by the SQS message that carried them.

Two shapes arrive: a direct S3 notification (`Records[].s3`) and an SQS event whose message bodies are
S3 notifications (queue trigger). Keys arrive URL-encoded and are decoded here.

captioning/aws_events.py builds the same shapes for the tools and tests; it stays out of the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, SQSEvent


class MalformedEvent(ValueError):
    """An event, or a message body, that is not an S3 notification."""


@dataclass(frozen=True)
class ObjectRef:
    """One created object, as its notification describes it."""

    bucket: str
    key: str
    etag: str = ""
    size: int | None = None


@dataclass
class Message:
    """The objects one SQS message carried (`message_id` None for a direct S3 event)."""

    message_id: str | None
    objects: list[ObjectRef] = field(default_factory=list)


@dataclass
class Delivery:
    from_queue: bool
    messages: list[Message]
    malformed_messages: dict[str, str] = field(default_factory=dict)
    """message id -> why its body is not an S3 notification"""

    def unique_objects(self) -> list[ObjectRef]:
        """Each (bucket, key) once, in arrival order: a duplicate in a batch is fetched and captioned once."""
        seen: dict[tuple[str, str], ObjectRef] = {}
        for message in self.messages:
            for ref in message.objects:
                seen.setdefault((ref.bucket, ref.key), ref)
        return list(seen.values())


def parse_event(event: dict[str, Any]) -> Delivery:
    """Raise MalformedEvent for a direct event that is no S3 notification; an SQS message whose body is
    not one is listed in `malformed_messages` so only that message fails."""
    if not isinstance(event, dict):
        raise MalformedEvent(f"event is a {type(event).__name__}, not an object")
    records = event.get("Records")
    if _is_test_event(event):
        return Delivery(from_queue=False, messages=[])
    if not isinstance(records, list):
        raise MalformedEvent("event has no Records list: neither an S3 notification nor an SQS event")
    if records and all(
        isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records
    ):
        return _parse_sqs(event)
    return Delivery(from_queue=False, messages=[Message(None, _created_objects(event))])


def _parse_sqs(event: dict[str, Any]) -> Delivery:
    delivery = Delivery(from_queue=True, messages=[])
    for record in SQSEvent(event).records:
        try:
            body = record.json_body
        except (ValueError, TypeError, KeyError) as error:
            delivery.malformed_messages[record.message_id] = f"message body is not JSON: {error!r}"
            continue
        try:
            objects = objects_in_notification(body)
        except MalformedEvent as error:
            delivery.malformed_messages[record.message_id] = str(error)
            continue
        delivery.messages.append(Message(record.message_id, objects))
    return delivery


def objects_in_notification(notification: Any) -> list[ObjectRef]:
    """The created objects one S3 notification (a direct event, or an SQS message body parsed from JSON)
    names, keys decoded; none for S3's test event. Raises MalformedEvent for anything else."""
    return [] if _is_test_event(notification) else _created_objects(notification)


def _is_test_event(notification: Any) -> bool:
    return isinstance(notification, dict) and notification.get("Event") == "s3:TestEvent"


def _created_objects(notification: Any) -> list[ObjectRef]:
    if not isinstance(notification, dict) or not isinstance(notification.get("Records"), list):
        raise MalformedEvent("not an S3 notification: no Records list")
    objects = []
    for record in S3Event(notification).records:
        try:
            if not record.event_name.startswith("ObjectCreated:"):
                continue
            s3_object = record.s3.get_object
            objects.append(
                ObjectRef(
                    bucket=record.s3.bucket.name,
                    key=unquote_plus(s3_object.key),
                    etag=s3_object.etag,
                    size=int(s3_object["size"]) if s3_object.get("size") is not None else None,
                )
            )
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise MalformedEvent(f"S3 record without bucket name or object key ({error!r})") from error
    return objects
