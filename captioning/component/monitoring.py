"""Monitoring: alarms that notify one SNS topic, and a CloudWatch dashboard of the pipeline.

The alarms watch what means "uploads are not being captioned": events parked in the dead-letter queue,
function errors and throttles, durations nearing the timeout, and per trigger mode the place where
events wait or get lost (direct: asynchronous events dropped, on-failure deliveries failing; queue: the
age of the oldest waiting upload; eventbridge mode is watched as queue mode, its rule's failed deliveries
landing in the dead-letter queue). The function's own metrics (captioning/function/telemetry.py, EMF) feed the
dashboard's captioned/failed and latency charts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from captioning.component.function import CaptioningFunction
from captioning.component.settings import PipelineSettings
from captioning.contract.constants import METRIC_DIMENSIONS, SERVICE_NAME, MetricName

LAMBDA_NAMESPACE = "AWS/Lambda"
EVENTS_NAMESPACE = "AWS/Events"
SQS_NAMESPACE = "AWS/SQS"
DASHBOARD_PERIOD_S = 60
"""The dashboard charts per minute."""
LATENCY_PERCENTILES = ("p50", "p90", "p99")


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: which metric, aggregated how, compared with what, and why it matters."""

    role: str
    """Names the resource (`{name}-{role}-alarm`) and the alarm's purpose."""
    namespace: str
    metric_name: str
    dimensions: dict[str, pulumi.Input[str]]
    threshold: float
    description: str
    statistic: str | None = "Sum"
    extended_statistic: str | None = None
    comparison: str = "GreaterThanOrEqualToThreshold"


@dataclass
class Monitoring:
    topic: aws.sns.Topic
    subscriptions: list[aws.sns.TopicSubscription]
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    """By role (AlarmSpec.role)."""
    dashboard: aws.cloudwatch.Dashboard


def alarm_specs(
    settings: PipelineSettings,
    *,
    function_name: pulumi.Input[str],
    dead_letter_queue_name: pulumi.Input[str],
    upload_queue_name: pulumi.Input[str] | None,
    uploads_rule_name: pulumi.Input[str] | None = None,
) -> list[AlarmSpec]:
    """Every alarm of a pipeline with these settings (the queue-age alarm in queue and eventbridge modes,
    the asynchronous-delivery alarms in direct mode only, the rule's failed deliveries in eventbridge
    mode)."""
    function = {"FunctionName": function_name}
    duration_threshold_ms = settings.timeout * 1000 * settings.duration_alarm_percent / 100
    specs = [
        AlarmSpec(
            "dead-letters",
            SQS_NAMESPACE,
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": dead_letter_queue_name},
            threshold=0,
            statistic="Maximum",
            comparison="GreaterThanThreshold",
            description="Uploads that could not be captioned wait in the dead-letter queue. Fix the cause "
            "(`python -m ops status` shows the failures), then `python -m ops redrive`.",
        ),
        AlarmSpec(
            "errors",
            LAMBDA_NAMESPACE,
            "Errors",
            function,
            threshold=settings.errors_alarm_threshold,
            description="The captioning function failed invocations (its logs say why); failed events are "
            "retried and then dead-lettered.",
        ),
        AlarmSpec(
            "throttles",
            LAMBDA_NAMESPACE,
            "Throttles",
            function,
            threshold=settings.throttles_alarm_threshold,
            description="Invocations of the captioning function were throttled: uploads wait (and in "
            "direct mode may age out). Raise reserved concurrency or the account's quota.",
        ),
        AlarmSpec(
            "duration",
            LAMBDA_NAMESPACE,
            "Duration",
            function,
            threshold=duration_threshold_ms,
            statistic=None,
            extended_statistic="p99",
            comparison="GreaterThanThreshold",
            description="p99 duration of the captioning function is over"
            f" {settings.duration_alarm_percent} % of its {settings.timeout} s timeout: invocations are"
            " about to time out. Give it more memory (CPU) or a longer timeout, or smaller batches.",
        ),
    ]
    if upload_queue_name is None:
        specs += [
            AlarmSpec(
                "async-events-dropped",
                LAMBDA_NAMESPACE,
                "AsyncEventsDropped",
                function,
                threshold=1,
                description="S3 events were dropped without being captioned (too old, or retries spent) and "
                "could not be kept: run `python -m ops backfill` to catch up.",
            ),
            AlarmSpec(
                "destination-delivery-failures",
                LAMBDA_NAMESPACE,
                "DestinationDeliveryFailures",
                function,
                threshold=1,
                description="Failed events could not be delivered to the dead-letter queue (its policy, "
                "encryption or existence): they are lost; run `python -m ops backfill` once it is fixed.",
            ),
        ]
    else:
        specs.append(
            AlarmSpec(
                "queue-age",
                SQS_NAMESPACE,
                "ApproximateAgeOfOldestMessage",
                {"QueueName": upload_queue_name},
                threshold=settings.queue_age_alarm_seconds,
                statistic="Maximum",
                description=f"An upload has waited over {settings.queue_age_alarm_seconds} s in the upload "
                "queue: the function is not keeping up (concurrency, errors or throttles).",
            )
        )
    if uploads_rule_name is not None:
        specs.append(
            AlarmSpec(
                "rule-delivery-failures",
                EVENTS_NAMESPACE,
                "FailedInvocations",
                {"RuleName": uploads_rule_name},
                threshold=1,
                description="EventBridge could not deliver upload events to the upload queue (its policy, or "
                "the key policy of kmsKeyArn: docs/deploy.md); undelivered events go to the dead-letter "
                "queue if they can, else are lost: run `python -m ops backfill` once it is fixed.",
            )
        )
    return specs


