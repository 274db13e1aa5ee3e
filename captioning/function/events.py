"""Incoming events -> the S3 objects to caption, grouped by the SQS message that carried them.

Two shapes arrive: a direct S3 notification (`Records[].s3`) and an SQS event whose message bodies are
S3 notifications (queue trigger). Keys arrive URL-encoded and are decoded here.

The builders at the end make the same shapes (for the local pipeline, `python -m ops` and tests), so
each shape has one parser and one builder, side by side.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

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


# --- builders ---------------------------------------------------------------------------------------


def s3_notification_record(
    bucket: str,
    key: str,
    *,
    size: int,
    etag: str,
    event_time: datetime | None = None,
    version_id: str | None = None,
    region: str = "us-east-1",
    event_name: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    """One record of the notification S3 sends when an object is created (event structure version 2.1).

    The key is URL-encoded the way S3 encodes it (a space becomes '+', '/' stays); the ETag is given
    without quotes, as S3 sends it.
    """
    when = (event_time or datetime.now(UTC)).astimezone(UTC)
    s3_object: dict[str, Any] = {
        "key": quote_plus(key, safe="/"),
        "size": size,
        "eTag": etag.strip('"'),
        "sequencer": f"{int(when.timestamp() * 1_000_000):016X}",
    }
    if version_id is not None:
        s3_object["versionId"] = version_id
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:LOCAL"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": "local"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "captioning",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "LOCAL"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": s3_object,
        },
    }


def s3_notification_event(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The notification (a direct Lambda event, or an SQS message body) holding these records."""
    return {"Records": list(records)}


def sqs_record(
    body: str,
    *,
    message_id: str,
    receipt_handle: str,
    queue_arn: str,
    attributes: Mapping[str, str] | None = None,
    message_attributes: Mapping[str, Mapping[str, Any]] | None = None,
    md5_of_body: str | None = None,
) -> dict[str, Any]:
    """One record of the event Lambda's SQS event source mapping sends.

    `attributes` are the message's system attributes (ApproximateReceiveCount, SentTimestamp, ...),
    `message_attributes` its attributes as ReceiveMessage returns them (DataType, StringValue,
    BinaryValue); the region is read from the queue ARN.
    """
    region = queue_arn.split(":")[3] if queue_arn.count(":") >= 5 else ""
    return {
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", **dict(attributes or {})},
        "messageAttributes": {
            name: _lambda_message_attribute(value) for name, value in (message_attributes or {}).items()
        },
        "md5OfBody": md5_of_body or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324  SQS's checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """A message attribute as ReceiveMessage returns it -> as Lambda's SQS event carries it."""
    attribute: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = value["BinaryValue"]
    return attribute
