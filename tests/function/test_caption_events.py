"""Caption events (CAPTION_EVENTS=true): one EventBridge event per captioned or failed object after its item
is written, reaching a rule's SQS queue; batches of 10; refused entries retried; an object whose event
cannot be published handed back and published by its redelivery; duplicates publish nothing;
renew_clients makes every client."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest

from captioning.contract.constants import CAPTION_EVENT_DETAIL_TYPES, CAPTION_EVENT_SOURCE
from captioning.contract.environment import Variable
from captioning.function import caption_events
from captioning.function.processing import CaptionHandler
from captioning.function.settings import Settings, SettingsError
from local.resources import EmulatedResources, create_resources
from tests.function.conftest import BUCKET, MODEL_ID, TABLE, FakeContext, noise_png


@pytest.fixture
def resources(mocked_aws: None) -> EmulatedResources:
    """Queue mode with a rule on the default bus delivering caption events to a queue of their own."""
    return create_resources(None, visibility_timeout_s=30, max_receive_count=3, caption_events=True)


@pytest.fixture
def publishing(function: CaptionHandler, resources: EmulatedResources) -> Iterator[CaptionHandler]:
    """The tests' function with caption events on (same model, fresh clients)."""
    settings = dataclasses.replace(function.settings, caption_events=True)
    handler = dataclasses.replace(function, settings=settings)
    handler.renew_clients()
    yield handler


def upload_event(resources: EmulatedResources, objects: dict[str, bytes]) -> dict[str, Any]:
    """Upload the objects; the SQS event of their notifications (the test event drained first)."""
    s3, sqs = resources.client("s3"), resources.client("sqs")
    sqs.purge_queue(QueueUrl=resources.queue_url)
    for key, data in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=resources.queue_url, MaxNumberOfMessages=10).get("Messages"):
        messages += batch
    assert len(messages) == len(objects)
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "eventSource": "aws:sqs",
                "eventSourceARN": resources.queue_arn,
                "attributes": {},
            }
            for m in messages
        ]
    }


def received_events(resources: EmulatedResources) -> list[dict[str, Any]]:
    sqs = resources.client("sqs")
    events: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=resources.caption_events_queue_url, MaxNumberOfMessages=10
    ).get("Messages"):
        events += [json.loads(m["Body"]) for m in batch]
    return events


def item(key: str) -> dict[str, Any]:
    return boto3.resource("dynamodb").Table(TABLE).get_item(Key={"key": key}, ConsistentRead=True)["Item"]


def test_caption_events_reach_a_rules_queue(resources: EmulatedResources, publishing: CaptionHandler) -> None:
    event = upload_event(resources, {"good.png": noise_png(1), "broken.png": b"not an image"})
    assert publishing.handler(event, FakeContext()) == {"batchItemFailures": []}

    by_key = {e["detail"]["key"]: e for e in received_events(resources)}
    assert set(by_key) == {"good.png", "broken.png"}
    good, broken = by_key["good.png"], by_key["broken.png"]
    assert (good["source"], good["detail-type"]) == (
        CAPTION_EVENT_SOURCE,
        CAPTION_EVENT_DETAIL_TYPES["captioned"],
    )
    assert broken["detail-type"] == CAPTION_EVENT_DETAIL_TYPES["failed"]
    stored = item("good.png")
    assert good["detail"] == {
        "bucket": BUCKET,
        "key": "good.png",
        "etag": stored["etag"],
        "status": "captioned",
        "model": MODEL_ID,
        "caption": stored["caption"],
    }
    assert broken["detail"]["status"] == "failed" and broken["detail"]["error"] == item("broken.png")["error"]
    assert "caption" not in broken["detail"]
    assert {item(key)["caption_event"] for key in by_key} == {"published"}


def test_events_go_in_batches_of_at_most_ten(
    resources: EmulatedResources, publishing: CaptionHandler
) -> None:
    event = upload_event(resources, {f"many-{n}.png": noise_png(n) for n in range(12)})
    with mock.patch.object(
        publishing.events_client, "put_events", wraps=publishing.events_client.put_events
    ) as put:
        publishing.handler(event, FakeContext())
    assert [len(c.kwargs["Entries"]) for c in put.call_args_list] == [10, 2]
    assert len(received_events(resources)) == 12


def test_refused_entries_are_sent_again(resources: EmulatedResources, publishing: CaptionHandler) -> None:
    event = upload_event(resources, {"first.png": noise_png(2), "second.png": noise_png(3)})
    real = publishing.events_client.put_events
    answers = iter(
        [{"FailedEntryCount": 1, "Entries": [{"EventId": "e-1"}, {"ErrorCode": "ThrottlingException"}]}]
    )

    def put_events(**kwargs: Any) -> dict[str, Any]:
        refused = next(answers, None)
        if refused is None:
            return real(**kwargs)
        real(Entries=kwargs["Entries"][:1])  # the entry the answer says was published
        return refused

    with (
        mock.patch.object(publishing.events_client, "put_events", side_effect=put_events) as put,
        mock.patch.object(caption_events, "RETRY_DELAY_S", 0),
    ):
        assert publishing.handler(event, FakeContext()) == {"batchItemFailures": []}
    assert [len(c.kwargs["Entries"]) for c in put.call_args_list] == [2, 1]
    assert sorted(e["detail"]["key"] for e in received_events(resources)) == ["first.png", "second.png"]


