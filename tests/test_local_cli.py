"""`python -m local caption|serve`: the offline pipeline end to end with the demo model, and its parts.

The pipeline runs in a child process (as a user runs it): the function reads its environment and
loads the model at import, which must not leak into this test process.
"""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import json
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from handler.events import s3_notification_event, s3_notification_record
from local.emulator import Emulator
from local.function import LambdaContext, ModelDirectoryError, check_model_directory
from local.results import Outcome, ResultCollector, keys_in_notification, results_table
from local.uploader import UploadError, collect_uploads
from local.workers import EventSourceMapping, failed_message_ids, lambda_sqs_record
from models.shapes import demo_images, draw, encode, random_spec

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO_ROOT / "samples" / "images"
SAMPLE_CAPTIONS = REPO_ROOT / "samples" / "captions.json"
HELD_OUT_SEED = 20_240_611  # not a seed the training script draws from
HELD_OUT_COUNT = 50


def run_local(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  our own CLI, fixed arguments
        [sys.executable, "-m", "local", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- argument errors: one line, non-zero, before any heavy import ----------------------------------


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["caption", "no/such/photo.jpg"], "no such file or directory: no/such/photo.jpg"),
        (["caption", "{empty}"], "no files found in"),
        (["caption", "{readme}", "--model", "{empty}"], "no model in"),
        (["caption", "{readme}", "--model", "no/such/model"], "model directory not found: no/such/model"),
        (["serve", "--model", "{empty}"], "no model in"),
        (["soak", "--fault-rate", "1.5"], "must be between 0 and 1"),
        (["caption", "{readme}", "--workers", "0"], "must be at least 1"),
    ],
)
def test_bad_arguments_fail_fast_with_one_line(arguments: list[str], reason: str, tmp_path: Path) -> None:
    readme = tmp_path / "photo.jpg"
    readme.write_bytes(b"x")
    empty = tmp_path / "empty"
    empty.mkdir()
    filled = [argument.format(empty=empty, readme=readme) for argument in arguments]
    started = time.monotonic()
    result = run_local(*filled, timeout=60)
    assert result.returncode != 0
    assert result.stdout == ""
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1, result.stderr
    assert reason in error_lines[0]
    assert time.monotonic() - started < 20, "argument errors must not wait for torch or the model"


# --- the main job: caption --json with the demo model -----------------------------------------------


