"""The Lambda handler against moto's S3, SQS and DynamoDB, with the tiny model.

Events are the ones moto's S3 really emits (S3 -> SQS notification, read back from the queue): the
message body is the direct S3 event; the message wrapped as Lambda's SQS event record is the queue event.
Faults are injected at the botocore level on `captioning.function.main.s3_client` / `dynamodb_client`.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock
from urllib.parse import unquote, urlsplit

import boto3
import botocore.retries.standard
import moto  # noqa: F401  imported before captioning.function.main creates its clients, so moto can intercept them
import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from PIL import Image

from captioning.contract.constants import MODEL_DIR_IN_IMAGE as DEFAULT_MODEL_DIR
from captioning.function.events import s3_notification_event, sqs_record
from captioning.function.settings import Settings, SettingsError
from local.faults import error_responder
from tests.conftest import AWS_TEST_REGION, make_image_bytes

BUCKET = "images"
TABLE = "captions"
QUEUE = "image-events"
MODEL_ID = "tiny-vit-gpt2-test"
ROOT = Path(__file__).resolve().parents[2]


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def function(tiny_model_dir: Path) -> Iterator[ModuleType]:
    """`captioning.function.main` initialised from the environment, as Lambda's INIT phase would."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": AWS_TEST_REGION,
            "TABLE_NAME": TABLE,
            "MODEL_DIR": str(tiny_model_dir),
            "MODEL_ID": MODEL_ID,
            "NUM_BEAMS": "2",
            "MAX_LENGTH": "6",
            # The function must use standard retries whatever the runtime's defaults say.
            "AWS_RETRY_MODE": "legacy",
        }.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        env.delenv("AWS_PROFILE", raising=False)
        if "captioning.function.main" in sys.modules:
            yield importlib.reload(sys.modules["captioning.function.main"])
        else:
            yield importlib.import_module("captioning.function.main")


@dataclass
class Deployment:
    """moto's bucket (notifying a queue), queue and table; helpers to upload and to build events."""

    s3: Any
    sqs: Any
    dynamodb: Any
    queue_url: str
    queue_arn: str
    test_event_message: dict[str, Any]

    def upload(self, key: str, data: bytes) -> dict[str, Any]:
        """Put an object; return the SQS message its notification produced."""
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        assert len(messages) == 1, f"expected one notification for {key!r}, got {len(messages)}"
        return messages[0]

    def sqs_event(self, *messages: dict[str, Any]) -> dict[str, Any]:
        """What the SQS event source mapping hands the function for these messages."""
        return s3_notification_event(
            sqs_record(
                message["Body"],
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                queue_arn=self.queue_arn,
                attributes={"SentTimestamp": "1700000000000"},
                md5_of_body=message["MD5OfBody"],
            )
            for message in messages
        )

    def item(self, key: str) -> dict[str, Any] | None:
        response = self.dynamodb.Table(TABLE).get_item(Key={"key": key}, ConsistentRead=True)
        return response.get("Item")

    def item_count(self) -> int:
        return self.dynamodb.Table(TABLE).scan(Select="COUNT")["Count"]


def direct_event(*messages: dict[str, Any]) -> dict[str, Any]:
    """A direct S3 -> Lambda event holding the records of these notifications."""
    return {"Records": [record for message in messages for record in json.loads(message["Body"])["Records"]]}


@pytest.fixture
def aws(mocked_aws: None, function: ModuleType) -> Deployment:
    s3 = boto3.client("s3", region_name=AWS_TEST_REGION)
    sqs = boto3.client("sqs", region_name=AWS_TEST_REGION)
    dynamodb = boto3.resource("dynamodb", region_name=AWS_TEST_REGION)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    test_event_message = sqs.receive_message(QueueUrl=queue_url)["Messages"][0]
    return Deployment(s3, sqs, dynamodb, queue_url, queue_arn, test_event_message)


class FakeContext:
    """Lambda's context object, with a fixed amount of time left, or a sequence of answers (the last
    one repeats) for time that drains while the function works."""

    aws_request_id = "test-request"
    function_name = "captioning-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 4096
    invoked_function_arn = f"arn:aws:lambda:{AWS_TEST_REGION}:123456789012:function:captioning-test"

    def __init__(self, remaining_ms: int = 60_000, *, then: list[int] | None = None) -> None:
        self.answers = [remaining_ms, *(then or [])]

    def get_remaining_time_in_millis(self) -> int:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def no_retry_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep boto3's standard retries (3 attempts) but without their sleeps, so tests stay fast."""
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


