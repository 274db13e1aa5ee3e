"""Alarms, the alarm topic and the dashboard under mocks: what they watch, how, and whom they tell."""
# ruff: noqa: S101

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from captioning import CaptioningPipeline, PipelineSettings
from captioning.contract.constants import SERVICE_NAME, MetricName
from captioning.function.telemetry import Telemetry
from tests.pulumi_mocks import REGION, CaptioningMocks, Registration, deploy, use_mocks

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
FUNCTION = "aws:lambda/function:Function"
QUEUE = "aws:sqs/queue:Queue"

COMMON_ALARMS = {
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    ("AWS/Lambda", "Errors"),
    ("AWS/Lambda", "Throttles"),
    ("AWS/Lambda", "Duration"),
}
MODE_ALARMS = {
    "direct": {("AWS/Lambda", "AsyncEventsDropped"), ("AWS/Lambda", "DestinationDeliveryFailures")},
    "queue": {("AWS/SQS", "ApproximateAgeOfOldestMessage")},
    "eventbridge": {("AWS/SQS", "ApproximateAgeOfOldestMessage"), ("AWS/Events", "FailedInvocations")},
}


def build(**settings: Any) -> tuple[CaptioningMocks, CaptioningPipeline]:
    return deploy(lambda: CaptioningPipeline("test", PipelineSettings(**settings)))


def alarms_by_metric(mocks: CaptioningMocks) -> dict[tuple[str, str], Registration]:
    found = {(a.inputs["namespace"], a.inputs["metricName"]): a for a in mocks.of_type(ALARM)}
    assert len(found) == len(mocks.of_type(ALARM)), "two alarms on one metric"
    return found


def names(mocks: CaptioningMocks) -> dict[str, str]:
    """This stack's physical names: the function, the dead-letter queue and (queue mode) the upload queue."""
    queues = {q.name: q.outputs["name"] for q in mocks.of_type(QUEUE)}
    return {
        "function": mocks.one_of_type(FUNCTION).outputs["name"],
        "dead_letters": queues["test-dead-letters"],
        **({"uploads": queues["test-uploads"]} if "test-uploads" in queues else {}),
    }


@pytest.mark.parametrize("trigger", ["direct", "queue", "eventbridge"])
def test_each_mode_has_its_alarms_on_this_stacks_resources(trigger):
    mocks, _ = build(trigger=trigger)
    alarms = alarms_by_metric(mocks)
    assert set(alarms) == COMMON_ALARMS | MODE_ALARMS[trigger]
    stack = names(mocks)
    for (namespace, metric), alarm in alarms.items():
        if namespace == "AWS/Lambda":
            assert alarm.inputs["dimensions"] == {"FunctionName": stack["function"]}, metric
    assert alarms[("AWS/SQS", "ApproximateNumberOfMessagesVisible")].inputs["dimensions"] == {
        "QueueName": stack["dead_letters"]
    }
    if trigger != "direct":
        assert alarms[("AWS/SQS", "ApproximateAgeOfOldestMessage")].inputs["dimensions"] == {
            "QueueName": stack["uploads"]
        }
    if trigger == "eventbridge":
        rule = mocks.one_of_type("aws:cloudwatch/eventRule:EventRule")
        assert alarms[("AWS/Events", "FailedInvocations")].inputs["dimensions"] == {
            "RuleName": rule.outputs["name"]
        }


@pytest.mark.parametrize("trigger", ["direct", "queue", "eventbridge"])
def test_every_alarm_notifies_the_topic_on_alarm_and_ok_and_ignores_missing_data(trigger):
    mocks, _ = build(trigger=trigger)
    topic_arn = mocks.one_of_type(TOPIC).outputs["arn"]
    for alarm in mocks.of_type(ALARM):
        assert alarm.inputs["alarmActions"] == [topic_arn], alarm.name
        assert alarm.inputs["okActions"] == [topic_arn], alarm.name
        assert alarm.inputs["treatMissingData"] == "notBreaching", alarm.name
        assert alarm.inputs["alarmDescription"], alarm.name