def create_monitoring(
    name: str,
    settings: PipelineSettings,
    *,
    region: pulumi.Input[str],
    function: CaptioningFunction,
    dead_letter_queue: aws.sqs.Queue,
    upload_queue: aws.sqs.Queue | None,
    parent: pulumi.Resource,
    uploads_rule: aws.cloudwatch.EventRule | None = None,
) -> Monitoring:
    """The topic, its e-mail subscriptions, the alarms and the dashboard (its charts in `region`)."""
    child = pulumi.ResourceOptions(parent=parent)
    topic = aws.sns.Topic(
        f"{name}-alarms", kms_master_key_id=settings.kms_key_arn, tags=settings.tags, opts=child
    )
    subscriptions = [
        aws.sns.TopicSubscription(
            f"{name}-alarms-email-{index}", topic=topic.arn, protocol="email", endpoint=email, opts=child
        )
        for index, email in enumerate(settings.alarm_emails)
    ]
    specs = alarm_specs(
        settings,
        function_name=function.function.name,
        dead_letter_queue_name=dead_letter_queue.name,
        upload_queue_name=upload_queue.name if upload_queue is not None else None,
        uploads_rule_name=uploads_rule.name if uploads_rule is not None else None,
    )
    alarms = {spec.role: _alarm(name, settings, spec, topic, child) for spec in specs}
    # The body is laid out from the settings and which resources exist, never from output values (a mock
    # may leave any of them unset); json_dumps fills the values in where they stand.
    body = dashboard_body(
        settings,
        region=region,
        function_name=function.function.name,
        dead_letter_queue_name=dead_letter_queue.name,
        upload_queue_name=upload_queue.name if upload_queue is not None else None,
        alarm_arns=[alarms[role].arn for role in sorted(alarms)],
    )
    dashboard = aws.cloudwatch.Dashboard(
        f"{name}-dashboard",
        dashboard_name=dashboard_name(name),
        dashboard_body=pulumi.Output.json_dumps(body),
        opts=child,
    )
    return Monitoring(topic, subscriptions, alarms, dashboard)