def noise_png(seed: int, size: tuple[int, int] = (48, 40)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class FaultInjector:
    """Makes botocore calls of the function's clients fail the way AWS fails; undone after each test."""

    registered: list[tuple[Any, str, str]]

    def fail(
        self, client: Any, operation: str, *, status: int, code: str, keys: set[str] | None = None
    ) -> list[str]:
        """Answer `operation` (GetObject or PutItem) with an HTTP error, for `keys` only if given;
        return the keys of the failed attempts, so a test can count boto3's retries."""
        attempts: list[str] = []
        answer = error_responder("s3" if operation == "GetObject" else "dynamodb", code, status)

        def respond(request: Any, **kwargs: Any) -> AWSResponse | None:
            if operation == "PutItem":
                target = json.loads(request.body)["Item"]["key"]["S"]
            else:
                path = unquote(urlsplit(request.url).path).lstrip("/")
                target = path.removeprefix(f"{BUCKET}/")  # path-style or virtual-hosted-style URL
            if keys is not None and target not in keys:
                return None
            attempts.append(target)
            return answer(request)

        self.hook(client, f"before-send.{client.meta.service_model.endpoint_prefix}.{operation}", respond)
        return attempts

    def hook(self, client: Any, event_name: str, handler: Any) -> None:
        unique_id = f"fault-{len(self.registered)}"
        client.meta.events.register_first(event_name, handler, unique_id=unique_id)
        self.registered.append((client, event_name, unique_id))


@pytest.fixture
def faults(no_retry_backoff: None) -> Iterator[FaultInjector]:
    injector = FaultInjector([])
    yield injector
    for client, event_name, unique_id in injector.registered:
        client.meta.events.unregister(event_name, unique_id=unique_id)


# --- settings -------------------------------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    settings = Settings.from_environment(
        {
            "TABLE_NAME": "t",
            "NUM_BEAMS": "2",
            "MAX_LENGTH": "20",
            "PRECISION": "int8",
            "MAX_OBJECT_BYTES": "99",
        }
    )
    assert settings == Settings(
        table_name="t",
        model_dir=Path(DEFAULT_MODEL_DIR),
        model_id="model",
        num_beams=2,
        max_length=20,
        precision="int8",
        max_object_bytes=99,
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "TABLE_NAME is not set"),
        ({"TABLE_NAME": "t", "NUM_BEAMS": "four"}, "NUM_BEAMS must be a positive integer; got 'four'"),
        ({"TABLE_NAME": "t", "MAX_LENGTH": "0"}, "MAX_LENGTH must be a positive integer; got '0'"),
        ({"TABLE_NAME": "t", "PRECISION": "fp16"}, "PRECISION must be one of fp32, bf16, int8; got 'fp16'"),
    ],
)
def test_bad_settings_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_environment(environ)


def test_init_reads_the_environment(function: ModuleType, tiny_model_dir: Path) -> None:
    assert function.settings.table_name == TABLE
    assert function.settings.model_dir == tiny_model_dir
    assert function.captioner.model_id == MODEL_ID
    assert (function.captioner.num_beams, function.captioner.max_length) == (2, 6)
    for client in (function.s3_client, function.dynamodb_client):
        assert client.meta.config.retries["mode"] == "standard"


# --- the happy paths ------------------------------------------------------------------------------------


