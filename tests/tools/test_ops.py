"""`python -m ops` against moto in-process: where things are, backfill, redrive and status, bad input.

The end-to-end runs against `python -m local serve` (the function really captioning) are in
tests/e2e/test_ops_local.py.
"""
# ruff: noqa: S101

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from captioning.function.events import parse_event
from ops import backfill, redrive, serve_state, status
from ops.__main__ import main
from ops.control import RateLimit
from ops.locate import LocateError, Locations, locate
from tests.conftest import AWS_TEST_REGION, make_image_bytes

BUCKET, TABLE = "images", "captions"


@pytest.fixture
def aws(mocked_aws: None) -> Iterator[dict[str, Any]]:
    """A bucket, a table, an upload queue with its dead-letter queue, in moto."""
    s3 = boto3.client("s3", region_name=AWS_TEST_REGION)
    sqs = boto3.client("sqs", region_name=AWS_TEST_REGION)
    dynamodb = boto3.client("dynamodb", region_name=AWS_TEST_REGION)
    s3.create_bucket(Bucket=BUCKET)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dead_letters = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    uploads = sqs.create_queue(QueueName="uploads")["QueueUrl"]
    yield {
        "s3": s3,
        "sqs": sqs,
        "dynamodb": dynamodb,
        "queue_url": uploads,
        "dead_letter_queue_url": dead_letters,
    }


def queue_locations(aws: dict[str, Any], **changes: Any) -> Locations:
    return Locations(
        bucket=BUCKET,
        table=TABLE,
        queue_url=aws["queue_url"],
        dead_letter_queue_url=aws["dead_letter_queue_url"],
        region=AWS_TEST_REGION,
        **changes,
    )


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        messages += batch
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return messages


def put_item(aws: dict[str, Any], key: str, etag: str, status_: str = "captioned", **extra: str) -> None:
    item = {"key": {"S": key}, "etag": {"S": etag}, "status": {"S": status_}}
    item.update({name: {"S": value} for name, value in extra.items()})
    aws["dynamodb"].put_item(TableName=TABLE, Item=item)


def etag_of(aws: dict[str, Any], key: str) -> str:
    return aws["s3"].head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')


# --- where things are -------------------------------------------------------------------------------------


def test_flags_alone_locate_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    located = locate({"bucket": "b", "table": "t", "queue_url": "q", "key_suffixes": [".png"]})
    assert (located.bucket, located.table, located.mode, located.key_suffixes) == (
        "b",
        "t",
        "queue",
        (".png",),
    )
    assert located.endpoint_url == "http://127.0.0.1:4566"  # AWS_ENDPOINT_URL honoured
    assert locate({"bucket": "b", "endpoint_url": "http://x"}).endpoint_url == "http://x"  # the flag wins
    assert locate({"bucket": "b", "function_name": "f"}).mode == "direct"


def test_local_reads_the_serve_state_file(tmp_path: Path) -> None:
    state = {
        "endpoint_url": "http://127.0.0.1:5000",
        "region": "eu-west-1",
        "bucket": "b",
        "table": "t",
        "queue_url": "http://127.0.0.1:5000/1/q",
        "dead_letter_queue_url": "http://127.0.0.1:5000/1/dlq",
        "trigger": "queue",
        "key_prefix": "in/",
        "key_suffixes": [".png"],
        "pid": os.getpid(),
    }
    path = serve_state.write(state, tmp_path / "serve.json")
    located = locate({"table": "other"}, local=True, state_path=path)
    assert located.local and located.mode == "queue"
    assert (located.bucket, located.table, located.key_prefix, located.key_suffixes) == (
        "b",
        "other",
        "in/",
        (".png",),
    )
    assert (located.endpoint_url, located.region) == ("http://127.0.0.1:5000", "eu-west-1")


def test_local_without_a_running_serve_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(LocateError, match="python -m local serve"):
        locate({}, local=True, state_path=tmp_path / "none.json")