def test_defaults_thresholds_and_statistics():
    mocks, _ = build(trigger="queue", timeout=120)
    alarms = alarms_by_metric(mocks)
    summary = {
        metric: (
            a.inputs.get("statistic") or a.inputs.get("extendedStatistic"),
            a.inputs["comparisonOperator"],
            a.inputs["threshold"],
            a.inputs["period"],
            a.inputs["evaluationPeriods"],
        )
        for (_, metric), a in alarms.items()
    }
    assert summary == {
        "ApproximateNumberOfMessagesVisible": ("Maximum", "GreaterThanThreshold", 0, 300, 1),
        "Errors": ("Sum", "GreaterThanOrEqualToThreshold", 1, 300, 1),
        "Throttles": ("Sum", "GreaterThanOrEqualToThreshold", 1, 300, 1),
        "Duration": ("p99", "GreaterThanThreshold", 96_000, 300, 1),  # 80 % of 120 s, in ms
        "ApproximateAgeOfOldestMessage": ("Maximum", "GreaterThanOrEqualToThreshold", 600, 300, 1),
    }
    assert "statistic" not in alarms[("AWS/Lambda", "Duration")].inputs  # a percentile is extended


def test_thresholds_and_periods_come_from_the_settings():
    mocks, _ = build(
        trigger="queue",
        timeout=200,
        alarm_period=60,
        alarm_evaluation_periods=3,
        errors_alarm_threshold=5,
        throttles_alarm_threshold=7,
        duration_alarm_percent=50,
        queue_age_alarm_seconds=900,
    )
    alarms = {metric: a.inputs for (_, metric), a in alarms_by_metric(mocks).items()}
    assert {a["period"] for a in alarms.values()} == {60}
    assert {a["evaluationPeriods"] for a in alarms.values()} == {3}
    assert alarms["Errors"]["threshold"] == 5
    assert alarms["Throttles"]["threshold"] == 7
    assert alarms["Duration"]["threshold"] == 100_000
    assert alarms["ApproximateAgeOfOldestMessage"]["threshold"] == 900


def test_direct_mode_alarms_on_any_lost_event():
    alarms = alarms_by_metric(build(trigger="direct")[0])
    for metric in ("AsyncEventsDropped", "DestinationDeliveryFailures"):
        inputs = alarms[("AWS/Lambda", metric)].inputs
        assert (inputs["statistic"], inputs["comparisonOperator"], inputs["threshold"]) == (
            "Sum",
            "GreaterThanOrEqualToThreshold",
            1,
        )


def test_e_mail_subscriptions_only_when_asked():
    assert build()[0].of_type(SUBSCRIPTION) == []
    mocks, _ = build(alarm_emails=("ops@example.com", "oncall@example.com"))
    topic_arn = mocks.one_of_type(TOPIC).outputs["arn"]
    subscriptions = {
        (s.inputs["topic"], s.inputs["protocol"], s.inputs["endpoint"]) for s in mocks.of_type(SUBSCRIPTION)
    }
    assert subscriptions == {
        (topic_arn, "email", "ops@example.com"),
        (topic_arn, "email", "oncall@example.com"),
    }


@pulumi.runtime.test
def test_the_pipeline_outputs_the_topic_and_the_dashboard():
    mocks = use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings())

    def check(values: list[str]) -> None:
        topic_arn, dashboard_name = values
        assert topic_arn == mocks.one_of_type(TOPIC).outputs["arn"]
        assert topic_arn.startswith("arn:")
        assert dashboard_name == mocks.one_of_type(DASHBOARD).inputs["dashboardName"] == "captioning-dev-test"

    return pulumi.Output.all(pipeline.alarm_topic_arn, pipeline.dashboard_name).apply(check)


# --- the dashboard --------------------------------------------------------------------------------------


def dashboard(mocks: CaptioningMocks) -> dict[str, Any]:
    return json.loads(mocks.one_of_type(DASHBOARD).inputs["dashboardBody"])


def metric_widgets(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["properties"]["title"]: w["properties"] for w in body["widgets"] if w["type"] == "metric"}


def parse_metric(entry: list[Any]) -> tuple[str, str, dict[str, str], dict[str, Any]]:
    """[namespace, name, dim1, value1, ..., {options}] -> (namespace, name, dimensions, options)."""
    options = entry[-1] if isinstance(entry[-1], dict) else {}
    parts = entry[:-1] if options else entry
    namespace, name, *pairs = parts
    return namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)), options


