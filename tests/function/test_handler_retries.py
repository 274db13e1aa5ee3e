"""Transient problems and the timeout guard: objects handed back for a retry, never swallowed; the
retry reasons reported as data (the invocation's outcomes, RetryableFailure.retries)."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import EndpointConnectionError

from captioning.function.processing import CaptionHandler, Invocation, RetryableFailure
from tests.function.conftest import (
    Deployment,
    FakeContext,
    FaultInjector,
    direct_event,
    noise_png,
)

# --- transient problems: retried, never swallowed -------------------------------------------------------


def test_direct_event_raises_on_throttling_after_boto3_retries(
    aws: Deployment, function: CaptionHandler, faults: FaultInjector
) -> None:
    message = aws.upload("slow.png", noise_png(20))
    attempts = faults.fail(function.s3_client, "GetObject", status=503, code="SlowDown")
    with pytest.raises(RetryableFailure, match="slow.png.*SlowDown"):
        function.handler(direct_event(message), FakeContext())
    assert len(attempts) == 3  # boto3's standard mode tried three times before giving up
    assert aws.item_count() == 0


def test_sqs_event_returns_only_the_affected_messages(
    aws: Deployment, function: CaptionHandler, faults: FaultInjector
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
    aws: Deployment, function: CaptionHandler, faults: FaultInjector
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
    aws: Deployment, function: CaptionHandler, faults: FaultInjector
) -> None:
    message = aws.upload("offline.png", noise_png(21))

    def unreachable(request: Any, **kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url=request.url)

    faults.hook(function.dynamodb_client, "before-send.dynamodb.PutItem", unreachable)
    with pytest.raises(RetryableFailure, match="EndpointConnectionError"):
        function.handler(direct_event(message), FakeContext())
    assert function.handler(aws.sqs_event(message), FakeContext()) == {
        "batchItemFailures": [{"itemIdentifier": message["MessageId"]}]
    }


# --- the timeout guard ----------------------------------------------------------------------------------


def test_timeout_guard_starts_nothing_when_time_is_short(aws: Deployment, function: CaptionHandler) -> None:
    messages = [aws.upload(f"late{seed}.png", noise_png(seed)) for seed in range(2)]
    with mock.patch.object(function.s3_client, "get_object") as get_object:
        result = function.handler(aws.sqs_event(*messages), FakeContext(remaining_ms=1_000))
        with pytest.raises(RetryableFailure, match="too little time"):
            function.handler(direct_event(*messages), FakeContext(remaining_ms=1_000))
    get_object.assert_not_called()
    assert result == {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]}
    assert aws.item_count() == 0


def test_timeout_guard_captions_what_fits_and_returns_the_rest(
    aws: Deployment, function: CaptionHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [aws.upload(f"t{seed}.png", noise_png(seed)) for seed in range(4)]
    monkeypatch.setattr(function.caption_time, "ms_per_image", 1_000.0)
    # 2 s reserve + 1.5 s (1 s x safety 1.5) per image: 5.2 s left fits two images.
    result = function.handler(aws.sqs_event(*messages), FakeContext(remaining_ms=5_200))
    assert result == {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages[2:]]}
    assert [aws.item(f"t{seed}.png") is not None for seed in range(4)] == [True, True, False, False]


def test_timeout_guard_checks_again_before_captioning(
    aws: Deployment, function: CaptionHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [aws.upload(f"d{seed}.png", noise_png(seed)) for seed in range(4)]
    monkeypatch.setattr(function.caption_time, "ms_per_image", 1_000.0)
    # Plenty of time while fetching (one check per object), then fetching took most of it.
    context = FakeContext(60_000, then=[60_000, 60_000, 60_000, 5_200])
    result = function.handler(aws.sqs_event(*messages), context)
    assert result == {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages[2:]]}
    assert [aws.item(f"d{seed}.png") is not None for seed in range(4)] == [True, True, False, False]


# --- retry reasons, as data ------------------------------------------------------------------------------


def test_each_invocations_outcomes_carry_the_retry_reasons(
    aws: Deployment, function: CaptionHandler, faults: FaultInjector, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [aws.upload(f"r{seed}.png", noise_png(seed)) for seed in range(2)]
    faults.fail(function.s3_client, "GetObject", status=503, code="SlowDown", keys={"r1.png"})
    seen: list[Invocation] = []
    monkeypatch.setattr(function, "on_invocation", seen.append)
    result = function.handler(aws.sqs_event(*messages), FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": messages[1]["MessageId"]}]}
    (invocation,) = seen
    assert {ref.key: outcome.status for ref, outcome in invocation.outcomes.items()} == {
        "r0.png": "captioned",
        "r1.png": "retry",
    }
    assert list(invocation.retry_reasons) == ["r1.png"]
    assert invocation.retry_reasons["r1.png"].startswith("SlowDown")


def test_a_direct_event_raises_with_its_retry_reasons(
    aws: Deployment, function: CaptionHandler, faults: FaultInjector
) -> None:
    messages = [aws.upload(key, noise_png(seed)) for seed, key in enumerate(["fine.png", "slow.png"])]
    faults.fail(function.s3_client, "GetObject", status=503, code="SlowDown", keys={"slow.png"})
    with pytest.raises(RetryableFailure) as raised:
        function.handler(direct_event(*messages), FakeContext())
    assert list(raised.value.retries) == ["slow.png"]
    assert raised.value.retries["slow.png"].startswith("SlowDown")
    assert aws.item("fine.png")["status"] == "captioned"
