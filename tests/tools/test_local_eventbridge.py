"""The local eventbridge mode's parts against moto: the EventBridge event builder against the event moto
really sends; `ops backfill` on an existing bucket with a key prefix (the bucket and its other consumer
untouched); settings that refuse what the local pipeline cannot emulate."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from captioning.aws_events import eventbridge_object_created_event
from captioning.contract.key_filters import key_filters
from captioning.function.events import parse_event
from local.resources import create_resources
from local.settings import LocalSettings, SettingsError
from ops.backfill import run_backfill
from ops.locate import Locations

EXISTING = "existing-team-bucket"


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in batch]
    return bodies


@pytest.fixture
def existing_bucket(mocked_aws: None) -> dict[str, Any]:
    """Someone's bucket, its notification delivering to their queue, with objects put long ago."""
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    s3.create_bucket(Bucket=EXISTING)
    theirs = sqs.create_queue(QueueName="their-consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=theirs, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    configuration = {"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]}
    s3.put_bucket_notification_configuration(Bucket=EXISTING, NotificationConfiguration=configuration)
    for key in ["photos/old 1.png", "photos/sub/old+2.jpg", "photos/readme.txt", "finance/q3.png"]:
        s3.put_object(Bucket=EXISTING, Key=key, Body=b"image bytes")
    drain(sqs, theirs)
    return {"s3": s3, "sqs": sqs, "their_queue": theirs}


def test_built_eventbridge_event_has_the_fields_moto_sends_and_parses_the_same(
    existing_bucket: dict[str, Any],
) -> None:
    s3, sqs = existing_bucket["s3"], existing_bucket["sqs"]
    resources = create_resources(
        None, visibility_timeout_s=30, max_receive_count=3, trigger="eventbridge", existing_bucket=EXISTING
    )
    s3.put_object(Bucket=EXISTING, Key="photos/new one+.png", Body=b"fresh")
    (real,) = drain(sqs, resources.queue_url)
    head = s3.head_object(Bucket=EXISTING, Key="photos/new one+.png")
    built = eventbridge_object_created_event(
        EXISTING, "photos/new one+.png", size=head["ContentLength"], etag=head["ETag"]
    )
    assert set(built) == set(real)
    assert set(built["detail"]) == set(real["detail"])
    # moto spells the ETag eTag (AWS: etag) and has no version-id for an unversioned bucket but "null".
    assert set(built["detail"]["object"]) - {"etag"} <= set(real["detail"]["object"]) - {"eTag"}
    assert parse_event(built).unique_objects() == parse_event(real).unique_objects()


def test_backfill_on_an_existing_bucket_with_a_key_prefix(existing_bucket: dict[str, Any]) -> None:
    s3, sqs = existing_bucket["s3"], existing_bucket["sqs"]
    before = s3.get_bucket_notification_configuration(Bucket=EXISTING)["QueueConfigurations"]
    resources = create_resources(
        None,
        visibility_timeout_s=30,
        max_receive_count=3,
        key_filters=key_filters("photos/", (".png", ".jpg")),
        trigger="eventbridge",
        existing_bucket=EXISTING,
    )
    drain(sqs, existing_bucket["their_queue"])  # S3's test event of the configuration
    # One key is captioned already, for the object's current ETag.
    etag = s3.head_object(Bucket=EXISTING, Key="photos/old 1.png")["ETag"].strip('"')
    resources.client("dynamodb").put_item(
        TableName=resources.table,
        Item={"key": {"S": "photos/old 1.png"}, "status": {"S": "captioned"}, "etag": {"S": etag}},
    )
    locations = Locations(
        bucket=EXISTING,  # the stack's bucketName output names the existing bucket
        table=resources.table,
        queue_url=resources.queue_url,
        dead_letter_queue_url=resources.dead_letter_queue_url,
        key_prefix="photos/",
        key_suffixes=(".png", ".jpg"),
        region=resources.region,
    )

    summary = run_backfill(locations, rate=1000.0)

    assert (summary.prefix, summary.listed) == ("photos/", 3)  # finance/ is never listed
    assert (summary.not_delivered, summary.already_done, summary.sent) == (1, 1, 1)
    (message,) = drain(sqs, resources.queue_url)
    assert [ref.key for ref in parse_event(message).unique_objects()] == ["photos/sub/old+2.jpg"]
    # Nothing of the bucket changed, and its other consumer heard nothing of the backfill.
    assert s3.get_bucket_notification_configuration(Bucket=EXISTING)["QueueConfigurations"] == before
    assert drain(sqs, existing_bucket["their_queue"]) == []


def test_an_existing_bucket_needs_the_eventbridge_trigger(mocked_aws: None) -> None:
    with pytest.raises(ValueError, match="trigger eventbridge only"):
        create_resources(None, visibility_timeout_s=30, max_receive_count=3, existing_bucket=EXISTING)


def test_the_local_pipeline_refuses_the_direct_trigger() -> None:
    with pytest.raises(SettingsError, match="--trigger must be one of queue, eventbridge, got 'direct'"):
        LocalSettings(trigger="direct")