@pytest.mark.parametrize("trigger", ["direct", "queue"])
def test_dashboard_charts_this_stacks_metrics(trigger):
    mocks, _ = build(trigger=trigger, metrics_namespace="CaptioningOps")
    body = dashboard(mocks)
    stack = names(mocks)
    widgets = metric_widgets(body)
    own = {"function_name": stack["function"], "service": SERVICE_NAME}
    for properties in widgets.values():
        assert properties["region"] == REGION
        assert properties["period"] == 60

    def metrics(title: str) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
        return [parse_metric(entry) for entry in widgets[title]["metrics"]]

    assert [(ns, name, dims) for ns, name, dims, _ in metrics("Uploads captioned / failed per minute")] == [
        ("CaptioningOps", "ImagesCaptioned", own),
        ("CaptioningOps", "ImagesFailed", own),
    ]
    assert widgets["Uploads captioned / failed per minute"]["stat"] == "Sum"
    latency = metrics("Caption latency per image (ms)")
    assert [(ns, name, dims, options["stat"]) for ns, name, dims, options in latency] == [
        ("CaptioningOps", "CaptionLatency", own, p) for p in ("p50", "p90", "p99")
    ]
    lambda_dims = {"FunctionName": stack["function"]}
    assert [(ns, name, dims) for ns, name, dims, _ in metrics("Invocations, errors, throttles")] == [
        ("AWS/Lambda", metric, lambda_dims) for metric in ("Invocations", "Errors", "Throttles")
    ]
    assert [(ns, name, dims) for ns, name, dims, _ in metrics("Concurrent executions")] == [
        ("AWS/Lambda", "ConcurrentExecutions", lambda_dims)
    ]
    depth = {options["label"]: dims for _, name, dims, options in metrics("Queue depth (messages visible)")}
    expected_depth = {"dead-letter queue": {"QueueName": stack["dead_letters"]}}
    if trigger == "queue":
        expected_depth["upload queue"] = {"QueueName": stack["uploads"]}
    assert depth == expected_depth
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    # In role order: the layout depends on no output's value.
    by_role = sorted(mocks.of_type(ALARM), key=lambda a: a.name.removeprefix("test-").removesuffix("-alarm"))
    assert alarm_widget["properties"]["alarms"] == [a.outputs["arn"] for a in by_role]


def test_dashboard_without_the_functions_own_metrics_when_they_are_off():
    body = dashboard(build(metrics=False)[0])
    namespaces = {parse_metric(entry)[0] for w in metric_widgets(body).values() for entry in w["metrics"]}
    assert namespaces == {"AWS/Lambda", "AWS/SQS"}


def test_the_dashboard_reads_the_metrics_the_function_emits(capsys):
    """Every function metric the dashboard charts is one the handler's telemetry really prints (same
    namespace, name and dimension set), so a renamed metric cannot leave an empty chart."""
    mocks, _ = build(metrics_namespace="CaptioningOps")
    function_name = names(mocks)["function"]
    telemetry = Telemetry(
        metrics_enabled=True, tracing_enabled=False, namespace="CaptioningOps", function_name=function_name
    )
    telemetry.record_invocation(
        batch_size=2, captioned=1, failed=1, duplicates=0, retries=0, latencies_ms=[12.0]
    )
    telemetry.metrics.flush_metrics()
    emitted = set()
    for line in capsys.readouterr().out.splitlines():
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = tuple(sorted((name, document[name]) for name in dimension_set))
                for metric in directive["Metrics"]:
                    emitted.add((directive["Namespace"], metric["Name"], dimensions))
    charted = {
        (ns, name, tuple(sorted(dims.items())))
        for w in metric_widgets(dashboard(mocks)).values()
        for ns, name, dims, _ in map(parse_metric, w["metrics"])
        if ns == "CaptioningOps"
    }
    assert {name for _, name, _ in charted} == {
        MetricName.IMAGES_CAPTIONED,
        MetricName.IMAGES_FAILED,
        MetricName.CAPTION_LATENCY,
        MetricName.DUPLICATES,
        MetricName.RETRIES,
    }
    assert charted <= emitted
