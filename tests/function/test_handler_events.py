"""The events the function takes: direct S3 notifications and SQS batches, captioned in one call;
keys decoded; S3's test event, records other than ObjectCreated and malformed bodies."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from unittest import mock

import pytest
from PIL import Image

from captioning.function.events import ObjectRef, parse_event
from captioning.function.processing import CaptionHandler
from tests.conftest import make_image_bytes
from tests.function.conftest import (
    BUCKET,
    MODEL_ID,
    Deployment,
    FakeContext,
    direct_event,
    load_event,
    noise_png,
)

# --- the happy paths ------------------------------------------------------------------------------------


def test_direct_event_with_several_records_captions_all_in_one_call(
    aws: Deployment, function: CaptionHandler
) -> None:
    keys = ["a.png", "b.png", "c.png"]
    messages = [aws.upload(key, noise_png(seed)) for seed, key in enumerate(keys)]
    expected = function.captioner.caption(
        [Image.open(io.BytesIO(noise_png(seed))).convert("RGB") for seed in range(3)]
    )

    with mock.patch.object(function.captioner, "caption", wraps=function.captioner.caption) as caption:
        result = function.handler(direct_event(*messages), FakeContext())

    assert caption.call_count == 1
    assert result == {"captioned": 3, "failed": 0, "duplicate": 0}
    assert [aws.item(key)["caption"] for key in keys] == expected


def test_item_schema(aws: Deployment, function: CaptionHandler) -> None:
    data = noise_png(7)
    message = aws.upload("photos/cat.png", data)
    before = datetime.now().astimezone()
    function.handler(direct_event(message), FakeContext())

    item = aws.item("photos/cat.png")
    head = aws.s3.head_object(Bucket=BUCKET, Key="photos/cat.png")
    assert set(item) == {"key", "status", "caption", "model", "etag", "size", "created_at", "inference_ms"}
    assert item["status"] == "captioned"
    assert isinstance(item["caption"], str)
    assert item["model"] == MODEL_ID
    assert item["etag"] == head["ETag"].strip('"')
    assert item["size"] == len(data)
    assert item["inference_ms"] >= 0
    assert item["created_at"].endswith("+00:00")
    created_at = datetime.fromisoformat(item["created_at"])
    assert created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= created_at <= datetime.now().astimezone() + timedelta(seconds=1)


def test_sqs_event_processes_every_message_in_one_caption_call(
    aws: Deployment, function: CaptionHandler
) -> None:
    messages = [aws.upload(f"queued-{seed}.png", noise_png(seed)) for seed in range(4)]
    with mock.patch.object(function.captioner, "caption", wraps=function.captioner.caption) as caption:
        result = function.handler(aws.sqs_event(*messages), FakeContext())
    assert result == {"batchItemFailures": []}
    assert caption.call_count == 1
    assert [aws.item(f"queued-{seed}.png")["status"] for seed in range(4)] == ["captioned"] * 4


@pytest.mark.parametrize(
    "key",
    ["red flower.jpg", "1+1=2.png", "100% cotton.png", "café/日本語 ü.png", "a%2Bb.png", "x" * 1000 + ".png"],
    ids=["space", "plus", "percent", "unicode", "encoded-looking", "1000-bytes"],
)
def test_keys_are_url_decoded(aws: Deployment, function: CaptionHandler, key: str) -> None:
    message = aws.upload(key, make_image_bytes(image_format="JPEG"))
    encoded_key = json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"]
    assert encoded_key != key or key.startswith("x")  # the event really carries the encoded form
    assert function.handler(aws.sqs_event(message), FakeContext()) == {"batchItemFailures": []}
    assert aws.item(key)["status"] == "captioned"
    assert aws.item_count() == 1


def test_s3_test_event_is_ignored(aws: Deployment, function: CaptionHandler) -> None:
    assert json.loads(aws.test_event_message["Body"])["Event"] == "s3:TestEvent"
    with mock.patch.object(function.captioner, "caption", wraps=function.captioner.caption) as caption:
        assert function.handler(aws.sqs_event(aws.test_event_message), FakeContext()) == {
            "batchItemFailures": []
        }
        function.handler(json.loads(aws.test_event_message["Body"]), FakeContext())
        assert function.handler(load_event("s3-test-event"), FakeContext()) == {
            "captioned": 0,
            "failed": 0,
            "duplicate": 0,
        }
    caption.assert_not_called()
    assert aws.item_count() == 0


def test_records_other_than_object_created_are_ignored(aws: Deployment, function: CaptionHandler) -> None:
    message = aws.upload("deleted.png", noise_png(1))
    event = direct_event(message)
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert function.handler(event, FakeContext()) == {"captioned": 0, "failed": 0, "duplicate": 0}
    assert aws.item_count() == 0


def test_malformed_message_fails_alone(aws: Deployment, function: CaptionHandler) -> None:
    good = aws.upload("fine.png", noise_png(22))
    not_json = {**good, "MessageId": "not-json", "Body": "{not json"}
    no_records = {**good, "MessageId": "no-records", "Body": json.dumps(load_event("not-an-s3-notification"))}
    result = function.handler(aws.sqs_event(good, not_json, no_records), FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "not-json"}, {"itemIdentifier": "no-records"}]}
    assert aws.item("fine.png")["status"] == "captioned"
    with pytest.raises(ValueError, match="no Records"):
        function.handler(load_event("not-an-s3-notification"), FakeContext())


# --- the events as AWS documents them (tests/fixtures/events) ---------------------------------------------


def test_documented_events_are_parsed_keys_decoded() -> None:
    direct = parse_event(load_event("s3-notification"))
    assert not direct.from_queue
    assert direct.unique_objects() == [  # the ObjectRemoved record is no object to caption
        ObjectRef(BUCKET, "holiday photos/red flower+1.jpg", "d41d8cd98f00b204e9800998ecf8427e", 1024)
    ]
    queued = parse_event(load_event("sqs-event"))
    assert queued.from_queue
    assert [message.message_id for message in queued.messages] == ["059f36b4-87a3-44ab-83d2-661975830a7d"]
    assert queued.unique_objects() == [
        ObjectRef(BUCKET, "café/photo (2).png", "0cc175b9c0f1b6a831c399e269772661", 2048)
    ]
    assert list(queued.malformed_messages) == ["2e1424d4-f796-459a-8184-9c92662be6da"]


def test_a_documented_sqs_event_fails_only_its_malformed_message(
    aws: Deployment, function: CaptionHandler
) -> None:
    result = function.handler(load_event("sqs-event"), FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]}
    item = aws.item("café/photo (2).png")  # named by the event, never uploaded: a failed item
    assert item["status"] == "failed" and item["error"].startswith("object not found")
