"""The local pipeline's parts, without the model: settings and key filters, the emulator and the
component's resources in it, the event source mapping, the dead-letter queue peek, uploads, rendering,
and the command line's argument errors (which must fail before anything heavy is imported)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from captioning.aws_events import s3_notification_event, s3_notification_record
from captioning.component import limits, policies
from captioning.component.settings import PipelineSettings
from captioning.contract.key_filters import EVERY_KEY, key_filters
from local.dead_letters import DeadLetterPeek, keys_in_notification
from local.emulator import Emulator, EmulatorError, check_port_free
from local.event_source import EventSourceMapping, WorkerCrash, failed_message_ids, lambda_sqs_record
from local.lambda_runtime import LambdaContext, retry_reason
from local.rendering import dead_letter_line, results_table
from local.resources import EmulatedResources, create_resources
from local.settings import LocalSettings, SettingsError, check_model_directory, suffixes_text
from local.tracking import SKIPPED, KeyResult, ResultTracker
from local.uploader import UploadError, collect_uploads, upload_all
from ops.aws import MOTO_ACCOUNT_ID
from tests.conftest import run_local

REPO_ROOT = Path(__file__).resolve().parents[2]


def keys_of(body: str) -> list[str]:
    return keys_in_notification(body)[0]


# --- argument errors: one line, non-zero, before any heavy import ----------------------------------


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["caption", "no/such/photo.jpg"], "no such file or directory: no/such/photo.jpg"),
        (["caption", "{empty}"], "no files found in"),
        (["caption", "{readme}", "--model", "{empty}"], "no model in"),
        (["caption", "{readme}", "--model", "no/such/model"], "no model directory at no/such/model"),
        (["serve", "--model", "{empty}"], "no model in"),
        (["soak", "--fault-rate", "1.5"], "must be between 0 and 1"),
        (["caption", "{readme}", "--workers", "0"], "must be at least 1"),
        (["caption", "{readme}", "--batch-size", "10001"], "must be 1-10000"),
        (["caption", "{readme}", "--model", "{empty}", "--function-image", "x:y"], "exclude each other"),
        (["caption", "{readme}", "--key-suffix", ".jpg", "--key-suffix", "jpg"], "do not overlap"),
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
    with pytest.raises(SettingsError, match="weights"):
        check_model_directory(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    check_model_directory(tmp_path)


def test_sqs_record_has_the_shape_the_event_source_mapping_sends() -> None:
    deployment = EmulatedResources(
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
    assert keys_in_notification(body) == (["red flower+ü.jpg"], None)
    assert keys_in_notification('{"Event": "s3:TestEvent"}') == ([], None)
    assert keys_in_notification("not json")[1].startswith("message body is not JSON")
    assert keys_in_notification('{"hello": 1}') == ([], "not an S3 notification: no Records list")


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
                KeyResult(
                    "[bold]x.png", "captioned", caption="a red circle on a white background", latency_s=1.25
                ),
                KeyResult("y.jpg", "failed", error="not an image: empty"),
                KeyResult("z.bmp", SKIPPED, error="not delivered as deployed"),
            ]
        )
    )
    text = console.export_text()
    assert "[bold]x.png" in text and "a red circle on a white background" in text and "1.25 s" in text
    assert "not an image: empty" in text
    assert "z.bmp" in text and "skipped" in text and "not delivered as deployed" in text


@pytest.fixture
def emulator() -> Iterator[EmulatedResources]:
    """The emulator with the pipeline's resources, no key filter, failed messages back after 1 s."""
    with Emulator() as endpoint_url:
        yield create_resources(endpoint_url, name="esm-test", visibility_timeout_s=1, max_receive_count=2)


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
            for key in keys_of(record["body"]):
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

    collector = ResultTracker(emulator)
    keys = ["fine", "flaky", "doomed", "boom"]
    with EventSourceMapping(emulator, stub_function, workers=2, batch_size=1) as mapping:
        s3 = emulator.client("s3")
        for key in keys:
            collector.expect([key])
            s3.put_object(Bucket=emulator.bucket, Key=key, Body=b"x")
        assert collector.wait(stall_timeout_s=30)
    outcomes = collector.results
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
    crashed = threading.Event()
    table = emulator.client("dynamodb")

    def crash_once(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        if not crashed.is_set():
            crashed.set()
            raise WorkerCrash("simulated environment death")
        for record in event["Records"]:
            for key in keys_of(record["body"]):
                table.put_item(
                    TableName=emulator.table, Item={"key": {"S": key}, "status": {"S": "captioned"}}
                )
        return {"batchItemFailures": []}

    collector = ResultTracker(emulator)
    with EventSourceMapping(emulator, crash_once, workers=1, batch_size=10) as mapping:
        collector.expect(["photo.png"])
        emulator.client("s3").put_object(Bucket=emulator.bucket, Key="photo.png", Body=b"x")
        assert collector.wait(stall_timeout_s=20)
    assert mapping.stats.crashes == 1
    assert (
        collector.results["photo.png"].status == "captioned"
        and not collector.results["photo.png"].dead_lettered
    )


def test_a_failed_upload_is_reported_and_the_others_go_through(emulator: Any, tmp_path: Path) -> None:
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


# --- key filters: the component's own, applied locally --------------------------------------------------


def test_the_local_key_filters_are_the_components_defaults() -> None:
    defaults = PipelineSettings()
    assert LocalSettings().filters == key_filters(defaults.key_prefix, defaults.key_suffixes)
    assert LocalSettings(all_keys=True).filters == EVERY_KEY


@pytest.mark.parametrize("key", ["photo.ico", "no-suffix", "holiday.Jpg", "album/scan.Tiff", "doc.pdf"])
def test_a_key_the_deployed_filters_would_not_deliver_is_skipped_with_the_reason(key: str) -> None:
    reason = LocalSettings().skip_reason(key)
    assert reason is not None
    assert "keySuffixes" in reason and ".jpg" in reason and "--all-keys" in reason
    assert LocalSettings(all_keys=True).skip_reason(key) is None


@pytest.mark.parametrize(
    "key",
    ["photo.jpg", "a/b c.PNG", "x.webp", "y.JPEG", "scan.bmp", "anim.GIF", "s.tif", "IMG_1.HEIC", "z.avif"],
)
def test_a_key_the_deployed_filters_deliver_is_not_skipped(key: str) -> None:
    assert LocalSettings().skip_reason(key) is None


def test_suffixes_in_both_cases_are_named_once_with_the_case_rule() -> None:
    from captioning.component.settings import DEFAULT_IMAGE_SUFFIXES, IMAGE_EXTENSIONS

    assert suffixes_text(DEFAULT_IMAGE_SUFFIXES) == " ".join(IMAGE_EXTENSIONS) + " in lower or upper case"
    assert suffixes_text((".jpg", ".JPG", ".png")) == ".jpg .JPG .png"  # .PNG missing: each as given
    assert suffixes_text((".JPG",)) == ".JPG"


def test_prefix_and_suffixes_like_the_stack_config() -> None:
    settings = LocalSettings(key_prefix="uploads/", key_suffixes=(".bmp",))
    assert settings.skip_reason("uploads/a.bmp") is None
    assert "keyPrefix" in (settings.skip_reason("other/a.bmp") or "")
    assert LocalSettings(key_suffixes=()).skip_reason("anything") is None  # [] lets every key through
    with pytest.raises(SettingsError, match="--key-suffix"):
        LocalSettings(key_suffixes=(".jpeg", "peg"))


def test_settings_refuse_a_batch_size_beyond_the_event_source_limit() -> None:
    high = limits.SQS_BATCH_SIZE[1]
    assert LocalSettings(batch_size=high).batch_size == high
    with pytest.raises(SettingsError, match=f"1-{high}"):
        LocalSettings(batch_size=high + 1)


# --- the component's resources in the emulator ---------------------------------------------------------


@pytest.fixture
def filtered() -> Iterator[EmulatedResources]:
    """The emulator with the pipeline's resources and the deployed default key filters."""
    with Emulator() as endpoint_url:
        yield create_resources(
            endpoint_url, visibility_timeout_s=5, max_receive_count=3, key_filters=LocalSettings().filters
        )


def test_resources_carry_the_components_queue_policy_retention_and_redrive(
    filtered: EmulatedResources,
) -> None:
    sqs = filtered.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=filtered.queue_url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["Policy"]) == policies.upload_queue_policy(
        queue_arn=filtered.queue_arn, bucket_arn=f"arn:aws:s3:::{filtered.bucket}", account_id=MOTO_ACCOUNT_ID
    )
    assert int(attributes["MessageRetentionPeriod"]) == limits.SQS_MAX_RETENTION_SECONDS
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 3
    dlq = sqs.get_queue_attributes(QueueUrl=filtered.dead_letter_queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    assert int(dlq["MessageRetentionPeriod"]) == limits.SQS_MAX_RETENTION_SECONDS


def test_the_bucket_notifies_the_queue_only_for_keys_the_filters_let_through(
    filtered: EmulatedResources,
) -> None:
    s3, sqs = filtered.client("s3"), filtered.client("sqs")
    sqs.purge_queue(QueueUrl=filtered.queue_url)  # the configuration's s3:TestEvent
    for key in ("kept.jpg", "kept.PNG", "dropped.ico", "dropped.Jpg", "dropped"):
        s3.put_object(Bucket=filtered.bucket, Key=key, Body=b"x")
    keys = []
    while messages := sqs.receive_message(QueueUrl=filtered.queue_url, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        keys += [key for message in messages for key in keys_of(message["Body"])]
    assert sorted(keys) == ["kept.PNG", "kept.jpg"]


def test_the_emulated_bucket_has_the_rules_the_component_deploys_prefix_included() -> None:
    filters = LocalSettings(key_prefix="in/", key_suffixes=(".jpg", ".png")).filters
    deployed = [rule.pulumi_args() for rule in filters]  # what the component's notification is given
    with Emulator() as endpoint_url:
        emulated = create_resources(
            endpoint_url, visibility_timeout_s=5, max_receive_count=3, key_filters=filters
        )
        rules = emulated.client("s3").get_bucket_notification_configuration(Bucket=emulated.bucket)
    in_bucket = [
        {f"filter_{part['Name'].lower()}": part["Value"] for part in rule["Filter"]["Key"]["FilterRules"]}
        for rule in rules["QueueConfigurations"]
    ]
    assert sorted(in_bucket, key=str) == sorted(deployed, key=str)
    assert deployed == [
        {"filter_prefix": "in/", "filter_suffix": ".jpg"},
        {"filter_prefix": "in/", "filter_suffix": ".png"},
    ]


# --- a taken port: a clear error, at once --------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_taken_port_is_refused_without_hanging(taken_port: int) -> None:
    with pytest.raises(EmulatorError, match=f"port {taken_port} .* already in use"):
        check_port_free(taken_port)
    started = time.monotonic()
    with pytest.raises(EmulatorError, match="in use"), Emulator(taken_port):
        pass
    assert time.monotonic() - started < 10


def test_serve_on_a_taken_port_exits_non_zero_with_one_line(taken_port: int) -> None:
    result = run_local("serve", "--port", str(taken_port), timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        f"python -m local serve: error: port {taken_port} on 127.0.0.1 is already in use (another "
        "`python -m local serve`?); pick another with --port N, or leave --port out for any free port"
    )


# --- the dead-letter queue stays readable ---------------------------------------------------------------


def test_peeking_at_the_dead_letter_queue_leaves_every_message_visible(emulator: EmulatedResources) -> None:
    sqs = emulator.client("sqs")
    body = json.dumps(
        s3_notification_event([s3_notification_record(emulator.bucket, "a b.jpg", size=1, etag="e")])
    )
    for message_body in (body, "{not json", *(json.dumps({"n": n}) for n in range(12))):
        sqs.send_message(QueueUrl=emulator.dead_letter_queue_url, MessageBody=message_body)
    peek = DeadLetterPeek(emulator)
    first = peek.new_messages()
    assert len(first) == 14 and peek.keys == {"a b.jpg"}
    assert sum(1 for letter in first if letter.problem and "not JSON" in letter.problem) == 1
    assert peek.new_messages() == []  # each message reported once
    attributes = sqs.get_queue_attributes(
        QueueUrl=emulator.dead_letter_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "14", "ApproximateNumberOfMessagesNotVisible": "0"}
    received = sqs.receive_message(QueueUrl=emulator.dead_letter_queue_url, MaxNumberOfMessages=10)
    assert len(received.get("Messages", [])) == 10  # what `aws sqs receive-message` would get


def test_dead_letter_lines_name_the_keys_or_why_a_message_names_none() -> None:
    from local.dead_letters import DeadLetter

    keyed = dead_letter_line(DeadLetter("m-1", ("a.jpg",)), 3, {"a.jpg": "ThrottlingException: slow down"})
    assert keyed.startswith("dead-lettered a.jpg  after 3 failed deliveries")
    assert "ThrottlingException: slow down" in keyed and "m-1" in keyed
    malformed = dead_letter_line(DeadLetter("m-2", (), "message body is not JSON"), 3, {})
    assert malformed == "dead-lettered message m-2  message body is not JSON"


def test_retry_reasons_are_read_from_the_functions_log_fields() -> None:
    assert retry_reason({"key": "k", "status": "retry", "error": "SlowDown"}) == ("k", "SlowDown")
    assert retry_reason({"key": "k", "status": "captioned"}) is None
    assert retry_reason({"status": "retry"}) is None


def test_retry_reasons_of_the_image_are_read_from_its_json_log_lines() -> None:
    from local.lambda_runtime import _ContainerRetryReasons

    log = "\n".join(
        [
            "START RequestId: 1 Version: $LATEST",
            json.dumps(
                {"message": "object will be retried", "key": "a.jpg", "status": "retry", "error": "SlowDown"}
            ),
            json.dumps({"message": "object processed", "key": "b.jpg", "status": "captioned"}),
            json.dumps(
                {"message": "object will be retried", "key": "a.jpg", "status": "retry", "error": "Throttled"}
            ),
            "not json {",
        ]
    )
    reasons = _ContainerRetryReasons(lambda: log)
    assert dict(reasons) == {"a.jpg": "Throttled"}  # the last reason wins
    assert reasons.get("b.jpg") is None


def test_the_image_gets_the_deployed_environment_but_keeps_its_own_model() -> None:
    from local.lambda_runtime import function_environment

    resources = EmulatedResources(
        "http://127.0.0.1:1", "us-east-1", "b", "t", "q", "arn:aws:sqs:us-east-1:1:q", "d", 5, 3
    )
    in_process = function_environment(resources, LocalSettings(), "WARNING")
    in_image = function_environment(resources, LocalSettings(function_image="x:y"), "WARNING")
    assert in_process["MODEL_DIR"].endswith("models/demo-shapes") and in_process["MODEL_ID"] == "demo-shapes"
    assert "MODEL_DIR" not in in_image and "MODEL_ID" not in in_image
    for environment in (in_process, in_image):
        assert environment["TABLE_NAME"] == "t" and environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
        assert environment["POWERTOOLS_SERVICE_NAME"] == "captioning" and environment["HF_HUB_OFFLINE"] == "1"
        assert environment["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "30"
