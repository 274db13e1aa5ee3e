"""Fixtures of the handler tests (tests/function/test_handler_*.py): the function against moto's S3, SQS
and DynamoDB, with the tiny model.

Events are the ones moto's S3 really emits (S3 -> SQS notification, read back from the queue): the
message body is the direct S3 event; the message wrapped as Lambda's SQS event record is the queue event.
Events no upload makes (S3's test event, a body that is no notification, AWS's documented examples) are
files in tests/fixtures/events/, read with `load_event`. Faults are injected at the botocore level on the
function's `s3_client` / `dynamodb_client`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import botocore.retries.standard
import moto  # noqa: F401  imported before the function creates its clients, so moto can intercept them
import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from PIL import Image

from captioning.aws_events import s3_notification_event, sqs_record
from captioning.contract.constants import TABLE_KEY
from captioning.contract.environment import Variable
from captioning.function.processing import CaptionHandler
from local.faults import error_responder
from local.resources import EmulatedResources, ResourceNames
from tests.conftest import AWS_TEST_REGION

BUCKET = ResourceNames().bucket
TABLE = ResourceNames().table
MODEL_ID = "tiny-vit-gpt2-test"
ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "fixtures" / "events"


def load_event(name: str) -> dict[str, Any]:
    """tests/fixtures/events/<name>.json: an event (or message body) as AWS sends it."""
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


FUNCTION_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": AWS_TEST_REGION,
    Variable.TABLE_NAME: TABLE,
    Variable.MODEL_ID: MODEL_ID,
    Variable.NUM_BEAMS: "2",
    Variable.MAX_LENGTH: "6",
    # The function must use standard retries whatever the runtime's defaults say.
    "AWS_RETRY_MODE": "legacy",
}
"""The function's environment in these tests (MODEL_DIR: the tiny model's directory)."""


@contextmanager
def function_environment(tiny_model_dir: Path) -> Iterator[None]:
    """FUNCTION_ENVIRONMENT set, no AWS endpoint or profile of the machine's: undone at the end."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {**FUNCTION_ENVIRONMENT, Variable.MODEL_DIR: str(tiny_model_dir)}.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        env.delenv("AWS_PROFILE", raising=False)
        yield


@pytest.fixture(scope="module")
def function(tiny_model_dir: Path) -> Iterator[CaptionHandler]:
    """The function initialised from the environment, as Lambda's INIT phase does (importing
    captioning.function.main runs the same `CaptionHandler.from_environment()`)."""
    with function_environment(tiny_model_dir):
        yield CaptionHandler.from_environment()


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
        response = self.dynamodb.Table(TABLE).get_item(Key={TABLE_KEY: key}, ConsistentRead=True)
        return response.get("Item")

    def item_count(self) -> int:
        return self.dynamodb.Table(TABLE).scan(Select="COUNT")["Count"]


def direct_event(*messages: dict[str, Any]) -> dict[str, Any]:
    """A direct S3 -> Lambda event holding the records of these notifications."""
    return {"Records": [record for message in messages for record in json.loads(message["Body"])["Records"]]}


@pytest.fixture
def aws(emulated_resources: EmulatedResources, function: CaptionHandler) -> Deployment:
    """The deployed queue-mode resources, made by the local pipeline's code (tests/conftest.py)."""
    assert (emulated_resources.bucket, emulated_resources.table) == (BUCKET, TABLE)
    sqs = emulated_resources.client("sqs")
    queue_url = emulated_resources.queue_url
    test_event_message = sqs.receive_message(QueueUrl=queue_url)["Messages"][0]
    return Deployment(
        emulated_resources.client("s3"),
        sqs,
        boto3.resource("dynamodb", region_name=AWS_TEST_REGION),
        queue_url,
        emulated_resources.queue_arn,
        test_event_message,
    )


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