SPECIAL_NAMES = ["red flower.png", "a+b=c.png", "100% café ☕.png", "sub dir/naïve + plus.png"]


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `caption --json` run over the samples, a held-out spec draw, odd keys and a non-image."""
    folder = tmp_path_factory.mktemp("uploads")
    expected: dict[str, str] = {}
    for index, image in enumerate(demo_images(HELD_OUT_SEED, HELD_OUT_COUNT)):
        key = f"held-out/{index:03d}{image.extension}"
        (folder / key).parent.mkdir(exist_ok=True)
        (folder / key).write_bytes(image.data)
        expected[key] = image.caption
    rng = random.Random(HELD_OUT_SEED + 1)  # noqa: S311  test data
    for name in SPECIAL_NAMES:
        spec = random_spec(rng)
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(encode(draw(spec), "PNG"))
        expected[name] = spec.caption
    (folder / "notes.jpg").write_text("shopping list: eggs, milk\n")
    result = run_local("caption", str(SAMPLES_DIR), str(folder), "--json", "--verbose")
    return {"result": result, "expected": expected, "folder": folder}


def _by_key(caption_run: dict[str, Any]) -> dict[str, dict[str, str]]:
    result = caption_run["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout)  # stdout holds the JSON array and nothing else
    return {row["key"]: row for row in rows}


def test_every_upload_appears_exactly_once_with_a_status(caption_run: dict[str, Any]) -> None:
    rows = json.loads(caption_run["result"].stdout)
    uploaded = sorted(path.name for path in SAMPLES_DIR.iterdir() if not path.name.startswith(".")) + sorted(
        path.relative_to(caption_run["folder"]).as_posix()
        for path in caption_run["folder"].rglob("*")
        if path.is_file()
    )
    assert sorted(row["key"] for row in rows) == sorted(uploaded)
    for row in rows:
        assert row["status"] in ("captioned", "failed")
        assert set(row) == {"key", "status", "caption" if row["status"] == "captioned" else "error"}


def test_samples_get_the_captions_listed_in_captions_json(caption_run: dict[str, Any]) -> None:
    rows = _by_key(caption_run)
    listed = json.loads(SAMPLE_CAPTIONS.read_text())
    assert listed, "samples/captions.json lists no samples"
    assert {name: rows[name].get("caption") for name in listed} == listed


def test_held_out_spec_draws_score_at_least_98_percent(caption_run: dict[str, Any]) -> None:
    rows = _by_key(caption_run)
    held_out = {
        key: caption for key, caption in caption_run["expected"].items() if key.startswith("held-out/")
    }
    correct = sum(1 for key, caption in held_out.items() if rows[key].get("caption") == caption)
    assert correct / len(held_out) >= 0.98, f"{correct}/{len(held_out)} exact captions"


def test_keys_with_spaces_plus_percent_and_unicode_round_trip(caption_run: dict[str, Any]) -> None:
    rows = _by_key(caption_run)
    for name in SPECIAL_NAMES:
        assert rows[name]["status"] == "captioned", rows[name]
        assert rows[name]["caption"] == caption_run["expected"][name]


def test_a_non_image_is_failed_with_a_reason(caption_run: dict[str, Any]) -> None:
    row = _by_key(caption_run)["notes.jpg"]
    assert row["status"] == "failed"
    assert "not an image" in row["error"]


def test_logs_stay_on_stderr(caption_run: dict[str, Any]) -> None:
    stdout = caption_run["result"].stdout
    assert stdout.lstrip().startswith("[") and stdout.rstrip().endswith("]")


# --- serve: starts, captions what arrives, stops on Ctrl-C -------------------------------------------


def _read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def _wait_for_line(lines: queue.Queue[str], needle: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if needle in line:
            return line
    raise AssertionError(f"no line containing {needle!r} within {timeout} s")


def test_serve_prints_how_to_use_it_captions_uploads_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(  # noqa: S603  our own CLI
        [sys.executable, "-m", "local", "serve"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        endpoint = _wait_for_line(lines, "endpoint", 180).split()[-1]
        bucket = _wait_for_line(lines, "bucket", 5).split()[-1]
        table = _wait_for_line(lines, "table", 5).split()[-1]
        copy_line = _wait_for_line(lines, " s3 cp ", 5)
        assert f"aws --endpoint-url {endpoint} s3 cp" in copy_line and f"s3://{bucket}/" in copy_line
        assert f"--table-name {table}" in _wait_for_line(lines, "dynamodb get-item", 5)

        image = next(demo_images(7, 1))
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",  # noqa: S106
        )
        s3.put_object(Bucket=bucket, Key="dropped in.png", Body=image.data)
        captioned = _wait_for_line(lines, "dropped in.png", 60)
        assert captioned.startswith("captioned") and image.caption in captioned

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- parts, without the model -------------------------------------------------------------------------


def test_uploads_keep_paths_relative_to_the_folder_and_name_single_files(tmp_path: Path) -> None:
    (tmp_path / "album" / "2024 trip").mkdir(parents=True)
    (tmp_path / "album" / "a.png").write_bytes(b"1")
    (tmp_path / "album" / "2024 trip" / "b+c.jpg").write_bytes(b"2")
    (tmp_path / "album" / ".DS_Store").write_bytes(b"3")
    (tmp_path / "single.gif").write_bytes(b"4")
    uploads = collect_uploads([tmp_path / "album", tmp_path / "single.gif"])
    assert [upload.key for upload in uploads] == ["a.png", "2024 trip/b+c.jpg", "single.gif"]


def test_two_files_with_one_key_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.png").write_bytes(b"1")
    (tmp_path / "a.png").write_bytes(b"2")
    with pytest.raises(UploadError, match="same key 'a.png'"):
        collect_uploads([tmp_path / "x", tmp_path / "a.png"])


def test_a_model_directory_needs_config_and_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelDirectoryError, match="weights"):
        check_model_directory(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    check_model_directory(tmp_path)


def test_sqs_record_has_the_shape_the_event_source_mapping_sends() -> None:
    from local.emulator import Deployment

    deployment = Deployment(
        "http://127.0.0.1:1", "us-east-1", "b", "t", "q", "arn:aws:sqs:us-east-1:1:q", "d", 5, 3
    )
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": '{"Records": []}',
        "MD5OfBody": "0123",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
        "MessageAttributes": {"origin": {"DataType": "String", "StringValue": "test"}},
    }
    record = lambda_sqs_record(message, deployment)
    assert record == {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": '{"Records": []}',
        "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
        "messageAttributes": {
            "origin": {
                "stringValue": "test",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
        },
        "md5OfBody": "0123",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
        "awsRegion": "us-east-1",
    }


def test_batch_item_failures_name_what_is_kept_and_a_bad_identifier_keeps_all() -> None:
    ids = {"a", "b", "c"}
    assert failed_message_ids({"batchItemFailures": []}, ids) == set()
    assert failed_message_ids(None, ids) == set()
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids) == {"b"}
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, ids) == ids
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, ids) == ids


def test_notification_keys_are_url_decoded_and_test_events_have_none() -> None:
    body = json.dumps(
        s3_notification_event([s3_notification_record("b", "red flower+ü.jpg", size=1, etag="e")])
    )
    assert "red+flower%2B%C3%BC.jpg" in body
    assert keys_in_notification(body) == ["red flower+ü.jpg"]
    assert keys_in_notification('{"Event": "s3:TestEvent"}') == []
    assert keys_in_notification("not json") == []


def test_lambda_context_counts_down() -> None:
    context = LambdaContext(timeout_s=2)
    assert 1500 < context.get_remaining_time_in_millis() <= 2000
    assert context.invoked_function_arn.endswith(":function:" + context.function_name)
    assert context.aws_request_id != LambdaContext(timeout_s=2).aws_request_id


def test_results_table_shows_caption_or_error_and_keeps_markup_literal() -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(
        results_table(
            [
                Outcome(
                    "[bold]x.png", "captioned", caption="a red circle on a white background", latency_s=1.25
                ),
                Outcome("y.jpg", "failed", error="not an image: empty"),
            ]
        )
    )
    text = console.export_text()
    assert "[bold]x.png" in text and "a red circle on a white background" in text and "1.25 s" in text
    assert "not an image: empty" in text


@pytest.fixture
def emulator() -> Iterator[Any]:
    with Emulator(name="esm-test", visibility_timeout_s=1, max_receive_count=2) as deployment:
        yield deployment


def test_event_source_mapping_deletes_successes_retries_failures_and_dead_letters(emulator: Any) -> None:
    """A stub function: 'flaky' fails its first delivery, 'doomed' every one, 'boom' raises."""
    table = emulator.client("dynamodb")
    deliveries: dict[str, int] = {}
    lock = threading.Lock()

    def stub_function(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        assert context.get_remaining_time_in_millis() > 0
        failures = []
        for record in event["Records"]:
            assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == emulator.queue_arn
            for key in keys_in_notification(record["body"]):
                with lock:
                    deliveries[key] = deliveries.get(key, 0) + 1
                    count = deliveries[key]
                if key == "boom":
                    raise RuntimeError("function error")
                if key == "doomed" or (key == "flaky" and count == 1):
                    failures.append({"itemIdentifier": record["messageId"]})
                    continue
                table.put_item(
                    TableName=emulator.table,
                    Item={
                        "key": {"S": key},
                        "status": {"S": "captioned"},
                        "caption": {"S": f"caption of {key}"},
                    },
                )
        return {"batchItemFailures": failures}

    collector = ResultCollector(emulator)
    keys = ["fine", "flaky", "doomed", "boom"]
    with EventSourceMapping(emulator, stub_function, workers=2, batch_size=1) as mapping:
        s3 = emulator.client("s3")
        for key in keys:
            collector.expect([key])
            s3.put_object(Bucket=emulator.bucket, Key=key, Body=b"x")
        assert collector.wait(stall_timeout_s=30)
    outcomes = collector.outcomes
    assert outcomes["fine"].caption == "caption of fine" and deliveries["fine"] == 1
    assert outcomes["flaky"].status == "captioned" and deliveries["flaky"] == 2
    for key in ("doomed", "boom"):
        assert outcomes[key].status == "failed" and outcomes[key].dead_lettered
        assert "dead-letter" in (outcomes[key].error or "")
        assert deliveries[key] == 2  # maxReceiveCount, then the DLQ
    assert mapping.stats.function_errors == 2 and mapping.stats.redeliveries >= 3
    sqs = emulator.client("sqs")
    left = sqs.get_queue_attributes(QueueUrl=emulator.queue_url, AttributeNames=["All"])["Attributes"]
    assert left["ApproximateNumberOfMessages"] == "0" and left["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_workers_survive_a_crash_and_a_fresh_one_takes_over(emulator: Any) -> None:
    from local.workers import WorkerCrash

    crashed = threading.Event()
    table = emulator.client("dynamodb")

    def crash_once(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        if not crashed.is_set():
            crashed.set()
            raise WorkerCrash("simulated environment death")
        for record in event["Records"]:
            for key in keys_in_notification(record["body"]):
                table.put_item(
                    TableName=emulator.table, Item={"key": {"S": key}, "status": {"S": "captioned"}}
                )
        return {"batchItemFailures": []}

    collector = ResultCollector(emulator)
    with EventSourceMapping(emulator, crash_once, workers=1, batch_size=10) as mapping:
        collector.expect(["photo.png"])
        emulator.client("s3").put_object(Bucket=emulator.bucket, Key="photo.png", Body=b"x")
        assert collector.wait(stall_timeout_s=20)
    assert mapping.stats.crashes == 1
    assert (
        collector.outcomes["photo.png"].status == "captioned"
        and not collector.outcomes["photo.png"].dead_lettered
    )


def test_a_failed_upload_is_reported_and_the_others_go_through(emulator: Any, tmp_path: Path) -> None:
    from local.uploader import upload_all

    (tmp_path / "kept.png").write_bytes(b"1")
    (tmp_path / "vanished.png").write_bytes(b"2")
    uploads = collect_uploads([tmp_path])
    (tmp_path / "vanished.png").unlink()
    done: list[str] = []
    failures = upload_all(
        emulator.client("s3"), emulator.bucket, uploads, on_uploaded=lambda u: done.append(u.key)
    )
    assert done == ["kept.png"]
    assert list(failures) == ["vanished.png"] and failures["vanished.png"].startswith("upload failed:")
    listed = emulator.client("s3").list_objects_v2(Bucket=emulator.bucket)["Contents"]
    assert [entry["Key"] for entry in listed] == ["kept.png"]


def test_a_batch_bigger_than_one_receive_is_topped_up_within_the_batching_window(emulator: Any) -> None:
    sqs = emulator.client("sqs")
    sqs.purge_queue(QueueUrl=emulator.queue_url)  # the configuration's s3:TestEvent
    for index in range(14):
        sqs.send_message(QueueUrl=emulator.queue_url, MessageBody=json.dumps({"n": index}))
    batch_sizes: list[int] = []
    everything = threading.Event()

    def record_batch(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        batch_sizes.append(len(event["Records"]))
        if sum(batch_sizes) >= 14:
            everything.set()
        return {"batchItemFailures": []}

    with EventSourceMapping(emulator, record_batch, workers=1, batch_size=14, batching_window_s=2.0):
        assert everything.wait(timeout=15)
    assert batch_sizes[0] > 10, batch_sizes