def _alarm(
    name: str,
    settings: PipelineSettings,
    spec: AlarmSpec,
    topic: aws.sns.Topic,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.MetricAlarm:
    return aws.cloudwatch.MetricAlarm(
        f"{name}-{spec.role}-alarm",
        alarm_description=spec.description,
        namespace=spec.namespace,
        metric_name=spec.metric_name,
        dimensions=spec.dimensions,
        statistic=spec.statistic,
        extended_statistic=spec.extended_statistic,
        comparison_operator=spec.comparison,
        threshold=spec.threshold,
        period=settings.alarm_period,
        evaluation_periods=settings.alarm_evaluation_periods,
        # No data means nothing happened (no uploads, an empty queue): not a reason to page anyone.
        treat_missing_data="notBreaching",
        alarm_actions=[topic.arn],
        ok_actions=[topic.arn],
        tags=settings.tags,
        opts=opts,
    )


def dashboard_name(name: str) -> str:
    """Unique per project, stack and component (dashboard names are per account and region)."""
    raw = f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", raw)[:255]


def dashboard_body(
    settings: PipelineSettings,
    *,
    region: pulumi.Input[str],
    function_name: pulumi.Input[str],
    dead_letter_queue_name: pulumi.Input[str],
    upload_queue_name: pulumi.Input[str] | None,
    alarm_arns: list[pulumi.Input[str]],
) -> dict[str, Any]:
    """The dashboard: the function's own metrics (when emitted), the Lambda and SQS metrics, the alarms.

    Values may be outputs (`pulumi.Output.json_dumps` resolves them); which charts exist depends only on
    the settings and on whether there is an upload queue.
    """
    own: dict[str, pulumi.Input[str]] = dict(
        zip(METRIC_DIMENSIONS, (function_name, SERVICE_NAME), strict=True)
    )

    def emf(metric: MetricName, **options: Any) -> list[Any]:
        return [settings.metrics_namespace, str(metric), *_flat(own), options]

    def lambda_metric(metric: str, **options: Any) -> list[Any]:
        return [LAMBDA_NAMESPACE, metric, "FunctionName", function_name, options]

    def queue_depth(queue_name: pulumi.Input[str], label: str) -> list[Any]:
        return [
            SQS_NAMESPACE,
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            queue_name,
            {"label": label},
        ]

    def chart(title: str, metrics: list[list[Any]], stat: str = "Sum") -> dict[str, Any]:
        return {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "stat": stat,
                "period": DASHBOARD_PERIOD_S,
                "metrics": metrics,
            },
        }

    widgets: list[dict[str, Any]] = []
    if settings.metrics:
        widgets += [
            chart(
                "Uploads captioned / failed per minute",
                [
                    emf(MetricName.IMAGES_CAPTIONED, label="captioned"),
                    emf(MetricName.IMAGES_FAILED, label="failed"),
                ],
            ),
            chart(
                "Caption latency per image (ms)",
                [emf(MetricName.CAPTION_LATENCY, stat=p, label=p) for p in LATENCY_PERCENTILES],
                stat="p50",
            ),
            chart(
                "Duplicates and retries per minute",
                [
                    emf(MetricName.DUPLICATES, label="duplicates"),
                    emf(MetricName.RETRIES, label="retries"),
                ],
            ),
        ]
    widgets += [
        chart(
            "Invocations, errors, throttles",
            [
                lambda_metric(metric, label=metric.lower())
                for metric in ("Invocations", "Errors", "Throttles")
            ],
        ),
        chart("Concurrent executions", [lambda_metric("ConcurrentExecutions", label="max")], stat="Maximum"),
        chart(
            "Duration (ms)",
            [lambda_metric("Duration", stat=p, label=p) for p in ("p50", "p99")],
            stat="p50",
        ),
        chart(
            "Queue depth (messages visible)",
            [queue_depth(dead_letter_queue_name, "dead-letter queue")]
            + ([queue_depth(upload_queue_name, "upload queue")] if upload_queue_name is not None else []),
            stat="Maximum",
        ),
        {
            "type": "alarm",
            "width": 24,
            "height": 4,
            "properties": {"title": "Alarms", "alarms": list(alarm_arns)},
        },
    ]
    return {"widgets": widgets}


def _flat(dimensions: dict[str, pulumi.Input[str]]) -> list[pulumi.Input[str]]:
    return [part for name in sorted(dimensions) for part in (name, dimensions[name])]