def test_without_flags_nor_pulumi_the_error_says_what_to_pass(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi here
    err = io.StringIO()
    assert main(["status"], out=io.StringIO(), err=err) == 2
    assert "Pulumi CLI is not installed" in err.getvalue() and "--local" in err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_pulumi_stack_outputs_are_read_when_the_cli_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outputs = {
        "bucketName": "b",
        "tableName": "t",
        "functionName": "f",
        "functionTargetArn": "arn:aws:lambda:us-east-1:1:function:f:live",
        "deadLetterQueueUrl": "https://sqs/dlq",
        "alarmTopicArn": "arn:aws:sns:us-east-1:1:alarms",
        "keyPrefix": "in/",
        "keySuffixes": [".jpg"],
    }
    fake = tmp_path / "pulumi"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\ncat <<'EOF'\n{json.dumps(outputs)}\nEOF\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    located = locate({}, stack="prod")
    assert (tmp_path / "args").read_text().split() == ["stack", "output", "--json", "--stack", "prod"]
    assert located.mode == "direct"
    assert located.function_name == outputs["functionTargetArn"]  # the alias S3 invokes
    assert (located.bucket, located.key_prefix, located.key_suffixes) == ("b", "in/", (".jpg",))
    assert located.alarm_topic_arn == outputs["alarmTopicArn"]


# --- backfill ---------------------------------------------------------------------------------------------


def test_backfill_sends_what_s3_would_have_notified(aws: dict[str, Any]) -> None:
    keys = ["a.png", "photos/b c.jpg", "notes.txt", "upper.PNG", "odd.Jpg", "café ü.png"]
    for key in keys:
        aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=make_image_bytes())
    summary = backfill.run_backfill(queue_locations(aws), rate=1000)
    assert (summary.listed, summary.not_delivered, summary.to_send, summary.sent) == (6, 2, 4, 4)

    messages = drain(aws["sqs"], aws["queue_url"])
    objects = [ref for m in messages for ref in parse_event(json.loads(m["Body"])).unique_objects()]
    assert sorted(ref.key for ref in objects) == sorted(
        ["a.png", "photos/b c.jpg", "upper.PNG", "café ü.png"]
    )
    for ref in objects:
        head = aws["s3"].head_object(Bucket=BUCKET, Key=ref.key)
        assert (ref.bucket, ref.etag, ref.size) == (BUCKET, head["ETag"].strip('"'), head["ContentLength"])
    record = json.loads(messages[0]["Body"])["Records"][0]
    assert record["eventSource"] == "aws:s3" and record["eventName"].startswith("ObjectCreated:")
    assert record["awsRegion"] == AWS_TEST_REGION


def test_backfill_skips_items_of_the_same_version_unless_all(aws: dict[str, Any]) -> None:
    for key in ("done.png", "failed.png", "changed.png", "new.png"):
        aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    put_item(aws, "done.png", etag_of(aws, "done.png"))
    put_item(aws, "failed.png", etag_of(aws, "failed.png"), "failed")
    put_item(aws, "changed.png", "an-older-version")

    summary = backfill.run_backfill(queue_locations(aws), rate=1000)
    assert (summary.already_done, summary.sent) == (2, 2)
    sent = {
        parse_event(json.loads(m["Body"])).unique_objects()[0].key
        for m in drain(aws["sqs"], aws["queue_url"])
    }
    assert sent == {"changed.png", "new.png"}

    assert backfill.run_backfill(queue_locations(aws), rate=1000, include_done=True).sent == 4


def test_backfill_dry_run_sends_nothing(aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket=BUCKET, Key="a.png", Body=b"x")
    summary = backfill.run_backfill(queue_locations(aws), dry_run=True)
    assert (summary.to_send, summary.sent) == (1, 0)
    assert drain(aws["sqs"], aws["queue_url"]) == []


