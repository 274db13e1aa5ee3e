"""Incoming events -> the S3 objects to caption, grouped by the SQS message that carried them.

Two shapes of object-created event: S3's notification (`Records[].s3`, keys URL-encoded: decoded here) and
the event S3 sends to EventBridge (`source` aws.s3, `detail.bucket.name`, `detail.object.key`, keys as they
are: taken verbatim). They arrive directly (direct trigger: a notification; or a rule targeting the
function: one EventBridge event) or as the bodies of an SQS event's messages (queue trigger: notifications;
eventbridge trigger: the rule's EventBridge events). Anything else is refused by name (MalformedEvent).

captioning/aws_events.py builds the same shapes for the tools and tests; it stays out of the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, SQSEvent

from captioning.contract.constants import OBJECT_CREATED_DETAIL_TYPE, S3_EVENT_SOURCE

"""The detail-type of S3's EventBridge event for a new object; other S3 events carry nothing to caption."""


class MalformedEvent(ValueError):
    """An event, or a message body, that is neither an S3 notification nor S3's EventBridge event."""


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
    """message id -> why its body is neither an S3 notification nor S3's EventBridge event"""

    def unique_objects(self) -> list[ObjectRef]:
        """Each (bucket, key) once, in arrival order: a duplicate in a batch is fetched and captioned once."""
        seen: dict[tuple[str, str], ObjectRef] = {}
        for message in self.messages:
            for ref in message.objects:
                seen.setdefault((ref.bucket, ref.key), ref)
        return list(seen.values())


def parse_event(event: dict[str, Any]) -> Delivery:
    """Raise MalformedEvent for a direct event that is neither an S3 notification nor S3's EventBridge
    event; an SQS message whose body is neither is listed in `malformed_messages` so only that message
    fails."""
    if not isinstance(event, dict):
        raise MalformedEvent(f"event is a {type(event).__name__}, not an object")
    records = event.get("Records")
    if _is_test_event(event):
        return Delivery(from_queue=False, messages=[])
    if _is_eventbridge_event(event):
        return Delivery(from_queue=False, messages=[Message(None, objects_in_eventbridge_event(event))])
    if not isinstance(records, list):
        raise MalformedEvent(
            "event has no Records list and no EventBridge detail: neither an S3 notification, an SQS "
            "event nor S3's EventBridge event"
        )
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
    """The created objects one S3 notification or EventBridge event (a direct event, or an SQS message body
    parsed from JSON) names, keys as S3 named them; none for S3's test event. Raises MalformedEvent for
    anything else."""
    if _is_test_event(notification):
        return []
    if _is_eventbridge_event(notification):
        return objects_in_eventbridge_event(notification)
    return _created_objects(notification)


def _is_eventbridge_event(event: Any) -> bool:
    """EventBridge's envelope: `source`, `detail-type` and a `detail` object (S3 notifications have none)."""
    return (
        isinstance(event, dict)
        and "Records" not in event
        and {"source", "detail-type", "detail"} <= event.keys()
    )


def objects_in_eventbridge_event(event: dict[str, Any]) -> list[ObjectRef]:
    """The object S3's EventBridge "Object Created" event names; none for S3's other events (deleted,
    restored, ...). Raises MalformedEvent for another source's event or a detail without bucket and key.

    The key is used as it is: S3 URL-encodes keys in notification records only, not in EventBridge's
    detail (AWS's own example events show `:` and spaces unencoded, and moto sends `key.name` as it is).
    Powertools' S3EventBridgeNotificationObject.key unquotes it, which would turn a `+` in a key into a
    space, so the dict is read directly.
    """
    source = event.get("source")
    if source != S3_EVENT_SOURCE:
        raise MalformedEvent(
            f"an EventBridge event from source {source!r}, not {S3_EVENT_SOURCE!r}: "
            "only S3's Object Created events are captioned"
        )
    if event.get("detail-type") != OBJECT_CREATED_DETAIL_TYPE:
        return []
    detail = event.get("detail")
    try:
        bucket = detail["bucket"]["name"]
        s3_object = detail["object"]
        key = s3_object["key"]
        # AWS spells it `etag`; moto (5.2) sends `eTag`, as in notification records.
        etag = s3_object.get("etag") or s3_object.get("eTag") or ""
        size = s3_object.get("size")
    except (KeyError, TypeError, AttributeError) as error:
        raise MalformedEvent(
            f"S3 EventBridge event without detail.bucket.name or detail.object.key ({error!r})"
        ) from error
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise MalformedEvent(
            f"S3 EventBridge event whose detail.object.size is {size!r}: a whole number of bytes, or absent"
        )
    ref = ObjectRef(bucket=bucket, key=key, etag=str(etag).strip('"'), size=size)
    if not isinstance(ref.bucket, str) or not isinstance(ref.key, str) or not ref.bucket or not ref.key:
        raise MalformedEvent("S3 EventBridge event whose detail.bucket.name or detail.object.key is no name")
    return [ref]


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
