"""Redeliveries and duplicates: one item per object version, recognised before the work is done."""

from __future__ import annotations

from unittest import mock

import pytest

from captioning.function.processing import CaptionHandler
from tests.function.conftest import (
    Deployment,
    FakeContext,
    FaultInjector,
    direct_event,
    noise_png,
)

# --- duplicates ------------------------------------------------------------------------------------------


def test_duplicate_delivery_leaves_one_unchanged_item(aws: Deployment, function: CaptionHandler) -> None:
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
    aws: Deployment, function: CaptionHandler, shape: str
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
    aws: Deployment, function: CaptionHandler
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
    aws: Deployment, function: CaptionHandler, faults: FaultInjector
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


def test_duplicate_within_one_batch_is_captioned_once(aws: Deployment, function: CaptionHandler) -> None:
    message = aws.upload("same.png", noise_png(12))
    with mock.patch.object(function.captioner, "caption", wraps=function.captioner.caption) as caption:
        result = function.handler(
            aws.sqs_event(message, {**message, "MessageId": "redelivered"}), FakeContext()
        )
    assert result == {"batchItemFailures": []}
    assert [len(call.args[0]) for call in caption.call_args_list] == [1]
    assert aws.item_count() == 1


def test_new_version_of_a_key_replaces_its_item(aws: Deployment, function: CaptionHandler) -> None:
    first = aws.upload("v.png", noise_png(13))
    function.handler(direct_event(first), FakeContext())
    old_etag = aws.item("v.png")["etag"]
    second = aws.upload("v.png", noise_png(14))
    assert function.handler(direct_event(second), FakeContext())["captioned"] == 1
    assert aws.item("v.png")["etag"] != old_etag