def test_backfill_lists_every_page_and_honours_prefixes(aws: dict[str, Any]) -> None:
    for index in range(1005):  # more than one ListObjectsV2 page
        aws["s3"].put_object(Bucket=BUCKET, Key=f"in/{index:04}.png", Body=b"x")
    aws["s3"].put_object(Bucket=BUCKET, Key="out/x.png", Body=b"x")
    located = queue_locations(aws, key_prefix="in/")
    assert backfill.run_backfill(located, dry_run=True).to_send == 1005
    assert backfill.run_backfill(located, prefix="in/000", dry_run=True).to_send == 10
    with pytest.raises(LocateError, match="outside the pipeline's key prefix 'in/'"):
        backfill.run_backfill(located, prefix="out/", dry_run=True)


def test_backfill_stops_between_batches_and_a_rerun_sends_the_rest(aws: dict[str, Any]) -> None:
    for index in range(25):
        aws["s3"].put_object(Bucket=BUCKET, Key=f"{index:02}.png", Body=b"x")

    class StopAfterOneBatch:
        requested = False

    stop = StopAfterOneBatch()

    class Recorder(backfill.Progress):
        def advance(self, count: int) -> None:
            stop.requested = True  # Ctrl-C while the first batch was being sent

    first = backfill.run_backfill(queue_locations(aws), rate=1000, progress=Recorder(), stop=stop)  # type: ignore[arg-type]
    assert (first.interrupted, first.sent) == (True, 10)  # a whole batch, never part of one
    sent_first = drain(aws["sqs"], aws["queue_url"])
    for message in sent_first:  # the pipeline captioned them meanwhile
        ref = parse_event(json.loads(message["Body"])).unique_objects()[0]
        put_item(aws, ref.key, ref.etag)
    second = backfill.run_backfill(queue_locations(aws), rate=1000)
    assert (second.already_done, second.sent, second.interrupted) == (10, 15, False)
    keys = [
        parse_event(json.loads(m["Body"])).unique_objects()[0].key
        for m in sent_first + drain(aws["sqs"], aws["queue_url"])
    ]
    assert sorted(keys) == [f"{index:02}.png" for index in range(25)]  # each exactly once


def test_backfill_stopped_while_listing_sends_nothing(aws: dict[str, Any]) -> None:
    for index in range(1001):
        aws["s3"].put_object(Bucket=BUCKET, Key=f"{index:04}.png", Body=b"x")

    class Stop:
        requested = False

    stop = Stop()

    class StopOnFirstPage(backfill.Progress):
        def listing(self, listed: int) -> None:
            stop.requested = True

    summary = backfill.run_backfill(queue_locations(aws), progress=StopOnFirstPage(), stop=stop)  # type: ignore[arg-type]
    assert (summary.interrupted, summary.listed, summary.sent) == (True, 1000, 0)  # one page, then stopped
    assert drain(aws["sqs"], aws["queue_url"]) == []


def test_backfill_in_direct_mode_invokes_the_function_asynchronously(aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket=BUCKET, Key="a b.png", Body=b"x")
    located = Locations(bucket=BUCKET, table=TABLE, function_name="fn:live", region=AWS_TEST_REGION)
    fake_lambda = mock.Mock()
    fake_lambda.meta.region_name = AWS_TEST_REGION
    fake_lambda.invoke.return_value = {"StatusCode": 202}
    located._clients["lambda:None"] = fake_lambda
    summary = backfill.run_backfill(located, rate=1000)
    assert (summary.mode, summary.sent) == ("direct", 1)
    (call,) = fake_lambda.invoke.call_args_list
    assert (call.kwargs["FunctionName"], call.kwargs["InvocationType"]) == ("fn:live", "Event")
    (ref,) = parse_event(json.loads(call.kwargs["Payload"])).unique_objects()
    assert (ref.key, ref.etag) == ("a b.png", etag_of(aws, "a b.png"))


