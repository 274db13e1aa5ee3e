"""Initialised or restored: the ColdStart metric and the log lines carry AWS_LAMBDA_INITIALIZATION_TYPE
(captioning/function/telemetry.py), as a property of ColdStart's EMF document (its dimensions stay
Powertools') and as a field of every log line; nothing when the variable is unset (outside Lambda)."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from captioning.function.processing import CaptionHandler
from captioning.function.telemetry import Telemetry
from tests.function.conftest import Deployment, FakeContext, noise_png
from tests.function.test_handler_telemetry import emf_lines, metric_values


@pytest.fixture
def instrumented(function: CaptionHandler, monkeypatch: pytest.MonkeyPatch):
    """The function's telemetry built afresh with this initialization type, a cold start again; returns
    its instrumented handler and the stream its log lines go to."""
    from aws_lambda_powertools.logging import logger as powertools_logger
    from aws_lambda_powertools.metrics.provider import cold_start

    def build(initialization_type: str | None) -> tuple[Any, io.StringIO]:
        telemetry = Telemetry(
            metrics_enabled=True,
            tracing_enabled=False,
            namespace="CaptioningTest",
            function_name="captioning-test",
            initialization_type=initialization_type,
        )
        stream = io.StringIO()
        monkeypatch.setattr(telemetry.logger.registered_handler, "stream", stream)
        monkeypatch.setattr(function, "telemetry", telemetry)
        monkeypatch.setattr(cold_start, "is_cold_start", True)
        monkeypatch.setattr(powertools_logger, "is_cold_start", True)
        return telemetry.instrument(function._handle), stream

    return build


def cold_start_documents(stdout: str) -> list[dict[str, Any]]:
    return [document for document in emf_lines(stdout) if "ColdStart" in metric_values(document)]


@pytest.mark.parametrize("initialization_type", ["snap-start", "on-demand", "provisioned-concurrency"])
def test_the_cold_start_metric_says_how_the_environment_started(
    aws: Deployment, instrumented, capsys: pytest.CaptureFixture[str], initialization_type: str
) -> None:
    message = aws.upload(f"start-{initialization_type}.png", noise_png(80))
    handler, _ = instrumented(initialization_type)
    handler(aws.sqs_event(message), FakeContext())
    handler(aws.sqs_event(message), FakeContext())
    (cold,) = cold_start_documents(capsys.readouterr().out)  # once per environment, as before
    assert metric_values(cold) == {"ColdStart": [1.0]}
    assert cold["initialization_type"] == initialization_type
    (directive,) = cold["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["function_name", "service"]]  # a property, not a dimension


def test_the_cold_start_document_is_powertools_own_plus_the_property(
    aws: Deployment, instrumented, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against Powertools' own add_cold_start_metric (telemetry.py copies its body): if an upgrade
    changes what Powertools emits, this fails."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    handler, _ = instrumented("snap-start")
    handler(aws.sqs_event(aws.upload("drift.png", noise_png(81))), FakeContext())
    (ours,) = cold_start_documents(capsys.readouterr().out)
    AmazonCloudWatchEMFProvider(namespace="CaptioningTest", service="captioning").add_cold_start_metric(
        FakeContext()
    )
    (powertools,) = cold_start_documents(capsys.readouterr().out)
    for document in (ours, powertools):
        document["_aws"].pop("Timestamp")
    assert ours.pop("initialization_type") == "snap-start"
    assert ours == powertools


def test_every_log_line_says_how_the_environment_started_beside_cold_start(
    aws: Deployment, instrumented
) -> None:
    messages = [aws.upload("lines-ok.png", noise_png(82)), aws.upload("lines-bad.jpg", b"no image")]
    handler, stream = instrumented("snap-start")
    handler(aws.sqs_event(*messages), FakeContext())
    handler(aws.sqs_event(*messages), FakeContext())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 4
    assert {line["initialization_type"] for line in lines} == {"snap-start"}
    assert [line["cold_start"] for line in lines] == [True, True, False, False]


def test_outside_lambda_nothing_is_said(
    aws: Deployment, instrumented, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, stream = instrumented(None)
    handler(aws.sqs_event(aws.upload("local.png", noise_png(83))), FakeContext())
    (cold,) = cold_start_documents(capsys.readouterr().out)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "initialization_type" not in cold
    assert lines and not any("initialization_type" in line for line in lines)


@pytest.mark.parametrize(
    ("variable", "restored"),
    [("snap-start", True), ("on-demand", False), ("provisioned-concurrency", False), (None, False)],
)
def test_from_the_environment(monkeypatch: pytest.MonkeyPatch, variable: str | None, restored: bool) -> None:
    if variable is None:
        monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    else:
        monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", variable)
    telemetry = Telemetry.from_environment(metrics_enabled=False, tracing_enabled=False)
    assert (telemetry.initialization_type, telemetry.restored) == (variable, restored)
