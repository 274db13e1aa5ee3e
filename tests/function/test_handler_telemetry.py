"""Logs, metrics (EMF), traces and request ids."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from captioning.function.processing import CaptionHandler, RetryableFailure
from captioning.function.telemetry import Telemetry
from tests.function.conftest import (
    ROOT,
    Deployment,
    FakeContext,
    FaultInjector,
    direct_event,
    noise_png,
)

# --- logs ----------------------------------------------------------------------------------------------


def test_one_json_log_line_per_object(
    aws: Deployment, function: CaptionHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [aws.upload("log-ok.png", noise_png(30)), aws.upload("log-bad.jpg", b"not an image")]
    stream = io.StringIO()
    monkeypatch.setattr(function.logger.registered_handler, "stream", stream)
    function.handler(aws.sqs_event(*messages), FakeContext())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    by_key = {line["key"]: line for line in lines if "key" in line}
    assert len(lines) == 2 and set(by_key) == {"log-ok.png", "log-bad.jpg"}
    assert by_key["log-ok.png"]["status"] == "captioned" and by_key["log-ok.png"]["latency_ms"] >= 0
    assert by_key["log-bad.jpg"]["status"] == "failed"
    assert by_key["log-bad.jpg"]["error"].startswith("not an image")


# --- telemetry: metrics (EMF), traces, request ids -----------------------------------------------------

TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


EXPECTED_UNITS = {
    **dict.fromkeys(["BatchSize", "ImagesCaptioned", "ImagesFailed", "Duplicates", "Retries"], "Count"),
    "CaptionLatency": "Milliseconds",
}


def emf_lines(stdout: str) -> list[dict[str, Any]]:
    """The Embedded Metric Format documents printed on stdout (one JSON object a line, with `_aws`)."""
    documents = []
    for line in stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def metric_values(document: dict[str, Any]) -> dict[str, list[float]]:
    """Metric name -> its values, for the metrics the document declares."""
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    values = {}
    for definition in directive["Metrics"]:
        value = document[definition["Name"]]
        values[definition["Name"]] = value if isinstance(value, list) else [value]
    return values


@pytest.fixture
def instrumented(function: CaptionHandler, monkeypatch: pytest.MonkeyPatch):
    """Build the function's telemetry afresh (as its init would with these switches) and return its
    instrumented handler; Powertools' cold-start flags are reset so this is a cold start."""
    from aws_lambda_powertools.metrics.provider import cold_start
    from aws_lambda_powertools.tracing import tracer as powertools_tracer

    def build(*, metrics: bool = True, tracing: bool = False, namespace: str = "CaptioningTest"):
        telemetry = Telemetry(
            metrics_enabled=metrics,
            tracing_enabled=tracing,
            namespace=namespace,
            function_name="captioning-test",
        )
        monkeypatch.setattr(function, "telemetry", telemetry)
        monkeypatch.setattr(cold_start, "is_cold_start", True)
        monkeypatch.setattr(powertools_tracer, "is_cold_start", True)
        return telemetry.instrument(function._handle)

    return build


