"""The soak's parts without the model: the botocore fault injector against moto's server with boto3's
standard retries, the generated objects, and the accounting."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.emulator import Emulator
from local.event_source import WorkerCrash
from local.faults import FAULTS, WRITE_LANDED, RandomFaults, error_responder, written_items
from local.resources import EmulatedResources, create_resources
from local.soak import summarize
from local.soak_objects import SoakObject, soak_objects
from local.tracking import KeyResult
from ops.aws import MOTO_CLIENT_CREDENTIALS

# --- the injector, against moto's server with boto3's standard retries ---------------------------------


@pytest.fixture(scope="module")
def deployment() -> Iterator[EmulatedResources]:
    with Emulator() as endpoint_url:
        emulated = create_resources(
            endpoint_url, name="fault-test", visibility_timeout_s=1, max_receive_count=3
        )
        emulated.client("s3").put_object(Bucket=emulated.bucket, Key="photo.png", Body=b"pixels")
        yield emulated


def _function_clients(deployment: EmulatedResources, max_attempts: int = 3) -> Any:
    """Clients built the way the function builds its own: standard retry mode."""
    config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts})
    options = {
        "endpoint_url": deployment.endpoint_url,
        "region_name": deployment.region,
        **MOTO_CLIENT_CREDENTIALS,
        "config": config,
    }

    class Module:
        s3_client = boto3.client("s3", **options)
        dynamodb_client = boto3.client("dynamodb", **options)

    return Module


class _AlwaysThisFault:
    """A stand-in for the injector's random source: every call faults, always with one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def random(self) -> float:
        return 0.0

    def choice(self, kinds: list[str]) -> str:
        assert self.kind in kinds
        return self.kind


@pytest.mark.parametrize(("service", "kind"), [(s, k) for s, kinds in FAULTS.items() for k in kinds])
def test_every_fault_kind_is_one_boto3_retries_then_surfaces(
    deployment: EmulatedResources, service: str, kind: str
) -> None:
    module = _function_clients(deployment)
    injector = RandomFaults(rate=1.0, rng=_AlwaysThisFault(kind), crash_at_write=10**9)  # type: ignore[arg-type]
    injector.install(module)
    key = f"k-{kind}"
    if service == "s3":
        operation = lambda: module.s3_client.get_object(Bucket=deployment.bucket, Key="photo.png")  # noqa: E731
    else:
        item = {"key": {"S": key}, "status": {"S": "captioned"}, "caption": {"S": "a caption"}}
        operation = lambda: module.dynamodb_client.put_item(TableName=deployment.table, Item=item)  # noqa: E731
    with pytest.raises((ClientError, BotoCoreError)):
        operation()
    assert injector.injected == {f"{service} {kind}": 3}, (
        "boto3's standard mode must retry the fault as transient"
    )
    if kind == WRITE_LANDED:
        stored = deployment.client("dynamodb").get_item(TableName=deployment.table, Key={"key": {"S": key}})
        assert stored["Item"]["caption"]["S"] == "a caption"
        assert injector.written[key] == {
            (("caption", '{"S": "a caption"}'), ("status", '{"S": "captioned"}'))
        }
    else:
        assert key not in injector.written


def test_only_writes_the_table_accepted_count_as_written(deployment: EmulatedResources) -> None:
    module = _function_clients(deployment)
    injector = RandomFaults(rate=0.0, rng=random.Random(1), crash_at_write=10**9)  # noqa: S311
    injector.install(module)
    first = {"key": {"S": "once"}, "status": {"S": "captioned"}, "caption": {"S": "first"}}
    second = {**first, "caption": {"S": "second"}}
    module.dynamodb_client.put_item(TableName=deployment.table, Item=first)
    with pytest.raises(ClientError):
        module.dynamodb_client.put_item(
            TableName=deployment.table,
            Item=second,
            ConditionExpression="attribute_not_exists(#k)",
            ExpressionAttributeNames={"#k": "key"},
        )
    assert injector.written["once"] == {(("caption", '{"S": "first"}'), ("status", '{"S": "captioned"}'))}


def test_the_injector_fails_about_the_given_share_and_retries_absorb_most(
    deployment: EmulatedResources,
) -> None:
    module = _function_clients(deployment)
    injector = RandomFaults(rate=0.3, rng=random.Random(1), crash_at_write=10**9)  # noqa: S311
    injector.install(module)
    failures = 0
    for _ in range(60):
        try:
            module.s3_client.get_object(Bucket=deployment.bucket, Key="photo.png")["Body"].read()
        except (ClientError, BotoCoreError):
            failures += 1
    assert 10 <= injector.faults_injected <= 50
    assert failures < injector.faults_injected  # a retry absorbed the others


def test_no_fault_at_rate_zero(deployment: EmulatedResources) -> None:
    module = _function_clients(deployment)
    injector = RandomFaults(rate=0.0, rng=random.Random(1), crash_at_write=10**9)  # noqa: S311
    injector.install(module)
    for _ in range(10):
        module.s3_client.get_object(Bucket=deployment.bucket, Key="photo.png")
    assert injector.faults_injected == 0


