"""The eventbridge trigger's events: S3's EventBridge "Object Created" events as the rule delivers them to the
upload queue (moto's own S3 -> EventBridge -> rule -> SQS path) and as one event invoking the function;
keys verbatim, duplicates, retries, other shapes refused. The bucket is an existing one whose notification
already delivers to someone else's queue: that consumer keeps receiving its events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest

from captioning.aws_events import eventbridge_object_created_event, sqs_record
from captioning.contract.key_filters import key_filters
from captioning.function.events import MalformedEvent, ObjectRef, parse_event
from captioning.function.processing import CaptionHandler, RetryableFailure
from local.resources import EmulatedResources, create_resources
from tests.function.conftest import (
    TABLE,
    FakeContext,
    FaultInjector,
    load_event,
    noise_png,
)

EXISTING_BUCKET = "someone-elses-photos"
PREFIX = "photos/"


@dataclass
class EventBridgeDeployment:
    """An existing bucket notifying another team's queue, captioned through EventBridge (eventbridge mode)."""

    resources: EmulatedResources
    other_queue_url: str

    def __post_init__(self) -> None:
        self.s3 = self.resources.client("s3")
        self.sqs = self.resources.client("sqs")
        self.dynamodb = self.resources.client("dynamodb")

    def messages(self, queue_url: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
            found += batch
        return found

    def upload(self, key: str, data: bytes) -> list[dict[str, Any]]:
        """Put an object; return the upload queue's new messages (what the rule delivered)."""
        self.s3.put_object(Bucket=EXISTING_BUCKET, Key=key, Body=data)
        return self.messages(self.resources.queue_url)

    def sqs_event(self, *messages: dict[str, Any]) -> dict[str, Any]:
        return {
            "Records": [
                sqs_record(
                    m["Body"],
                    message_id=m["MessageId"],
                    receipt_handle=m["ReceiptHandle"],
                    queue_arn=self.resources.queue_arn,
                )
                for m in messages
            ]
        }

    def item(self, key: str) -> dict[str, Any] | None:
        return self.dynamodb.get_item(TableName=TABLE, Key={"key": {"S": key}}, ConsistentRead=True).get(
            "Item"
        )


def existing_bucket_with_other_consumer(s3: Any, sqs: Any) -> str:
    """The other team's bucket and queue, its notification configuration delivering every upload there."""
    s3.create_bucket(Bucket=EXISTING_BUCKET)
    queue_url = sqs.create_queue(QueueName="other-team-uploads")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=EXISTING_BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return queue_url


@pytest.fixture
def eventbridge(mocked_aws: None) -> Iterator[EventBridgeDeployment]:
    import boto3

    other_queue_url = existing_bucket_with_other_consumer(boto3.client("s3"), boto3.client("sqs"))
    resources = create_resources(
        None,
        visibility_timeout_s=30,
        max_receive_count=3,
        key_filters=key_filters(PREFIX, (".png", ".jpg")),
        trigger="eventbridge",
        existing_bucket=EXISTING_BUCKET,
    )
    deployment = EventBridgeDeployment(resources, other_queue_url)
    deployment.messages(other_queue_url)  # S3's test events of the configuration
    yield deployment


def test_uploads_are_captioned_through_eventbridge_and_the_other_consumer_still_gets_its_events(
    eventbridge: EventBridgeDeployment, function: CaptionHandler
) -> None:
    keys = [f"{PREFIX}cat.png", f"{PREFIX}notes.txt", "elsewhere/dog.png"]
    delivered = {key: eventbridge.upload(key, noise_png(seed)) for seed, key in enumerate(keys)}

    # The rule's pattern (the component's) delivers the prefix's image only, as an EventBridge event.
    assert [len(messages) for messages in delivered.values()] == [1, 0, 0]
    message = delivered[keys[0]][0]
    body = json.loads(message["Body"])
    assert (body["source"], body["detail-type"], body["detail"]["object"]["key"]) == (
        "aws.s3",
        "Object Created",
        keys[0],
    )
    assert function.handler(eventbridge.sqs_event(message), FakeContext()) == {"batchItemFailures": []}
    assert eventbridge.item(keys[0])["status"]["S"] == "captioned"
    assert eventbridge.item(keys[1]) is None and eventbridge.item(keys[2]) is None

    # The bucket's existing notification is kept: the other team's queue got every upload.
    other = [
        json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"]
        for m in eventbridge.messages(eventbridge.other_queue_url)
    ]
    assert sorted(other) == sorted(["photos%2Fcat.png", "photos%2Fnotes.txt", "elsewhere%2Fdog.png"])


@pytest.mark.parametrize(
    "name",
    ["1+1=2.png", "100% cotton.png", "a%2Bb.png", "red flower.png", "café/日本語 ü.png"],
    ids=["plus", "percent", "encoded-looking", "space", "unicode"],
)
def test_eventbridge_keys_are_taken_as_they_are(
    eventbridge: EventBridgeDeployment, function: CaptionHandler, name: str
) -> None:
    key = PREFIX + name
    (message,) = eventbridge.upload(key, noise_png(3))
    assert json.loads(message["Body"])["detail"]["object"]["key"] == key  # not URL-encoded
    assert function.handler(eventbridge.sqs_event(message), FakeContext()) == {"batchItemFailures": []}
    assert eventbridge.item(key)["status"]["S"] == "captioned"


def test_a_redelivered_eventbridge_event_is_a_duplicate(
    eventbridge: EventBridgeDeployment, function: CaptionHandler
) -> None:
    (message,) = eventbridge.upload(f"{PREFIX}twice.png", noise_png(4))
    function.handler(eventbridge.sqs_event(message), FakeContext())
    with mock.patch.object(function.s3_client, "get_object") as get_object:
        assert function.handler(eventbridge.sqs_event(message), FakeContext()) == {"batchItemFailures": []}
        direct = json.loads(message["Body"])
        assert function.handler(direct, FakeContext()) == {"captioned": 0, "failed": 0, "duplicate": 1}
    get_object.assert_not_called()  # the event's etag found the captioned item


def test_an_eventbridge_event_invoking_the_function_directly(
    eventbridge: EventBridgeDeployment, function: CaptionHandler, faults: FaultInjector
) -> None:
    def event_for(key: str) -> dict[str, Any]:
        eventbridge.s3.put_object(Bucket=EXISTING_BUCKET, Key=key, Body=noise_png(len(key)))
        head = eventbridge.s3.head_object(Bucket=EXISTING_BUCKET, Key=key)
        return eventbridge_object_created_event(
            EXISTING_BUCKET, key, size=head["ContentLength"], etag=head["ETag"]
        )

    assert function.handler(event_for(f"{PREFIX}direct.png"), FakeContext()) == {
        "captioned": 1,
        "failed": 0,
        "duplicate": 0,
    }
    retried = event_for(f"{PREFIX}throttled.png")
    faults.fail(function.s3_client, "GetObject", status=503, code="SlowDown")
    with pytest.raises(RetryableFailure) as raised:  # Lambda's asynchronous retries, then the DLQ
        function.handler(retried, FakeContext())
    assert list(raised.value.retries) == [f"{PREFIX}throttled.png"]
    assert eventbridge.item(f"{PREFIX}throttled.png") is None


def test_transient_failure_returns_only_that_message(
    eventbridge: EventBridgeDeployment, function: CaptionHandler, faults: FaultInjector
) -> None:
    (slow,) = eventbridge.upload(f"{PREFIX}slow.png", noise_png(6))
    (fine,) = eventbridge.upload(f"{PREFIX}fine.png", noise_png(7))
    faults.fail(function.s3_client, "GetObject", status=503, code="SlowDown", keys={f"{PREFIX}slow.png"})
    result = function.handler(eventbridge.sqs_event(slow, fine), FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": slow["MessageId"]}]}
    assert eventbridge.item(f"{PREFIX}fine.png")["status"]["S"] == "captioned"


# --- the shapes as AWS documents them (tests/fixtures/events), and what is refused ------------------------


def test_documented_eventbridge_events_are_parsed_keys_verbatim() -> None:
    direct = parse_event(load_event("eventbridge-object-created"))
    assert not direct.from_queue
    assert direct.unique_objects() == [
        ObjectRef(
            "captioning-local-images",
            "holiday photos/red flower+1 (100%).jpg",
            "b1946ac92492d2347c6235b4d2611184",
            5,
        )
    ]
    queued = parse_event(load_event("sqs-eventbridge-event"))
    assert queued.from_queue
    assert [(m.message_id, len(m.objects)) for m in queued.messages] == [
        ("8f5d0a1c-eventbridge-created", 1),
        ("3b2e9c7d-eventbridge-deleted", 0),  # S3's other events: nothing to caption
    ]
    assert list(queued.malformed_messages) == ["c41a7e20-other-source"]
    assert "com.example.shop" in queued.malformed_messages["c41a7e20-other-source"]


def test_moto_spelling_of_the_etag_is_read_too() -> None:
    event = load_event("eventbridge-object-created")
    event["detail"]["object"]["eTag"] = event["detail"]["object"].pop("etag")
    assert parse_event(event).unique_objects()[0].etag == "b1946ac92492d2347c6235b4d2611184"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.update(source="com.example.shop"), "source 'com.example.shop', not 'aws.s3'"),
        (lambda e: e["detail"]["object"].pop("key"), "without detail.bucket.name or detail.object.key"),
        (lambda e: e["detail"].pop("bucket"), "without detail.bucket.name or detail.object.key"),
        (lambda e: e["detail"]["object"].update(key=""), "is no name"),
        (lambda e: e.update(detail="a string"), "without detail.bucket.name or detail.object.key"),
        (lambda e: e["detail"]["object"].update(size="big"), "detail.object.size is 'big': a whole number"),
        (lambda e: e["detail"]["object"].update(size=1.5), "detail.object.size is 1.5: a whole number"),
    ],
    ids=["other-source", "no-key", "no-bucket", "empty-key", "detail-not-object", "size-word", "size-float"],
)
def test_unusable_eventbridge_events_are_refused_by_name(
    eventbridge: EventBridgeDeployment, function: CaptionHandler, change: Any, message: str
) -> None:
    event = load_event("eventbridge-object-created")
    change(event)
    with pytest.raises(MalformedEvent, match=message):
        function.handler(event, FakeContext())
    good = eventbridge.upload(f"{PREFIX}good.png", noise_png(8))[0]
    bad = {**good, "MessageId": "bad", "Body": json.dumps(event)}
    assert function.handler(eventbridge.sqs_event(good, bad), FakeContext()) == {
        "batchItemFailures": [{"itemIdentifier": "bad"}]
    }


def test_an_event_of_no_known_shape_is_refused(function: CaptionHandler) -> None:
    with pytest.raises(MalformedEvent, match="neither an S3 notification, an SQS event nor S3's EventBridge"):
        function.handler({"detail": {"object": {"key": "x.png"}}}, FakeContext())