def test_an_event_that_cannot_be_published_is_published_by_the_redelivery(
    resources: EmulatedResources, publishing: CaptionHandler
) -> None:
    event = upload_event(resources, {"unlucky.png": noise_png(4), "lucky.png": noise_png(5)})
    unlucky_id = next(r["messageId"] for r in event["Records"] if "unlucky" in r["body"])
    real = publishing.events_client.put_events

    def refuse_unlucky(**kwargs: Any) -> dict[str, Any]:
        entries = kwargs["Entries"]
        published = [e for e in entries if "unlucky" not in e["Detail"]]
        if published:
            real(Entries=published)
        answers = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
            if "unlucky" in e["Detail"]
            else {"EventId": "x"}
            for e in entries
        ]
        return {"FailedEntryCount": len(entries) - len(published), "Entries": answers}

    with (
        mock.patch.object(publishing.events_client, "put_events", side_effect=refuse_unlucky) as put,
        mock.patch.object(caption_events, "RETRY_DELAY_S", 0),
    ):
        result = publishing.handler(event, FakeContext())
    assert put.call_count == caption_events.PUBLISH_ATTEMPTS
    assert result == {"batchItemFailures": [{"itemIdentifier": unlucky_id}]}  # back to the queue
    assert item("unlucky.png")["status"] == "captioned"  # the caption is kept...
    assert item("unlucky.png")["caption_event"] == "pending"  # ...and its event owed
    assert [e["detail"]["key"] for e in received_events(resources)] == ["lucky.png"]

    # The redelivery: a duplicate, not captioned again, but its event is published now.
    with (
        mock.patch.object(publishing.s3_client, "get_object") as get_object,
        mock.patch.object(publishing.events_client, "put_events", wraps=real) as put,
    ):
        assert publishing.handler(event, FakeContext()) == {"batchItemFailures": []}
    get_object.assert_not_called()
    assert [len(c.kwargs["Entries"]) for c in put.call_args_list] == [1]  # lucky.png is not sent twice
    (republished,) = received_events(resources)
    assert republished["detail"]["key"] == "unlucky.png"
    assert republished["detail"]["caption"] == item("unlucky.png")["caption"]
    assert item("unlucky.png")["caption_event"] == "published"


def test_a_bus_that_does_not_exist_hands_every_object_back(
    resources: EmulatedResources, publishing: CaptionHandler
) -> None:
    publishing.settings = dataclasses.replace(publishing.settings, event_bus_name="no-such-bus")
    event = upload_event(resources, {"nowhere.png": noise_png(6)})
    result = publishing.handler(event, FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert item("nowhere.png")["caption_event"] == "pending"


def test_events_go_to_the_named_bus(resources: EmulatedResources, publishing: CaptionHandler) -> None:
    events, sqs = resources.client("events"), resources.client("sqs")
    events.create_event_bus(Name="captions")
    queue_url = sqs.create_queue(QueueName="captions-bus-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="all", EventBusName="captions", EventPattern=json.dumps({"source": [CAPTION_EVENT_SOURCE]})
    )
    events.put_targets(Rule="all", EventBusName="captions", Targets=[{"Id": "q", "Arn": queue_arn}])
    publishing.settings = dataclasses.replace(publishing.settings, event_bus_name="captions")

    publishing.handler(upload_event(resources, {"bus.png": noise_png(7)}), FakeContext())
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue_url).get("Messages", [])]
    assert [b["detail"]["key"] for b in bodies] == ["bus.png"]
    assert received_events(resources) == []  # not on the default bus


def test_duplicates_publish_nothing(resources: EmulatedResources, publishing: CaptionHandler) -> None:
    event = upload_event(resources, {"once.png": noise_png(8)})
    publishing.handler(event, FakeContext())
    with mock.patch.object(publishing.events_client, "put_events") as put:
        assert publishing.handler(event, FakeContext()) == {"batchItemFailures": []}
    put.assert_not_called()
    assert len(received_events(resources)) == 1


def test_without_caption_events_nothing_is_published(
    resources: EmulatedResources, function: CaptionHandler
) -> None:
    assert function.events_client is None
    function.handler(upload_event(resources, {"quiet.png": noise_png(9)}), FakeContext())
    assert received_events(resources) == []
    assert "caption_event" not in item("quiet.png")


def test_renew_clients_makes_every_client_anew(publishing: CaptionHandler, function: CaptionHandler) -> None:
    before = (publishing.s3_client, publishing.dynamodb_client, publishing.events_client)
    publishing.renew_clients()
    after = (publishing.s3_client, publishing.dynamodb_client, publishing.events_client)
    assert [client.meta.service_model.service_name for client in after] == ["s3", "dynamodb", "events"]
    assert all(new is not old for new, old in zip(after, before, strict=True))
    assert all(client.meta.config.retries["mode"] == "standard" for client in after)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, (False, None)),
        ({Variable.CAPTION_EVENTS: "true"}, (True, None)),
        ({Variable.CAPTION_EVENTS: "true", Variable.EVENT_BUS_NAME: " captions "}, (True, "captions")),
        ({Variable.CAPTION_EVENTS: "false", Variable.EVENT_BUS_NAME: "captions"}, (False, "captions")),
    ],
)
def test_caption_event_settings(environ: dict[str, str], expected: tuple[bool, str | None]) -> None:
    settings = Settings.from_environment({Variable.TABLE_NAME: "t", **environ})
    assert (settings.caption_events, settings.event_bus_name) == expected


def test_a_bad_caption_events_value_is_named() -> None:
    with pytest.raises(SettingsError, match="CAPTION_EVENTS must be true or false; got 'yes'"):
        Settings.from_environment({Variable.TABLE_NAME: "t", Variable.CAPTION_EVENTS: "yes"})
