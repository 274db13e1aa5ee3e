"""The fault-injection soak: nothing lost, every object accounted for; and the injector's parts."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.emulator import Deployment, Emulator
from local.results import Outcome
from local.soak import (
    FAULTS,
    SUMMARY_KEYS,
    WRITE_LANDED,
    FaultInjector,
    SoakObject,
    _written_items,
    soak_objects,
    summarize,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


# --- the quick soak, end to end with the demo model -----------------------------------------------------


@pytest.fixture(scope="module")
def quick_soak() -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    process = subprocess.run(  # noqa: S603  our own CLI, fixed arguments
        [
            sys.executable,
            "-m",
            "local",
            "soak",
            "--images",
            "40",
            "--fault-rate",
            "0.3",
            "--seed",
            "7",
            "--json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = process.stdout.strip().splitlines()
    assert lines, process.stderr[-4000:]
    return process, json.loads(lines[-1])


def test_quick_soak_loses_nothing_and_accounts_for_every_object(quick_soak: Any) -> None:
    process, summary = quick_soak
    assert set(SUMMARY_KEYS) <= set(summary)
    assert summary["uploaded"] == 40
    assert summary["lost"] == 0
    assert summary["captioned"] + summary["failed"] + summary["dead_lettered"] == summary["uploaded"]
    assert process.returncode == 0


def test_quick_soak_really_injected_faults_a_crash_and_duplicates(quick_soak: Any) -> None:
    _, summary = quick_soak
    assert summary["faults_injected"] > 0
    assert summary["workers_killed"] == 1
    assert summary["duplicate_events_sent"] > 0
    assert summary["redeliveries"] > 0  # at least the killed worker's batch came back
    assert summary["bad_objects"] > 0 and summary["failed"] + summary["dead_lettered"] >= 1


def test_quick_soak_keeps_captions_stable_and_right(quick_soak: Any) -> None:
    _, summary = quick_soak
    assert summary["duplicates"] == 0
    assert summary["wrong_captions"] <= 1  # the demo model scores >= 98 % on spec draws


# --- the injector, against moto's server with boto3's standard retries ---------------------------------


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    with Emulator(name="fault-test", visibility_timeout_s=1) as emulated:
        emulated.client("s3").put_object(Bucket=emulated.bucket, Key="photo.png", Body=b"pixels")
        yield emulated


def _function_clients(deployment: Deployment, max_attempts: int = 3) -> Any:
    """Clients built the way the function builds its own: standard retry mode."""
    config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts})
    options = {
        "endpoint_url": deployment.endpoint_url,
        "region_name": deployment.region,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",  # noqa: S106  moto's dummy credential
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
    deployment: Deployment, service: str, kind: str
) -> None:
    module = _function_clients(deployment)
    injector = FaultInjector(rate=1.0, rng=_AlwaysThisFault(kind), crash_at_write=10**9)  # type: ignore[arg-type]
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


def test_only_writes_the_table_accepted_count_as_written(deployment: Deployment) -> None:
    module = _function_clients(deployment)
    injector = FaultInjector(rate=0.0, rng=random.Random(1), crash_at_write=10**9)  # noqa: S311
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


def test_the_injector_fails_about_the_given_share_and_retries_absorb_most(deployment: Deployment) -> None:
    module = _function_clients(deployment)
    injector = FaultInjector(rate=0.3, rng=random.Random(1), crash_at_write=10**9)  # noqa: S311
    injector.install(module)
    failures = 0
    for _ in range(60):
        try:
            module.s3_client.get_object(Bucket=deployment.bucket, Key="photo.png")["Body"].read()
        except (ClientError, BotoCoreError):
            failures += 1
    assert 10 <= injector.faults_injected <= 50
    assert failures < injector.faults_injected  # a retry absorbed the others


def test_no_fault_at_rate_zero(deployment: Deployment) -> None:
    module = _function_clients(deployment)
    injector = FaultInjector(rate=0.0, rng=random.Random(1), crash_at_write=10**9)  # noqa: S311
    injector.install(module)
    for _ in range(10):
        module.s3_client.get_object(Bucket=deployment.bucket, Key="photo.png")
    assert injector.faults_injected == 0


def test_the_chosen_write_kills_the_worker_with_an_exception_the_function_cannot_catch(
    deployment: Deployment,
) -> None:
    from local.workers import WorkerCrash

    module = _function_clients(deployment)
    injector = FaultInjector(rate=0.0, rng=random.Random(1), crash_at_write=2)  # noqa: S311
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
    injector = FaultInjector(rate=0.0, rng=random.Random(0), crash_at_write=0)  # noqa: S311
    items = {
        "a": Outcome("a", "captioned", caption="caption of a"),
        "b": Outcome("b", "failed", error="not an image"),
        "d": Outcome("d", "captioned", caption="something else"),
    }
    summary = summarize(
        _objects("a", "b", "c", "d", "e"),
        items,
        {"c", "a"},
        injector=injector,
        redeliveries=0,
        workers_killed=0,
        duplicate_events_sent=0,
        seconds=1.0,
    )
    assert (summary.captioned, summary.failed, summary.dead_lettered, summary.lost) == (2, 1, 1, 1)
    assert summary.wrong_captions == 1
    assert not summary.accounted


def test_summary_flags_a_caption_that_changed_under_redelivery() -> None:
    injector = FaultInjector(rate=0.0, rng=random.Random(0), crash_at_write=0)  # noqa: S311
    injector.written["a"].update({(("caption", '{"S": "one"}'),), (("caption", '{"S": "two"}'),)})
    injector.written["b"].add((("caption", '{"S": "same"}'),))
    summary = summarize(
        _objects("a", "b"),
        {},
        {"a", "b"},
        injector=injector,
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
    assert _written_items(put) == [{"key": {"S": "a"}, "caption": {"S": "x"}}]
    assert _written_items(update) == [
        {"key": {"S": "b"}, "status": {"S": "captioned"}, "caption": {"S": "y"}}
    ]