def test_metrics_are_emitted_in_emf(
    aws: Deployment, function: CaptionHandler, instrumented, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [aws.upload(f"emf-{seed}.png", noise_png(seed)) for seed in range(3)]
    bad = aws.upload("emf-bad.jpg", b"not an image")
    handler = instrumented(namespace="CaptioningTest")
    handler(aws.sqs_event(good[0]), FakeContext())
    capsys.readouterr()

    # A redelivery of the first, two new images, one bad object: then a warm invocation.
    handler(aws.sqs_event(good[0], good[1], good[2], bad), FakeContext())
    handler(aws.sqs_event(good[1]), FakeContext())

    documents = emf_lines(capsys.readouterr().out)
    assert len(documents) == 2  # one per invocation, no cold start any more
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "CaptioningTest"
        assert [sorted(dimensions) for dimensions in directive["Dimensions"]] == [
            ["function_name", "service"]
        ]
        assert (document["service"], document["function_name"]) == ("captioning", "captioning-test")
        units = {definition["Name"]: definition["Unit"] for definition in directive["Metrics"]}
        assert units.items() <= EXPECTED_UNITS.items()
    batch, warm = (metric_values(document) for document in documents)
    assert set(batch) == set(EXPECTED_UNITS)
    assert {name: values for name, values in batch.items() if name != "CaptionLatency"} == {
        "BatchSize": [4.0],
        "ImagesCaptioned": [2.0],
        "ImagesFailed": [1.0],
        "Duplicates": [1.0],
        "Retries": [0.0],
    }
    latencies = [float(aws.item(f"emf-{seed}.png")["inference_ms"]) for seed in (1, 2)]
    assert batch["CaptionLatency"] == latencies  # one value per captioned image
    assert warm["Duplicates"] == [1.0] and warm["ImagesCaptioned"] == [0.0] and "CaptionLatency" not in warm


def test_cold_start_metric_once(
    aws: Deployment, function: CaptionHandler, instrumented, capsys: pytest.CaptureFixture[str]
) -> None:
    message = aws.upload("cold.png", noise_png(40))
    handler = instrumented()
    handler(aws.sqs_event(message), FakeContext())
    handler(aws.sqs_event(message), FakeContext())
    cold = [d for d in emf_lines(capsys.readouterr().out) if "ColdStart" in metric_values(d)]
    assert len(cold) == 1
    assert metric_values(cold[0]) == {"ColdStart": [1.0]}
    assert cold[0]["function_name"] == "captioning-test" and cold[0]["service"] == "captioning"
    assert cold[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "CaptioningTest"


def test_retries_are_counted_and_flushed_when_a_direct_event_raises(
    aws: Deployment, function: CaptionHandler, instrumented, faults: FaultInjector, capsys
) -> None:
    message = aws.upload("retry-me.png", noise_png(41))
    faults.fail(function.s3_client, "GetObject", status=503, code="SlowDown")
    with pytest.raises(RetryableFailure):
        instrumented()(direct_event(message), FakeContext())
    (document,) = [d for d in emf_lines(capsys.readouterr().out) if "Retries" in metric_values(d)]
    assert metric_values(document)["Retries"] == [1.0]


def test_metrics_off_prints_nothing(
    aws: Deployment, function: CaptionHandler, instrumented, capsys: pytest.CaptureFixture[str]
) -> None:
    message = aws.upload("quiet.png", noise_png(42))
    instrumented(metrics=False)(aws.sqs_event(message), FakeContext())
    assert function.telemetry.metrics is None
    assert emf_lines(capsys.readouterr().out) == []
    assert aws.item("quiet.png")["status"] == "captioned"


def test_every_log_line_carries_the_request_id(
    aws: Deployment, function: CaptionHandler, instrumented, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [aws.upload("rid-ok.png", noise_png(43)), aws.upload("rid-bad.jpg", b"nope")]
    stream = io.StringIO()
    monkeypatch.setattr(function.logger.registered_handler, "stream", stream)
    instrumented(metrics=False)(aws.sqs_event(*messages), FakeContext())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    assert {line["function_request_id"] for line in lines} == {FakeContext.aws_request_id}
    assert {line["function_name"] for line in lines} == {FakeContext.function_name}


@pytest.fixture
def xray_segments(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The X-Ray SDK as it runs inside Lambda (a trace header in the environment), its emitter replaced
    by a list of the (sub)segments it would send to the daemon."""
    from aws_lambda_powertools import Tracer
    from aws_xray_sdk import global_sdk_config
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.lambda_launcher import LambdaContext

    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE_HEADER)
    Tracer._reset_config()  # Powertools keeps "disabled" class-wide once any Tracer was built outside Lambda
    global_sdk_config.set_sdk_enabled(True)
    sent: list[dict[str, Any]] = []

    class Emitter:
        def send_entity(self, entity: Any) -> None:
            sent.append(json.loads(entity.serialize()))

        def set_daemon_address(self, address: str) -> None:
            pass

    monkeypatch.setattr(xray_recorder, "_emitter", Emitter())
    # The recorder chose its context when first imported, here outside Lambda; inside Lambda it is this.
    monkeypatch.setattr(xray_recorder, "_context", LambdaContext())
    try:
        yield sent
    finally:
        global_sdk_config.set_sdk_enabled(False)  # botocore stays patched, but the patches stand aside
        Tracer._reset_config()


def test_tracing_has_a_subsegment_per_step_and_annotates_the_cold_start(
    aws: Deployment, function: CaptionHandler, instrumented, xray_segments: list[dict[str, Any]]
) -> None:
    messages = [aws.upload(f"trace-{seed}.png", noise_png(seed)) for seed in range(2)]
    handler = instrumented(metrics=False, tracing=True)
    handler(aws.sqs_event(*messages), FakeContext())
    by_name = {segment["name"]: segment for segment in xray_segments}
    invocation = by_name["## _handle"]
    assert invocation["annotations"] == {"ColdStart": True, "Service": "captioning"}
    for step, expected in [
        ("fetch", {"objects": 2}),
        ("caption", {"images": 2}),
        ("persist", {"items": 2}),
    ]:
        assert by_name[f"## {step}"]["parent_id"] == invocation["id"]
        assert by_name[f"## {step}"]["annotations"] == expected
    assert len(xray_segments) > 4  # the AWS calls in the steps are traced too (S3 GetObject, DynamoDB)

    xray_segments.clear()
    handler(aws.sqs_event(*messages), FakeContext())
    assert {s["name"]: s for s in xray_segments}["## _handle"]["annotations"]["ColdStart"] is False


def test_tracing_off_opens_no_subsegment(
    aws: Deployment, function: CaptionHandler, instrumented, xray_segments: list[dict[str, Any]]
) -> None:
    """In this process an earlier test's Tracer has patched botocore for good (its AWS calls would still
    be traced with the SDK on); the fresh-interpreter test below shows nothing of X-Ray loads when off."""
    from aws_xray_sdk.core import xray_recorder

    message = aws.upload("untraced.png", noise_png(44))
    with mock.patch.object(xray_recorder, "begin_subsegment", wraps=xray_recorder.begin_subsegment) as begin:
        instrumented(metrics=False, tracing=False)(aws.sqs_event(message), FakeContext())
    assert function.telemetry.tracer is None
    assert [
        c for c in begin.call_args_list if str(c.args[0] if c.args else c.kwargs["name"]).startswith("##")
    ] == []
    assert [s["name"] for s in xray_segments if s["name"].startswith("##")] == []


SWITCH_SCRIPT = """
import sys
from captioning.function.settings import Settings
from captioning.function.telemetry import Telemetry

settings = Settings.from_environment()
telemetry = Telemetry.from_environment(
    metrics_enabled=settings.metrics_enabled, tracing_enabled=settings.tracing_enabled
)


class Context:
    function_name, memory_limit_in_mb, aws_request_id = "f", 128, "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:1:function:f"


def handle(event, context):
    with telemetry.step("fetch", objects=1):
        telemetry.record_invocation(
            batch_size=1, captioned=1, failed=0, duplicates=0, retries=0, latencies_ms=[5.0]
        )


telemetry.instrument(handle)({}, Context())
print("xray loaded:", any(name.startswith("aws_xray_sdk") for name in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("switched_on", [False, True], ids=["off", "on"])
def test_telemetry_switches_from_the_environment(switched_on: bool) -> None:
    """In a fresh interpreter, from the variables the component writes: off, nothing of X-Ray is even
    imported and nothing is printed; on (the control), both happen."""
    disabled = "false" if switched_on else "true"
    env = {
        "PATH": os.environ["PATH"],
        "TABLE_NAME": "t",
        "LAMBDA_TASK_ROOT": "/var/task",  # inside Lambda: Powertools would trace unless told not to
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:9",  # discard port, should anything be sent
        "POWERTOOLS_METRICS_DISABLED": disabled,
        "POWERTOOLS_TRACE_DISABLED": disabled,
    }
    result = subprocess.run(  # noqa: S603  our own interpreter and script
        [sys.executable, "-c", SWITCH_SCRIPT], env=env, capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert f"xray loaded: {switched_on}" in result.stderr
    documents = emf_lines(result.stdout)
    assert len(documents) == (2 if switched_on else 0)  # the invocation's metrics and the cold start
