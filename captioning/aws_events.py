"""The events AWS sends the function, built for the tools and tests: S3's object-created notification
(a direct Lambda event, or an SQS message body), the "Object Created" event S3 sends to EventBridge (an
SQS message body when a rule targets the upload queue, or a direct event when it targets the function)
and the SQS event Lambda's event source mapping sends.

captioning/function/events.py parses them; these builders stay out of the image (the local pipeline,
`python -m ops` and the tests use them). Standard library only.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from captioning.contract.constants import OBJECT_CREATED_DETAIL_TYPE, S3_EVENT_SOURCE


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


def eventbridge_object_created_event(
    bucket: str,
    key: str,
    *,
    size: int,
    etag: str,
    event_time: datetime | None = None,
    version_id: str | None = None,
    region: str = "us-east-1",
    account: str = "123456789012",
    reason: str = "PutObject",
) -> dict[str, Any]:
    """The event S3 sends to EventBridge when an object is created (detail version 0), as a rule's target
    receives it.

    Unlike a notification record, the key is not URL-encoded and the ETag is spelled `etag`; `time` has
    no fraction of a second. `reason` is the API that created the object (PutObject, POST Object,
    CopyObject, CompleteMultipartUpload).
    """
    when = (event_time or datetime.now(UTC)).astimezone(UTC)
    s3_object: dict[str, Any] = {
        "key": key,
        "size": size,
        "etag": etag.strip('"'),
        "sequencer": f"{int(when.timestamp() * 1_000_000):016X}",
    }
    if version_id is not None:
        s3_object["version-id"] = version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": OBJECT_CREATED_DETAIL_TYPE,
        "source": S3_EVENT_SOURCE,
        "account": account,
        "time": when.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": s3_object,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account,
            "source-ip-address": "127.0.0.1",
            "reason": reason,
        },
    }


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