def test_direct_event_with_several_records_captions_all_in_one_call(
    aws: Deployment, function: ModuleType
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


def test_item_schema(aws: Deployment, function: ModuleType) -> None:
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


def test_sqs_event_processes_every_message_in_one_caption_call(aws: Deployment, function: ModuleType) -> None:
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
def test_keys_are_url_decoded(aws: Deployment, function: ModuleType, key: str) -> None:
    message = aws.upload(key, make_image_bytes(image_format="JPEG"))
    encoded_key = json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"]
    assert encoded_key != key or key.startswith("x")  # the event really carries the encoded form
    assert function.handler(aws.sqs_event(message), FakeContext()) == {"batchItemFailures": []}
    assert aws.item(key)["status"] == "captioned"
    assert aws.item_count() == 1


def test_s3_test_event_is_ignored(aws: Deployment, function: ModuleType) -> None:
    assert json.loads(aws.test_event_message["Body"])["Event"] == "s3:TestEvent"
    with mock.patch.object(function.captioner, "caption", wraps=function.captioner.caption) as caption:
        assert function.handler(aws.sqs_event(aws.test_event_message), FakeContext()) == {
            "batchItemFailures": []
        }
        function.handler(json.loads(aws.test_event_message["Body"]), FakeContext())
    caption.assert_not_called()
    assert aws.item_count() == 0


def test_records_other_than_object_created_are_ignored(aws: Deployment, function: ModuleType) -> None:
    message = aws.upload("deleted.png", noise_png(1))
    event = direct_event(message)
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert function.handler(event, FakeContext()) == {"captioned": 0, "failed": 0, "duplicate": 0}
    assert aws.item_count() == 0


# --- permanent problems: a failed item, the invocation succeeds -----------------------------------------


@pytest.mark.parametrize("shape", ["direct", "sqs"])
def test_each_rejection_kind_writes_a_failed_item(
    aws: Deployment, function: ModuleType, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    monkeypatch.setattr(function, "settings", replace(function.settings, max_object_bytes=20_000))
    objects = {
        "notes.jpg": (b"shopping list: eggs, milk\n", "not an image"),
        "truncated.jpg": (
            make_image_bytes((300, 200), image_format="JPEG")[:500],
            "corrupt or truncated image",
        ),
        "huge.bmp": (
            make_image_bytes((200, 200), image_format="BMP"),
            "object too large: 120054 bytes, limit 20000",
        ),
        "empty.png": (b"", "not an image: the object is empty"),
        "vanished.png": (noise_png(3), "object not found"),
        "good.png": (noise_png(4), None),
    }
    messages = [aws.upload(key, data) for key, (data, _) in objects.items()]
    aws.s3.delete_object(Bucket=BUCKET, Key="vanished.png")

    event = direct_event(*messages) if shape == "direct" else aws.sqs_event(*messages)
    result = function.handler(event, FakeContext())

    if shape == "direct":
        assert result == {"captioned": 1, "failed": 5, "duplicate": 0}
    else:
        assert result == {"batchItemFailures": []}
    for key, (_, reason) in objects.items():
        item = aws.item(key)
        if reason is None:
            assert item["status"] == "captioned"
        else:
            assert item["status"] == "failed", key
            assert item["error"].startswith(reason), item["error"]
            assert "caption" not in item


def test_object_over_the_cap_is_refused_from_the_event_size_without_a_get(
    aws: Deployment, function: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(function, "settings", replace(function.settings, max_object_bytes=100))
    message = aws.upload("big.png", noise_png(5))
    with mock.patch.object(function.s3_client, "get_object") as get_object:
        function.handler(direct_event(message), FakeContext())
    get_object.assert_not_called()
    assert aws.item("big.png")["error"].startswith("object too large")


def test_object_over_the_cap_is_refused_before_its_body_is_read(
    aws: Deployment, function: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(function, "settings", replace(function.settings, max_object_bytes=100))
    message = aws.upload("grown.png", noise_png(5))
    event = direct_event(message)
    del event["Records"][0]["s3"]["object"]["size"]  # only GetObject's Content-Length can tell
    real_get_object = function.s3_client.get_object
    bodies = []

    def get_object(**kwargs: Any) -> dict[str, Any]:
        response = real_get_object(**kwargs)
        response["Body"] = mock.Mock(wraps=response["Body"])
        bodies.append(response["Body"])
        return response

    with mock.patch.object(function.s3_client, "get_object", side_effect=get_object):
        function.handler(event, FakeContext())
    assert aws.item("grown.png")["error"].startswith("object too large")
    bodies[0].read.assert_not_called()
    bodies[0].close.assert_called_once()


def test_a_batch_the_model_cannot_take_falls_back_to_one_by_one(
    aws: Deployment, function: ModuleType
) -> None:
    poison_size = (33, 33)
    messages = [
        aws.upload(f"p{seed}.png", noise_png(seed, size=poison_size if seed == 1 else (48, 40)))
        for seed in range(3)
    ]
    real_caption = function.captioner.caption

    def caption(images: list[Image.Image]) -> list[str]:
        if any(image.size == poison_size for image in images):
            raise RuntimeError("the model cannot take this image")
        return real_caption(images)

    with mock.patch.object(function.captioner, "caption", side_effect=caption):
        assert function.handler(aws.sqs_event(*messages), FakeContext()) == {"batchItemFailures": []}
    assert [aws.item(f"p{seed}.png")["status"] for seed in range(3)] == ["captioned", "failed", "captioned"]
    assert "the model cannot take this image" in aws.item("p1.png")["error"]


# --- duplicates ------------------------------------------------------------------------------------------


def test_duplicate_delivery_leaves_one_unchanged_item(aws: Deployment, function: ModuleType) -> None:
    message = aws.upload("twice.png", noise_png(11))
    assert function.handler(direct_event(message), FakeContext())["captioned"] == 1
    first = aws.item("twice.png")

    with mock.patch.object(function.captioner, "caption", return_value=["a different caption"]):
        second_result = function.handler(direct_event(message), FakeContext())
        sqs_result = function.handler(aws.sqs_event(message), FakeContext())

    assert second_result == {"captioned": 0, "failed": 0, "duplicate": 1}
    assert sqs_result == {"batchItemFailures": []}
    assert aws.item("twice.png") == first
    assert aws.item_count() == 1


@pytest.mark.parametrize("shape", ["direct", "sqs"])
def test_duplicate_is_recognised_before_the_object_is_fetched(
    aws: Deployment, function: ModuleType, shape: str
) -> None:
    message = aws.upload("seen.png", noise_png(15))
    function.handler(direct_event(message), FakeContext())
    event = direct_event(message) if shape == "direct" else aws.sqs_event(message)
    with (
        mock.patch.object(function.s3_client, "get_object") as get_object,
        mock.patch.object(function.captioner, "caption") as caption,
        mock.patch.object(function.dynamodb_client, "put_item") as put_item,
    ):
        result = function.handler(event, FakeContext())
    assert result == (
        {"captioned": 0, "failed": 0, "duplicate": 1} if shape == "direct" else {"batchItemFailures": []}
    )
    get_object.assert_not_called()
    caption.assert_not_called()
    put_item.assert_not_called()


def test_only_a_captioned_item_of_the_same_version_is_a_duplicate(
    aws: Deployment, function: ModuleType
) -> None:
    old = aws.upload("changed.png", noise_png(16))
    function.handler(direct_event(old), FakeContext())
    new = aws.upload("changed.png", noise_png(17))  # a new version: another ETag
    bad = aws.upload("bad-then-retried.jpg", b"not an image")
    function.handler(direct_event(bad), FakeContext())
    assert aws.item("bad-then-retried.jpg")["status"] == "failed"

    with mock.patch.object(function.s3_client, "get_object", wraps=function.s3_client.get_object) as get:
        result = function.handler(direct_event(new, bad), FakeContext())
    # The failed item's object is read again (it may have been deleted and uploaded again unchanged).
    assert sorted(call.kwargs["Key"] for call in get.call_args_list) == [
        "bad-then-retried.jpg",
        "changed.png",
    ]
    assert result == {"captioned": 1, "failed": 1, "duplicate": 0}


def test_a_failed_lookup_costs_the_saving_not_the_item(
    aws: Deployment, function: ModuleType, faults: FaultInjector
) -> None:
    message = aws.upload("lookup.png", noise_png(18))
    function.handler(direct_event(message), FakeContext())
    first = aws.item("lookup.png")
    faults.fail(function.dynamodb_client, "BatchGetItem", status=500, code="InternalServerError")
    with mock.patch.object(function.captioner, "caption", wraps=function.captioner.caption) as caption:
        result = function.handler(direct_event(message), FakeContext())
    caption.assert_called_once()  # no lookup: the work is done again
    assert result == {"captioned": 0, "failed": 0, "duplicate": 1}  # and the conditional write refuses it
    assert aws.item("lookup.png") == first


def test_duplicate_within_one_batch_is_captioned_once(aws: Deployment, function: ModuleType) -> None:
    message = aws.upload("same.png", noise_png(12))
    with mock.patch.object(function.captioner, "caption", wraps=function.captioner.caption) as caption:
        result = function.handler(
            aws.sqs_event(message, {**message, "MessageId": "redelivered"}), FakeContext()
        )
    assert result == {"batchItemFailures": []}
    assert [len(call.args[0]) for call in caption.call_args_list] == [1]
    assert aws.item_count() == 1


def test_new_version_of_a_key_replaces_its_item(aws: Deployment, function: ModuleType) -> None:
    first = aws.upload("v.png", noise_png(13))
    function.handler(direct_event(first), FakeContext())
    old_etag = aws.item("v.png")["etag"]
    second = aws.upload("v.png", noise_png(14))
    assert function.handler(direct_event(second), FakeContext())["captioned"] == 1
    assert aws.item("v.png")["etag"] != old_etag


# --- transient problems: retried, never swallowed -------------------------------------------------------


def test_direct_event_raises_on_throttling_after_boto3_retries(
    aws: Deployment, function: ModuleType, faults: FaultInjector
) -> None:
    message = aws.upload("slow.png", noise_png(20))
    attempts = faults.fail(function.s3_client, "GetObject", status=503, code="SlowDown")
    with pytest.raises(function.RetryableFailure, match="slow.png.*SlowDown"):
        function.handler(direct_event(message), FakeContext())
    assert len(attempts) == 3  # boto3's standard mode tried three times before giving up
    assert aws.item_count() == 0


def test_sqs_event_returns_only_the_affected_messages(
    aws: Deployment, function: ModuleType, faults: FaultInjector
) -> None:
    messages = [aws.upload(f"m{seed}.png", noise_png(seed)) for seed in range(4)]
    faults.fail(function.s3_client, "GetObject", status=500, code="InternalError", keys={"m1.png"})
    throttled = "ProvisionedThroughputExceededException"
    faults.fail(function.dynamodb_client, "PutItem", status=400, code=throttled, keys={"m2.png"})
    result = function.handler(aws.sqs_event(*messages), FakeContext())
    assert result == {
        "batchItemFailures": [{"itemIdentifier": messages[index]["MessageId"]} for index in (1, 2)]
    }
    assert aws.item("m0.png")["status"] == aws.item("m3.png")["status"] == "captioned"
    assert aws.item("m1.png") is None
    # m2's item exists: botocore sends "before-send" to every hook, so moto stores the write even though
    # the client got the injected throttling error (as a real write can succeed and its answer be lost).
    # Its redelivery is then a duplicate, recognised before the object is fetched again.
    assert aws.item("m2.png")["status"] == "captioned"
    with mock.patch.object(function.s3_client, "get_object") as get_object:
        assert function.handler(aws.sqs_event(messages[2]), FakeContext()) == {"batchItemFailures": []}
    get_object.assert_not_called()


def test_access_denied_on_a_deleted_object_is_permanent(
    aws: Deployment, function: ModuleType, faults: FaultInjector
) -> None:
    # Without s3:ListBucket, real S3 answers GetObject of a deleted object with 403 AccessDenied.
    message = aws.upload("gone.png", noise_png(22))
    faults.fail(function.s3_client, "GetObject", status=403, code="AccessDenied")
    result = function.handler(aws.sqs_event(message), FakeContext())
    assert result == {"batchItemFailures": []}
    item = aws.item("gone.png")
    assert item["status"] == "failed"
    assert "AccessDenied" in item["error"]


def test_connection_errors_are_transient(
    aws: Deployment, function: ModuleType, faults: FaultInjector
) -> None:
    message = aws.upload("offline.png", noise_png(21))

    def unreachable(request: Any, **kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url=request.url)

    faults.hook(function.dynamodb_client, "before-send.dynamodb.PutItem", unreachable)
    with pytest.raises(function.RetryableFailure, match="EndpointConnectionError"):
        function.handler(direct_event(message), FakeContext())
    assert function.handler(aws.sqs_event(message), FakeContext()) == {
        "batchItemFailures": [{"itemIdentifier": message["MessageId"]}]
    }


def test_malformed_message_fails_alone(aws: Deployment, function: ModuleType) -> None:
    good = aws.upload("fine.png", noise_png(22))
    not_json = {**good, "MessageId": "not-json", "Body": "{not json"}
    no_records = {**good, "MessageId": "no-records", "Body": json.dumps({"hello": "world"})}
    result = function.handler(aws.sqs_event(good, not_json, no_records), FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "not-json"}, {"itemIdentifier": "no-records"}]}
    assert aws.item("fine.png")["status"] == "captioned"
    with pytest.raises(ValueError, match="no Records"):
        function.handler({"hello": "world"}, FakeContext())


# --- the timeout guard ----------------------------------------------------------------------------------


def test_timeout_guard_starts_nothing_when_time_is_short(aws: Deployment, function: ModuleType) -> None:
    messages = [aws.upload(f"late{seed}.png", noise_png(seed)) for seed in range(2)]
    with mock.patch.object(function.s3_client, "get_object") as get_object:
        result = function.handler(aws.sqs_event(*messages), FakeContext(remaining_ms=1_000))
        with pytest.raises(function.RetryableFailure, match="too little time"):
            function.handler(direct_event(*messages), FakeContext(remaining_ms=1_000))
    get_object.assert_not_called()
    assert result == {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]}
    assert aws.item_count() == 0


def test_timeout_guard_captions_what_fits_and_returns_the_rest(
    aws: Deployment, function: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [aws.upload(f"t{seed}.png", noise_png(seed)) for seed in range(4)]
    monkeypatch.setattr(function.caption_time, "ms_per_image", 1_000.0)
    # 2 s reserve + 1.5 s (1 s x safety 1.5) per image: 5.2 s left fits two images.
    result = function.handler(aws.sqs_event(*messages), FakeContext(remaining_ms=5_200))
    assert result == {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages[2:]]}
    assert [aws.item(f"t{seed}.png") is not None for seed in range(4)] == [True, True, False, False]


def test_timeout_guard_checks_again_before_captioning(
    aws: Deployment, function: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [aws.upload(f"d{seed}.png", noise_png(seed)) for seed in range(4)]
    monkeypatch.setattr(function.caption_time, "ms_per_image", 1_000.0)
    # Plenty of time while fetching (one check per object), then fetching took most of it.
    context = FakeContext(60_000, then=[60_000, 60_000, 60_000, 5_200])
    result = function.handler(aws.sqs_event(*messages), context)
    assert result == {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages[2:]]}
    assert [aws.item(f"d{seed}.png") is not None for seed in range(4)] == [True, True, False, False]


# --- logs ----------------------------------------------------------------------------------------------


def test_one_json_log_line_per_object(
    aws: Deployment, function: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [aws.upload("log-ok.png", noise_png(30)), aws.upload("log-bad.jpg", b"not an image")]
    stream = io.StringIO()
    monkeypatch.setattr(function.logger.registered_handler, "stream", stream)
    function.handler(aws.sqs_event(*messages), FakeContext())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    by_key = {line["key"]: line for line in lines if "key" in line}
    assert len(lines) == 2 and set(by_key) == {"log-ok.png", "log-bad.jpg"}
    assert by_key["log-ok.png"]["status"] == "captioned" and by_key["log-ok.png"]["latency_ms"] >= 0
    assert by_key["log-bad.jpg"]["status"] == "failed"
    assert by_key["log-bad.jpg"]["error"].startswith("not an image")


# --- telemetry: metrics (EMF), traces, request ids -----------------------------------------------------

TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


EXPECTED_UNITS = {
    **dict.fromkeys(["BatchSize", "ImagesCaptioned", "ImagesFailed", "Duplicates", "Retries"], "Count"),
    "CaptionLatency": "Milliseconds",
}


def emf_lines(stdout: str) -> list[dict[str, Any]]:
    """The Embedded Metric Format documents printed on stdout (one JSON object a line, with `_aws`)."""
    documents = []
    for line in stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def metric_values(document: dict[str, Any]) -> dict[str, list[float]]:
    """Metric name -> its values, for the metrics the document declares."""
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    values = {}
    for definition in directive["Metrics"]:
        value = document[definition["Name"]]
        values[definition["Name"]] = value if isinstance(value, list) else [value]
    return values


@pytest.fixture
def instrumented(function: ModuleType, monkeypatch: pytest.MonkeyPatch):
    """Build the function's telemetry afresh (as its init would with these switches) and return its
    instrumented handler; Powertools' cold-start flags are reset so this is a cold start."""
    from aws_lambda_powertools.metrics.provider import cold_start
    from aws_lambda_powertools.tracing import tracer as powertools_tracer

    def build(*, metrics: bool = True, tracing: bool = False, namespace: str = "CaptioningTest"):
        telemetry = function.Telemetry(
            metrics_enabled=metrics,
            tracing_enabled=tracing,
            namespace=namespace,
            function_name="captioning-test",
        )
        monkeypatch.setattr(function, "telemetry", telemetry)
        monkeypatch.setattr(cold_start, "is_cold_start", True)
        monkeypatch.setattr(powertools_tracer, "is_cold_start", True)
        return telemetry.instrument(function._handle)

    return build


def test_metrics_are_emitted_in_emf(
    aws: Deployment, function: ModuleType, instrumented, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [aws.upload(f"emf-{seed}.png", noise_png(seed)) for seed in range(3)]
    bad = aws.upload("emf-bad.jpg", b"not an image")
    handler = instrumented(namespace="CaptioningTest")
    handler(aws.sqs_event(good[0]), FakeContext())
    capsys.readouterr()

    # A redelivery of the first, two new images, one bad object: then a warm invocation.
    handler(aws.sqs_event(good[0], good[1], good[2], bad), FakeContext())
    handler(aws.sqs_event(good[1]), FakeContext())

    documents = emf_lines(capsys.readouterr().out)
    assert len(documents) == 2  # one per invocation, no cold start any more
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "CaptioningTest"
        assert [sorted(dimensions) for dimensions in directive["Dimensions"]] == [
            ["function_name", "service"]
        ]
        assert (document["service"], document["function_name"]) == ("captioning", "captioning-test")
        units = {definition["Name"]: definition["Unit"] for definition in directive["Metrics"]}
        assert units.items() <= EXPECTED_UNITS.items()
    batch, warm = (metric_values(document) for document in documents)
    assert set(batch) == set(EXPECTED_UNITS)
    assert {name: values for name, values in batch.items() if name != "CaptionLatency"} == {
        "BatchSize": [4.0],
        "ImagesCaptioned": [2.0],
        "ImagesFailed": [1.0],
        "Duplicates": [1.0],
        "Retries": [0.0],
    }
    latencies = [float(aws.item(f"emf-{seed}.png")["inference_ms"]) for seed in (1, 2)]
    assert batch["CaptionLatency"] == latencies  # one value per captioned image
    assert warm["Duplicates"] == [1.0] and warm["ImagesCaptioned"] == [0.0] and "CaptionLatency" not in warm


def test_cold_start_metric_once(
    aws: Deployment, function: ModuleType, instrumented, capsys: pytest.CaptureFixture[str]
) -> None:
    message = aws.upload("cold.png", noise_png(40))
    handler = instrumented()
    handler(aws.sqs_event(message), FakeContext())
    handler(aws.sqs_event(message), FakeContext())
    cold = [d for d in emf_lines(capsys.readouterr().out) if "ColdStart" in metric_values(d)]
    assert len(cold) == 1
    assert metric_values(cold[0]) == {"ColdStart": [1.0]}
    assert cold[0]["function_name"] == "captioning-test" and cold[0]["service"] == "captioning"
    assert cold[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "CaptioningTest"


def test_retries_are_counted_and_flushed_when_a_direct_event_raises(
    aws: Deployment, function: ModuleType, instrumented, faults: FaultInjector, capsys
) -> None:
    message = aws.upload("retry-me.png", noise_png(41))
    faults.fail(function.s3_client, "GetObject", status=503, code="SlowDown")
    with pytest.raises(function.RetryableFailure):
        instrumented()(direct_event(message), FakeContext())
    (document,) = [d for d in emf_lines(capsys.readouterr().out) if "Retries" in metric_values(d)]
    assert metric_values(document)["Retries"] == [1.0]


def test_metrics_off_prints_nothing(
    aws: Deployment, function: ModuleType, instrumented, capsys: pytest.CaptureFixture[str]
) -> None:
    message = aws.upload("quiet.png", noise_png(42))
    instrumented(metrics=False)(aws.sqs_event(message), FakeContext())
    assert function.telemetry.metrics is None
    assert emf_lines(capsys.readouterr().out) == []
    assert aws.item("quiet.png")["status"] == "captioned"


def test_every_log_line_carries_the_request_id(
    aws: Deployment, function: ModuleType, instrumented, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [aws.upload("rid-ok.png", noise_png(43)), aws.upload("rid-bad.jpg", b"nope")]
    stream = io.StringIO()
    monkeypatch.setattr(function.logger.registered_handler, "stream", stream)
    instrumented(metrics=False)(aws.sqs_event(*messages), FakeContext())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    assert {line["function_request_id"] for line in lines} == {FakeContext.aws_request_id}
    assert {line["function_name"] for line in lines} == {FakeContext.function_name}


@pytest.fixture
def xray_segments(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The X-Ray SDK as it runs inside Lambda (a trace header in the environment), its emitter replaced
    by a list of the (sub)segments it would send to the daemon."""
    from aws_lambda_powertools import Tracer
    from aws_xray_sdk import global_sdk_config
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.lambda_launcher import LambdaContext

    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE_HEADER)
    Tracer._reset_config()  # Powertools keeps "disabled" class-wide once any Tracer was built outside Lambda
    global_sdk_config.set_sdk_enabled(True)
    sent: list[dict[str, Any]] = []

    class Emitter:
        def send_entity(self, entity: Any) -> None:
            sent.append(json.loads(entity.serialize()))

        def set_daemon_address(self, address: str) -> None:
            pass

    monkeypatch.setattr(xray_recorder, "_emitter", Emitter())
    # The recorder chose its context when first imported, here outside Lambda; inside Lambda it is this.
    monkeypatch.setattr(xray_recorder, "_context", LambdaContext())
    try:
        yield sent
    finally:
        global_sdk_config.set_sdk_enabled(False)  # botocore stays patched, but the patches stand aside
        Tracer._reset_config()


def test_tracing_has_a_subsegment_per_step_and_annotates_the_cold_start(
    aws: Deployment, function: ModuleType, instrumented, xray_segments: list[dict[str, Any]]
) -> None:
    messages = [aws.upload(f"trace-{seed}.png", noise_png(seed)) for seed in range(2)]
    handler = instrumented(metrics=False, tracing=True)
    handler(aws.sqs_event(*messages), FakeContext())
    by_name = {segment["name"]: segment for segment in xray_segments}
    invocation = by_name["## _handle"]
    assert invocation["annotations"] == {"ColdStart": True, "Service": "captioning"}
    for step, expected in [
        ("fetch", {"objects": 2}),
        ("caption", {"images": 2}),
        ("persist", {"items": 2}),
    ]:
        assert by_name[f"## {step}"]["parent_id"] == invocation["id"]
        assert by_name[f"## {step}"]["annotations"] == expected
    assert len(xray_segments) > 4  # the AWS calls in the steps are traced too (S3 GetObject, DynamoDB)

    xray_segments.clear()
    handler(aws.sqs_event(*messages), FakeContext())
    assert {s["name"]: s for s in xray_segments}["## _handle"]["annotations"]["ColdStart"] is False


def test_tracing_off_opens_no_subsegment(
    aws: Deployment, function: ModuleType, instrumented, xray_segments: list[dict[str, Any]]
) -> None:
    """In this process an earlier test's Tracer has patched botocore for good (its AWS calls would still
    be traced with the SDK on); the fresh-interpreter test below shows nothing of X-Ray loads when off."""
    from aws_xray_sdk.core import xray_recorder

    message = aws.upload("untraced.png", noise_png(44))
    with mock.patch.object(xray_recorder, "begin_subsegment", wraps=xray_recorder.begin_subsegment) as begin:
        instrumented(metrics=False, tracing=False)(aws.sqs_event(message), FakeContext())
    assert function.telemetry.tracer is None
    assert [
        c for c in begin.call_args_list if str(c.args[0] if c.args else c.kwargs["name"]).startswith("##")
    ] == []
    assert [s["name"] for s in xray_segments if s["name"].startswith("##")] == []


SWITCH_SCRIPT = """
import sys
from captioning.function.settings import Settings
from captioning.function.telemetry import Telemetry

settings = Settings.from_environment()
telemetry = Telemetry.from_environment(
    metrics_enabled=settings.metrics_enabled, tracing_enabled=settings.tracing_enabled
)


class Context:
    function_name, memory_limit_in_mb, aws_request_id = "f", 128, "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:1:function:f"


def handle(event, context):
    with telemetry.step("fetch", objects=1):
        telemetry.record_invocation(
            batch_size=1, captioned=1, failed=0, duplicates=0, retries=0, latencies_ms=[5.0]
        )


telemetry.instrument(handle)({}, Context())
print("xray loaded:", any(name.startswith("aws_xray_sdk") for name in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("switched_on", [False, True], ids=["off", "on"])
def test_telemetry_switches_from_the_environment(switched_on: bool) -> None:
    """In a fresh interpreter, from the variables the component writes: off, nothing of X-Ray is even
    imported and nothing is printed; on (the control), both happen."""
    disabled = "false" if switched_on else "true"
    env = {
        "PATH": os.environ["PATH"],
        "TABLE_NAME": "t",
        "LAMBDA_TASK_ROOT": "/var/task",  # inside Lambda: Powertools would trace unless told not to
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:9",  # discard port, should anything be sent
        "POWERTOOLS_METRICS_DISABLED": disabled,
        "POWERTOOLS_TRACE_DISABLED": disabled,
    }
    result = subprocess.run(  # noqa: S603  our own interpreter and script
        [sys.executable, "-c", SWITCH_SCRIPT], env=env, capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert f"xray loaded: {switched_on}" in result.stderr
    documents = emf_lines(result.stdout)
    assert len(documents) == (2 if switched_on else 0)  # the invocation's metrics and the cold start