def test_the_chosen_write_kills_the_worker_with_an_exception_the_function_cannot_catch(
    deployment: EmulatedResources,
) -> None:
    module = _function_clients(deployment)
    injector = RandomFaults(rate=0.0, rng=random.Random(1), crash_at_write=2)  # noqa: S311
    injector.install(module)
    item = {"key": {"S": "crash"}, "status": {"S": "captioned"}}
    module.dynamodb_client.put_item(TableName=deployment.table, Item=item)
    with pytest.raises(WorkerCrash):
        try:
            module.dynamodb_client.put_item(TableName=deployment.table, Item=item)
        except Exception:  # noqa: BLE001  what a handler's catch-all would do
            pytest.fail("a catch-all `except Exception` swallowed the crash")
    module.dynamodb_client.put_item(TableName=deployment.table, Item=item)  # only once


# --- objects and accounting ------------------------------------------------------------------------------


def test_soak_objects_are_reproducible_mostly_spec_images_with_some_bad_ones() -> None:
    first = soak_objects(100, random.Random(3))  # noqa: S311
    again = soak_objects(100, random.Random(3))  # noqa: S311
    assert [(o.key, o.data) for o in first] == [(o.key, o.data) for o in again]
    assert len({o.key for o in first}) == 100
    bad = [o for o in first if o.expected_caption is None]
    assert 3 <= len(bad) <= 20
    assert any(" " in o.key and "+" in o.key and "ü" in o.key for o in first)


def _objects(*keys: str) -> list[SoakObject]:
    return [SoakObject(key, b"", f"caption of {key}") for key in keys]


def test_summary_counts_a_key_with_no_item_and_no_dead_letter_as_lost() -> None:
    injector = RandomFaults(rate=0.0, rng=random.Random(0), crash_at_write=0)  # noqa: S311
    items = {
        "a": KeyResult("a", "captioned", caption="caption of a"),
        "b": KeyResult("b", "failed", error="not an image"),
        "d": KeyResult("d", "captioned", caption="something else"),
    }
    summary = summarize(
        _objects("a", "b", "c", "d", "e"),
        items,
        {"c", "a"},
        faults=injector,
        redeliveries=0,
        workers_killed=0,
        duplicate_events_sent=0,
        seconds=1.0,
    )
    assert (summary.captioned, summary.failed, summary.dead_lettered, summary.lost) == (2, 1, 1, 1)
    assert summary.wrong_captions == 1
    assert not summary.accounted


def test_summary_flags_a_caption_that_changed_under_redelivery() -> None:
    injector = RandomFaults(rate=0.0, rng=random.Random(0), crash_at_write=0)  # noqa: S311
    injector.written["a"].update({(("caption", '{"S": "one"}'),), (("caption", '{"S": "two"}'),)})
    injector.written["b"].add((("caption", '{"S": "same"}'),))
    summary = summarize(
        _objects("a", "b"),
        {},
        {"a", "b"},
        faults=injector,
        redeliveries=0,
        workers_killed=0,
        duplicate_events_sent=0,
        seconds=1.0,
    )
    assert summary.duplicates == 1 and summary.accounted


def test_written_items_are_read_from_put_and_update_requests() -> None:
    put = {"TableName": "t", "Item": {"key": {"S": "a"}, "caption": {"S": "x"}}}
    update = {
        "Key": {"key": {"S": "b"}},
        "UpdateExpression": "SET #s = :s, caption = :c",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "captioned"}, ":c": {"S": "y"}},
    }
    assert written_items(put) == [{"key": {"S": "a"}, "caption": {"S": "x"}}]
    assert written_items(update) == [{"key": {"S": "b"}, "status": {"S": "captioned"}, "caption": {"S": "y"}}]


def test_error_responses_read_as_the_services_errors(deployment: EmulatedResources) -> None:
    module = _function_clients(deployment, max_attempts=1)
    module.s3_client.meta.events.register_first(
        "before-send.s3.GetObject",
        lambda request, **kwargs: error_responder("s3", "AccessDenied", 403)(request),
    )
    with pytest.raises(ClientError) as s3_error:
        module.s3_client.get_object(Bucket=deployment.bucket, Key="photo.png")
    assert s3_error.value.response["Error"]["Code"] == "AccessDenied"
    module.dynamodb_client.meta.events.register_first(
        "before-send.dynamodb.PutItem",
        lambda request, **kwargs: error_responder("dynamodb", "ThrottlingException", 400, "slow")(request),
    )
    with pytest.raises(ClientError) as dynamodb_error:
        module.dynamodb_client.put_item(TableName=deployment.table, Item={"key": {"S": "k"}})
    assert dynamodb_error.value.response["Error"] == {"Code": "ThrottlingException", "Message": "slow"}
    with pytest.raises(ValueError, match="s3 and dynamodb"):
        error_responder("sqs", "X", 400)
