"""`python -m ops --local` end to end: a real `python -m local serve` (the demo model captioning) in a
subprocess, the commands run as a user runs them.

- objects put while the bucket's notification is off are captioned by `backfill`;
- poisoned messages end in the dead-letter queue and, once the cause is fixed, come back with `redrive`;
- a `backfill` stopped with Ctrl-C and run again loses and duplicates nothing.
"""
# ruff: noqa: S101, S603

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from captioning.aws_events import s3_notification_event, s3_notification_record
from ops.aws import MOTO_CLIENT_CREDENTIALS

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "images"
EXPECTED_CAPTIONS = json.loads((ROOT / "samples" / "captions.json").read_text(encoding="utf-8"))
START_TIMEOUT_S = 180
SETTLE_TIMEOUT_S = 120


class Serve:
    """A running `python -m local serve` and clients for its emulator."""

    def __init__(self, process: subprocess.Popen, state: dict[str, Any], state_path: Path) -> None:
        self.process, self.state, self.state_path = process, state, state_path
        options = {
            "endpoint_url": state["endpoint_url"],
            "region_name": state["region"],
            **MOTO_CLIENT_CREDENTIALS,
        }
        self.s3 = boto3.client("s3", **options)
        self.sqs = boto3.client("sqs", **options)
        self.dynamodb = boto3.client("dynamodb", **options)

    def ops(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "ops", *argv, "--local"],
            cwd=ROOT,
            env={**os.environ, "CAPTIONING_LOCAL_STATE": str(self.state_path)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def ops_json(self, *argv: str) -> dict[str, Any]:
        return json.loads(self.ops(*argv, "--json").stdout)

    def items(self, prefix: str) -> dict[str, dict[str, str]]:
        found = {}
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.state["table"]):
            for item in page["Items"]:
                if item["key"]["S"].startswith(prefix):
                    found[item["key"]["S"]] = {name: value.get("S", "") for name, value in item.items()}
        return found

    def depth(self, queue_url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = SETTLE_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    state_path = tmp_path_factory.mktemp("serve") / "serve.json"
    log = state_path.with_name("serve.log")
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "local", "serve"],
            cwd=ROOT,
            env={**os.environ, "CAPTIONING_LOCAL_STATE": str(state_path)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not state_path.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"`python -m local serve` did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
            running = Serve(process, json.loads(state_path.read_text()), state_path)
            # Objects put from now on notify nobody: only a backfill can get them captioned.
            running.s3.put_bucket_notification_configuration(
                Bucket=running.state["bucket"], NotificationConfiguration={}
            )
            yield running
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_backfill_captions_objects_put_while_the_notification_was_off(serve: Serve) -> None:
    bucket = serve.state["bucket"]
    for path in SAMPLES.iterdir():
        serve.s3.upload_file(str(path), bucket, f"before/{path.name}")
    serve.s3.put_object(Bucket=bucket, Key="before/readme.txt", Body=b"not delivered by the key filters")
    time.sleep(2)
    assert serve.items("before/") == {}  # nothing was notified

    dry = serve.ops_json("backfill", "--dry-run")
    assert (dry["listed"], dry["not_delivered"], dry["to_send"], dry["sent"]) == (9, 1, 8, 0)
    first = serve.ops_json("backfill")
    assert (first["sent"], first["send_failures"], first["mode"]) == (8, {}, "queue")

    items = wait_for(lambda: (found := serve.items("before/")) and len(found) == 8 and found, "8 captions")
    assert {key.removeprefix("before/"): item["caption"] for key, item in items.items()} == EXPECTED_CAPTIONS
    again = serve.ops_json("backfill")
    assert (again["already_done"], again["sent"]) == (8, 0)

    report = serve.ops_json("status")
    assert report["items"]["captioned"] >= 8
    assert report["alarms_note"] == "the local emulator has no alarms"
    text = serve.ops("status").stdout
    assert "captions table" in text and "dead-letter queue" in text


def test_poisoned_messages_come_back_from_the_dead_letter_queue_once_fixed(serve: Serve) -> None:
    queue_url, dlq_url = serve.state["queue_url"], serve.state["dead_letter_queue_url"]
    # Failed deliveries come back after 1 s instead of the function timeout, so they are parked quickly.
    serve.sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "1"})
    keys = [f"poison/{name}" for name in sorted(EXPECTED_CAPTIONS)[:3]]
    for key in keys:  # notifications for a bucket that does not exist yet: every delivery fails
        record = s3_notification_record("arrives-later", key, size=1, etag="0")
        serve.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(s3_notification_event([record])))
    wait_for(lambda: serve.depth(dlq_url) == 3, "3 dead-lettered messages")
    status = serve.ops_json("status")
    assert sum(status["queues"]["dead-letter queue"].values()) == 3
    assert serve.ops_json("redrive", "--dry-run")["waiting"] == 3

    serve.s3.create_bucket(Bucket="arrives-later")  # the fix
    for key in keys:
        serve.s3.upload_file(str(SAMPLES / key.removeprefix("poison/")), "arrives-later", key)
    moved = serve.ops_json("redrive")
    assert (moved["moved"], moved["left"], moved["method"]) == (3, {}, "receive/send/delete")

    items = wait_for(lambda: (found := serve.items("poison/")) and len(found) == 3 and found, "3 captions")
    assert {key: item["caption"] for key, item in items.items()} == {
        key: EXPECTED_CAPTIONS[key.removeprefix("poison/")] for key in keys
    }
    assert serve.depth(dlq_url) == 0
    wait_for(lambda: serve.depth(queue_url) == 0, "an empty upload queue")
    serve.sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "30"})


def test_an_interrupted_backfill_run_again_loses_and_duplicates_nothing(serve: Serve) -> None:
    bucket, queue_url = serve.state["bucket"], serve.state["queue_url"]
    sample = SAMPLES / "red circle.png"
    keys = [f"bulk/{index:02}.png" for index in range(30)]
    for key in keys:
        serve.s3.upload_file(str(sample), bucket, key)

    # 2 objects a second: a batch of 10 goes at once, the next only 5 s later; Ctrl-C comes in between.
    command = [sys.executable, "-m", "ops", "backfill", "--prefix", "bulk/", "--rate", "2", "--local"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "CAPTIONING_LOCAL_STATE": str(serve.state_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: serve.depth(queue_url) or serve.items("bulk/"), "the first batch", timeout_s=60)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "stopped after 10 of 30" in stdout

    wait_for(lambda: len(serve.items("bulk/")) == 10, "the first 10 captions")
    rerun = serve.ops_json("backfill", "--prefix", "bulk/")
    assert (rerun["already_done"], rerun["sent"], rerun["interrupted"]) == (10, 20, False)
    items = wait_for(lambda: (found := serve.items("bulk/")) and len(found) == 30 and found, "30 captions")
    assert sorted(items) == keys
    assert {item["status"] for item in items.values()} == {"captioned"}
    wait_for(lambda: serve.depth(queue_url) == 0, "an empty upload queue")
    assert serve.depth(serve.state["dead_letter_queue_url"]) == 0