def test_rate_limit_paces_units() -> None:
    now = [0.0]
    slept: list[float] = []
    with mock.patch(
        "ops.control.time.sleep", side_effect=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s))
    ):
        limit = RateLimit(10, clock=lambda: now[0])
        for _ in range(3):
            limit.wait(10)  # 10 units at 10 per second: one second apart
    assert sum(slept) == pytest.approx(2.0) and max(slept) <= 0.1 + 1e-9  # in slices, to notice a stop


# --- redrive ----------------------------------------------------------------------------------------------


def park(aws: dict[str, Any], bodies: list[str]) -> None:
    for body in bodies:
        aws["sqs"].send_message(QueueUrl=aws["dead_letter_queue_url"], MessageBody=body)


def test_redrive_moves_every_dead_letter_back_to_the_upload_queue(aws: dict[str, Any]) -> None:
    bodies = [json.dumps({"Records": [{"n": index}]}) for index in range(23)]
    park(aws, bodies)
    located = queue_locations(aws)
    assert redrive.run_redrive(located, dry_run=True).waiting == 23
    # Not local, so the move task is tried first; where the endpoint has none, one by one, and it says so.
    unsupported = ClientError(
        {"Error": {"Code": "UnsupportedOperation", "Message": "no"}}, "StartMessageMoveTask"
    )
    with mock.patch.object(
        located.client("sqs", max_attempts=1), "start_message_move_task", side_effect=unsupported
    ):
        summary = redrive.run_redrive(located)
    assert (summary.waiting, summary.moved, summary.left) == (23, 23, {})
    assert summary.method == redrive.RECEIVE_SEND_DELETE and "message-move task unavailable" in (
        summary.note or ""
    )
    assert sorted(m["Body"] for m in drain(aws["sqs"], aws["queue_url"])) == sorted(bodies)
    assert drain(aws["sqs"], aws["dead_letter_queue_url"]) == []


