"""The function as it really runs: the built image under the Lambda Runtime Interface Emulator, against moto.

Each test module runs once per image tag (conftest: $CAPTIONING_IMAGE_TAGS). The first invocation is timed
and the INIT duration read from the RIE's `INIT REPORT` line for the summary of `make image-test`.
"""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from captioning.aws_events import s3_notification_event, s3_notification_record, sqs_record
from local.function_container import FunctionContainer
from tests.formats import CAPTION, format_files
from tests.image.conftest import BUCKET, REGION, TABLE, record

pytestmark = [pytest.mark.image, pytest.mark.slow]

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
EXPECTED = json.loads((SAMPLES / "captions.json").read_text())
QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:captioning-uploads"
PREFIXES = ("", "uploads/", "uploads/2026/11 28/", "a+b/c d/", "fotos/über/")
"""Nested prefixes with spaces, '+' and non-ASCII characters: S3 URL-encodes all of them in events."""


def sample_keys() -> dict[str, str]:
    """object key -> sample file name; every sample once, under varied prefixes and a '+' in a name."""
    keys = {}
    for position, name in enumerate(sorted(EXPECTED)):
        prefix = PREFIXES[position % len(PREFIXES)]
        stem, dot, suffix = name.rpartition(".")
        key_name = f"{stem}+copy.{suffix}" if position == 1 else name
        keys[f"{prefix}{key_name}"] = name
    return keys


def upload(aws: dict[str, Any], key: str, body: bytes) -> dict[str, Any]:
    aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=body)
    head = aws["s3"].head_object(Bucket=BUCKET, Key=key)
    return s3_notification_record(BUCKET, key, size=head["ContentLength"], etag=head["ETag"])


def item(aws: dict[str, Any], key: str) -> dict[str, Any] | None:
    found = (
        aws["dynamodb"].get_item(TableName=TABLE, Key={"key": {"S": key}}, ConsistentRead=True).get("Item")
    )
    return {name: next(iter(value.values())) for name, value in found.items()} if found else None


@pytest.fixture(scope="module")
def direct_event(aws: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    keys = sample_keys()
    records = [upload(aws, key, (SAMPLES / "images" / name).read_bytes()) for key, name in keys.items()]
    return s3_notification_event(records), keys


@pytest.fixture(scope="module")
def first_invocation(
    function: FunctionContainer, direct_event: tuple[dict[str, Any], dict[str, str]], image_tag: str
) -> dict[str, Any]:
    """The direct S3 notification, invoked first (its latency includes the INIT of the RIE's lazy start)."""
    event, keys = direct_event
    started = time.monotonic()
    result = function.invoke(event)
    latency_s = time.monotonic() - started
    record(
        image_tag,
        init_duration_ms=function.init_duration_ms,
        first_invocation_s=round(latency_s, 3),
        first_invocation_images=len(keys),
    )
    return result


def test_direct_notification_captions_every_record_with_url_encoded_keys(
    first_invocation: dict[str, Any], direct_event: tuple[dict[str, Any], dict[str, str]], aws: dict[str, Any]
) -> None:
    _, keys = direct_event
    assert first_invocation == {"captioned": len(keys), "failed": 0, "duplicate": 0}
    for key, sample in keys.items():
        stored = item(aws, key)
        assert stored is not None, f"no item for {key!r}"
        assert stored["status"] == "captioned", (key, stored)
        assert stored["caption"] == EXPECTED[sample], (key, stored["caption"], EXPECTED[sample])


def test_init_report_gives_the_init_duration(
    first_invocation: dict[str, Any], function: FunctionContainer
) -> None:
    assert function.init_duration_ms is not None, (
        f"no INIT REPORT line in the logs:\n{function.logs()[-3000:]}"
    )
    assert function.init_duration_ms > 0


def test_redelivered_event_changes_nothing(
    first_invocation: dict[str, Any],
    function: FunctionContainer,
    direct_event: tuple[dict[str, Any], dict[str, str]],
    aws: dict[str, Any],
) -> None:
    event, keys = direct_event
    before = {key: item(aws, key) for key in keys}
    assert function.invoke(event) == {"captioned": 0, "failed": 0, "duplicate": len(keys)}
    assert {key: item(aws, key) for key in keys} == before


def test_sqs_batch_names_exactly_the_malformed_message(
    first_invocation: dict[str, Any], function: FunctionContainer, aws: dict[str, Any]
) -> None:
    names = sorted(EXPECTED)[:3]
    records, keys = [], []
    for position, name in enumerate(names):
        key = f"queued/{position} {name}"
        keys.append((key, name))
        body = json.dumps(s3_notification_event([upload(aws, key, (SAMPLES / "images" / name).read_bytes())]))
        records.append(
            sqs_record(
                body, message_id=str(uuid.uuid4()), receipt_handle=f"receipt-{position}", queue_arn=QUEUE_ARN
            )
        )
    malformed_id = str(uuid.uuid4())
    records.insert(
        1, sqs_record("{not json", message_id=malformed_id, receipt_handle="receipt-bad", queue_arn=QUEUE_ARN)
    )
    result = function.invoke({"Records": records})
    assert result == {"batchItemFailures": [{"itemIdentifier": malformed_id}]}
    for key, name in keys:
        stored = item(aws, key)
        assert stored is not None and stored["caption"] == EXPECTED[name], (key, stored)


def test_an_object_that_is_not_an_image_gets_a_failed_item_with_a_reason(
    first_invocation: dict[str, Any], function: FunctionContainer, aws: dict[str, Any]
) -> None:
    key = "uploads/notes – not a picture.png"
    event = s3_notification_event([upload(aws, key, b"these are words, not pixels\n" * 20)])
    assert function.invoke(event) == {"captioned": 0, "failed": 1, "duplicate": 0}
    stored = item(aws, key)
    assert stored is not None and stored["status"] == "failed"
    assert stored.get("error"), f"the failed item gives no reason: {stored}"


def test_every_format_with_every_default_suffix_is_captioned(
    first_invocation: dict[str, Any], function: FunctionContainer, aws: dict[str, Any]
) -> None:
    """JPEG, PNG, GIF, WEBP, BMP, TIFF, HEIC/HEIF and AVIF, keys in both cases (tests/formats.py)."""
    files = {f"formats/{name}": data for name, data in format_files().items()}
    event = s3_notification_event([upload(aws, key, data) for key, data in files.items()])
    assert function.invoke(event) == {"captioned": len(files), "failed": 0, "duplicate": 0}
    captions = {key: (item(aws, key) or {}).get("caption") for key in files}
    assert captions == dict.fromkeys(files, CAPTION)
