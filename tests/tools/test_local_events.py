"""The event builders of captioning/function/events.py against the handler's own parser and moto's real
events, and the state file `python -m local serve` leaves for other tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from captioning.aws_events import s3_notification_event, s3_notification_record, sqs_record
from captioning.function.events import MalformedEvent, ObjectRef, parse_event
from ops import serve_state

KEYS = ["plain.jpg", "a folder/red flower+1.png", "ünïcödé/photo (2).JPG", "100%=done&more?.webp"]
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:uploads"


def test_built_s3_event_parses_back_to_the_same_objects() -> None:
    records = [
        s3_notification_record("bucket", key, size=index, etag=f'"e{index}"')
        for index, key in enumerate(KEYS)
    ]
    delivery = parse_event(s3_notification_event(records))
    assert not delivery.from_queue
    assert delivery.messages[0].objects == [
        ObjectRef("bucket", key, etag=f"e{index}", size=index) for index, key in enumerate(KEYS)
    ]


def test_keys_are_encoded_as_s3_encodes_them() -> None:
    record = s3_notification_record("b", "a folder/red flower+ü.jpg", size=1, etag="e")
    assert record["s3"]["object"]["key"] == "a+folder/red+flower%2B%C3%BC.jpg"
    assert record["eventName"] == "ObjectCreated:Put" and record["eventSource"] == "aws:s3"


def test_event_time_version_and_sequencer() -> None:
    when = datetime(2026, 11, 28, 1, 2, 3, 456000, tzinfo=UTC)
    record = s3_notification_record("b", "k", size=1, etag="e", event_time=when, version_id="v1")
    assert record["eventTime"] == "2026-11-28T01:02:03.456Z"
    assert record["s3"]["object"]["versionId"] == "v1"
    later = s3_notification_record("b", "k", size=1, etag="e", event_time=when.replace(second=4))
    assert later["s3"]["object"]["sequencer"] > record["s3"]["object"]["sequencer"]
    assert "versionId" not in later["s3"]["object"]


def test_built_record_has_the_fields_of_the_event_moto_really_sends(mocked_aws: None) -> None:
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket="bucket-b")
    s3.put_bucket_notification_configuration(
        Bucket="bucket-b",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    sqs.purge_queue(QueueUrl=queue_url)  # the test event
    etag = s3.put_object(Bucket="bucket-b", Key="a b.jpg", Body=b"xyz")["ETag"]
    real = json.loads(sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["Body"])["Records"][0]
    built = s3_notification_record("bucket-b", "a b.jpg", size=3, etag=etag)

    def paths(value: object, prefix: str = "") -> set[str]:
        if not isinstance(value, dict):
            return {prefix}
        return {path for name, inner in value.items() for path in paths(inner, f"{prefix}/{name}")}

    # Every field moto sends is in the built record (which adds what AWS documents and moto leaves out).
    assert paths(real) <= paths(built), paths(real) - paths(built)
    assert parse_event({"Records": [real]}).messages == parse_event({"Records": [built]}).messages


def test_sqs_record_round_trips_through_the_parser() -> None:
    body = json.dumps(s3_notification_event([s3_notification_record("b", "x y.png", size=5, etag="e")]))
    record = sqs_record(body, message_id="m1", receipt_handle="r1", queue_arn=QUEUE_ARN)
    assert record["awsRegion"] == "eu-west-1" and record["eventSourceARN"] == QUEUE_ARN
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    bad = sqs_record("{not json", message_id="m2", receipt_handle="r2", queue_arn=QUEUE_ARN)
    delivery = parse_event({"Records": [record, bad]})
    assert delivery.from_queue
    assert [(m.message_id, m.objects) for m in delivery.messages] == [
        ("m1", [ObjectRef("b", "x y.png", "e", 5)])
    ]
    assert list(delivery.malformed_messages) == ["m2"]


def test_a_record_without_bucket_is_malformed() -> None:
    record = s3_notification_record("b", "k", size=1, etag="e")
    del record["s3"]["bucket"]["name"]
    with pytest.raises(MalformedEvent, match="bucket name or object key"):
        parse_event(s3_notification_event([record]))


# --- serve state ---------------------------------------------------------------------------------


def _state(pid: int) -> dict[str, object]:
    return {
        "endpoint_url": "http://127.0.0.1:5000",
        "region": "us-east-1",
        "bucket": "b",
        "table": "t",
        "queue_url": "http://127.0.0.1:5000/123/q",
        "dead_letter_queue_url": "http://127.0.0.1:5000/123/d",
        "trigger": "queue",
        "key_prefix": "",
        "key_suffixes": [".jpg"],
        "pid": pid,
    }


def test_serve_state_path_honours_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAPTIONING_LOCAL_STATE", str(tmp_path / "s.json"))
    assert serve_state.path() == tmp_path / "s.json"
    monkeypatch.delenv("CAPTIONING_LOCAL_STATE")
    assert serve_state.path() == Path.home() / ".cache" / "captioning" / "serve.json"


def test_serve_state_round_trip_and_removal(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "serve.json"
    serve_state.write(_state(os.getpid()), target)
    assert serve_state.read(target) == _state(os.getpid())
    serve_state.remove(target, pid=os.getpid() + 1)  # someone else's: kept
    assert target.exists()
    serve_state.remove(target, pid=os.getpid())
    assert not target.exists()
    with pytest.raises(serve_state.ServeStateError, match="python -m local serve"):
        serve_state.read(target)


def test_serve_state_of_a_dead_process_is_refused(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    target = serve_state.write(_state(int(finished.stdout)), tmp_path / "serve.json")
    with pytest.raises(serve_state.ServeStateError, match="no longer running"):
        serve_state.read(target)
    assert serve_state.read(target, check_running=False)["bucket"] == "b"


def test_serve_state_needs_every_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing \\['pid'\\]"):
        serve_state.write(
            {key: value for key, value in _state(1).items() if key != "pid"}, tmp_path / "s.json"
        )
    (tmp_path / "other.json").write_text('{"endpoint_url": "x"}')
    with pytest.raises(serve_state.ServeStateError, match="not a state file"):
        serve_state.read(tmp_path / "other.json")