def test_redrive_uses_the_sqs_move_task_where_there_is_one(aws: dict[str, Any]) -> None:
    park(aws, ["a", "b"])
    located = queue_locations(aws)
    sqs = located.client("sqs", max_attempts=1)
    arns = {
        url: aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for url in (aws["queue_url"], aws["dead_letter_queue_url"])
    }
    done = {"TaskHandle": "h", "Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 2}
    with (
        mock.patch.object(sqs, "start_message_move_task", return_value={"TaskHandle": "h"}) as start,
        mock.patch.object(sqs, "list_message_move_tasks", return_value={"Results": [done]}),
    ):
        summary = redrive.run_redrive(located)
    start.assert_called_once_with(
        SourceArn=arns[aws["dead_letter_queue_url"]], DestinationArn=arns[aws["queue_url"]]
    )
    assert (summary.method, summary.moved, summary.note) == (redrive.MOVE_TASK, 2, None)


def test_redrive_deletes_only_what_was_sent(aws: dict[str, Any]) -> None:
    park(aws, ["one", "two", "three"])
    sqs = aws["sqs"]
    real_send = sqs.send_message_batch

    def send_but_fail_two(**kwargs: Any) -> dict[str, Any]:
        keep = [e for e in kwargs["Entries"] if e["MessageBody"] != "two"]
        response = real_send(QueueUrl=kwargs["QueueUrl"], Entries=keep)
        failed = [
            {"Id": e["Id"], "Code": "InternalError", "Message": "injected", "SenderFault": False}
            for e in kwargs["Entries"]
            if e["MessageBody"] == "two"
        ]
        return {**response, "Failed": failed}

    located = queue_locations(aws, local=True)
    client = located.client("sqs")
    with mock.patch.object(client, "send_message_batch", side_effect=send_but_fail_two):
        summary = redrive.run_redrive(located)
    assert summary.moved == 2 and list(summary.left.values()) == ["not sent: InternalError: injected"]
    assert sorted(m["Body"] for m in drain(sqs, aws["queue_url"])) == ["one", "three"]
    assert [m["Body"] for m in drain(sqs, aws["dead_letter_queue_url"])] == ["two"]  # kept, and visible


def test_redrive_stopped_and_run_again_moves_each_message_once(aws: dict[str, Any]) -> None:
    bodies = [f"message {index}" for index in range(25)]
    park(aws, bodies)

    class Stop:
        requested = False

    stop = Stop()

    class StopAfterOneBatch(backfill.Progress):
        def advance(self, count: int) -> None:
            stop.requested = True

    located = queue_locations(aws, local=True)
    first = redrive.run_redrive(located, progress=StopAfterOneBatch(), stop=stop)  # type: ignore[arg-type]
    assert first.interrupted and 0 < first.moved < 25
    second = redrive.run_redrive(located)
    assert (second.waiting, second.moved, second.interrupted) == (25 - first.moved, 25 - first.moved, False)
    assert sorted(m["Body"] for m in drain(aws["sqs"], aws["queue_url"])) == sorted(bodies)  # each once
    assert drain(aws["sqs"], aws["dead_letter_queue_url"]) == []


def on_failure_record(event: dict[str, Any]) -> str:
    """A Lambda on-failure destination record (asynchronous invocation), as AWS documents it."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-11-28T01:00:00.000Z",
            "requestContext": {
                "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:fn:live",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "1", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": "1 of 1 objects must be retried"},
        }
    )


def test_redrive_in_direct_mode_invokes_each_original_event_again(aws: dict[str, Any]) -> None:
    events = [{"Records": [{"eventSource": "aws:s3", "n": index}]} for index in range(3)]
    park(aws, [on_failure_record(event) for event in events] + ["not a record"])
    located = Locations(
        table=TABLE,
        dead_letter_queue_url=aws["dead_letter_queue_url"],
        function_name="fn:live",
        region=AWS_TEST_REGION,
    )
    fake_lambda = mock.Mock()
    fake_lambda.invoke.return_value = {"StatusCode": 202}
    located._clients["lambda:None"] = fake_lambda
    summary = redrive.run_redrive(located)
    assert (summary.method, summary.moved) == (redrive.REINVOKE, 3)
    assert list(summary.left.values()) == [
        "not a Lambda on-failure record (no requestPayload): left in place"
    ]
    invoked = [json.loads(call.kwargs["Payload"]) for call in fake_lambda.invoke.call_args_list]
    assert sorted(invoked, key=lambda e: e["Records"][0]["n"]) == events
    assert {call.kwargs["InvocationType"] for call in fake_lambda.invoke.call_args_list} == {"Event"}
    assert [m["Body"] for m in drain(aws["sqs"], aws["dead_letter_queue_url"])] == ["not a record"]


# --- status -----------------------------------------------------------------------------------------------


def test_status_counts_items_lists_the_latest_failures_and_queue_depths(aws: dict[str, Any]) -> None:
    for index in range(4):
        put_item(aws, f"ok{index}.png", "e")
    for index in range(3):
        put_item(
            aws,
            f"bad{index}.png",
            "e",
            "failed",
            error=f"reason {index}",
            created_at=f"2026-11-2{index}T00:00:00",
        )
    park(aws, ["x", "y"])
    aws["sqs"].send_message(QueueUrl=aws["queue_url"], MessageBody="z")
    report = status.run_status(queue_locations(aws), failures=2)
    assert report.items == {"captioned": 4, "failed": 3} and report.total == 7
    assert [(f["key"], f["error"]) for f in report.failures] == [
        ("bad2.png", "reason 2"),
        ("bad1.png", "reason 1"),
    ]
    assert report.queues == {
        "upload queue": {"visible": 1, "in_flight": 0},
        "dead-letter queue": {"visible": 2, "in_flight": 0},
    }
    assert report.alarms is None and "--alarm-topic-arn" in (report.alarms_note or "")


def test_status_names_the_alarms_firing_on_this_stacks_topic(aws: dict[str, Any]) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=AWS_TEST_REGION)
    topic, other = "arn:aws:sns:us-east-1:123456789012:alarms", "arn:aws:sns:us-east-1:123456789012:other"
    for name, action in (("dlq", topic), ("errors", topic), ("someone-elses", other)):
        cloudwatch.put_metric_alarm(
            AlarmName=name, MetricName="M", Namespace="N", Statistic="Sum", Period=60, EvaluationPeriods=1,
            Threshold=1, ComparisonOperator="GreaterThanThreshold", AlarmActions=[action],
        )  # fmt: skip
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=f"{name} is breaching")
    cloudwatch.set_alarm_state(AlarmName="errors", StateValue="OK", StateReason="fine")
    report = status.run_status(queue_locations(aws, alarm_topic_arn=topic))
    assert [(a["name"], a["reason"]) for a in report.alarms or []] == [("dlq", "dlq is breaching")]


# --- the command line -------------------------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_every_command_prints_json(aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket=BUCKET, Key="a.png", Body=b"x")
    where = ["--bucket", BUCKET, "--table", TABLE, "--queue-url", aws["queue_url"]]
    where += ["--dead-letter-queue-url", aws["dead_letter_queue_url"], "--region", AWS_TEST_REGION]
    code, out, _ = run_cli("backfill", "--dry-run", "--json", *where)
    assert code == 0 and json.loads(out)["to_send"] == 1 and json.loads(out)["locations"]["mode"] == "queue"
    code, out, _ = run_cli("--json", *where, "redrive", "--dry-run")  # options before the command work too
    assert code == 0 and json.loads(out)["waiting"] == 0
    code, out, _ = run_cli("status", "--json", *where)
    assert code == 0 and json.loads(out)["items"] == {"total": 0}


def test_the_json_summaries_keep_their_keys_in_order() -> None:
    filled = backfill.BackfillSummary(mode="queue", prefix="in/", dry_run=False, listed=3, sent=2)
    assert filled.as_json() == {
        "command": "backfill",
        "mode": "queue",
        "prefix": "in/",
        "dry_run": False,
        "listed": 3,
        "not_delivered": 0,
        "already_done": 0,
        "to_send": 0,
        "sent": 2,
        "send_failures": {},
        "interrupted": False,
    }
    assert list(filled.as_json()) == [
        "command",
        "mode",
        "prefix",
        "dry_run",
        "listed",
        "not_delivered",
        "already_done",
        "to_send",
        "sent",
        "send_failures",
        "interrupted",
    ]
    moved = redrive.RedriveSummary(mode="queue", dry_run=True, waiting=4, left={"m-1": "too big"})
    assert list(moved.as_json().items()) == [
        ("command", "redrive"),
        ("mode", "queue"),
        ("dry_run", True),
        ("waiting", 4),
        ("method", ""),
        ("moved", 0),
        ("left", {"m-1": "too big"}),
        ("note", None),
        ("interrupted", False),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "--failures", "0", "--bucket", "b"], "--failures: must be at least 1, got 0"),
        (["backfill", "--rate", "fast", "--bucket", "b"], "--rate: expected a number, got 'fast'"),
        (["launch"], "invalid choice: 'launch'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_are_named(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_command_missing_a_location_names_the_flag(aws: dict[str, Any]) -> None:
    code, _, err = run_cli("redrive", "--bucket", BUCKET, "--region", AWS_TEST_REGION)
    assert code == 2 and "needs --dead-letter-queue-url" in err
    code, _, err = run_cli("backfill", "--bucket", BUCKET, "--table", TABLE, "--region", AWS_TEST_REGION)
    assert code == 2 and "needs --function-name" in err  # no queue: direct mode, which invokes the function


def test_aws_errors_are_one_clear_line(aws: dict[str, Any]) -> None:
    code, _, err = run_cli("status", "--table", "no-such-table", "--region", AWS_TEST_REGION)
    assert code == 1
    assert err.startswith("error: AWS refused Scan: ResourceNotFoundException") and "Traceback" not in err
