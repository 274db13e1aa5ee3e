"""Each trigger mode creates its own wiring, and nothing of the other mode."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

import json

import pulumi
import pytest

from captioning import CaptioningPipeline, PipelineSettings
from tests.pulumi_mocks import ACCOUNT_ID, deploy, statements, use_mocks

DIRECT_ONLY = (
    "aws:lambda/permission:Permission",
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
)
QUEUE_ONLY = ("aws:sqs/queuePolicy:QueuePolicy", "aws:lambda/eventSourceMapping:EventSourceMapping")


# --- direct: the bucket invokes the function ------------------------------------------------------


@pulumi.runtime.test
def test_direct_permission_lets_only_this_bucket_in_this_account_invoke():
    use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings(trigger="direct"))
    permission = pipeline.trigger.permission

    def check(values):
        action, principal, function, source_arn, source_account, bucket_arn, function_name = values
        assert (action, principal) == ("lambda:InvokeFunction", "s3.amazonaws.com")
        assert function == function_name
        assert source_arn == bucket_arn
        assert source_account == ACCOUNT_ID

    return pulumi.Output.all(
        permission.action,
        permission.principal,
        permission.function,
        permission.source_arn,
        permission.source_account,
        pipeline.images_bucket.bucket.arn,
        pipeline.captioning_function.function.name,
    ).apply(check)


@pulumi.runtime.test
def test_direct_notification_filters_keys_and_waits_for_the_permission():
    mocks = use_mocks()
    args = PipelineSettings(trigger="direct", key_prefix="incoming/", key_suffixes=(".jpg", ".png"))
    pipeline = CaptioningPipeline("test", args)
    notification = pipeline.trigger.notification

    def check(values):
        bucket, bucket_id, rules, function_arn = values
        assert bucket == bucket_id
        assert [
            (r["events"], r["filter_prefix"], r["filter_suffix"], r["lambda_function_arn"]) for r in rules
        ] == [
            (["s3:ObjectCreated:*"], "incoming/", ".jpg", function_arn),
            (["s3:ObjectCreated:*"], "incoming/", ".png", function_arn),
        ]
        # S3 validates the destination when the notification is saved.
        assert mocks.named("test-s3-invoke").urn in mocks.named("test-notification").dependencies

    return pulumi.Output.all(
        notification.bucket,
        pipeline.images_bucket.bucket.id,
        notification.lambda_functions,
        pipeline.captioning_function.function.arn,
    ).apply(check)


@pulumi.runtime.test
def test_without_suffixes_every_object_created_triggers_once():
    use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings(key_suffixes=()))

    def check(values):
        (rules,) = values
        assert len(rules) == 1
        assert rules[0]["events"] == ["s3:ObjectCreated:*"]
        assert rules[0].get("filter_prefix") is None and rules[0].get("filter_suffix") is None

    return pulumi.Output.all(pipeline.trigger.notification.lambda_functions).apply(check)


@pulumi.runtime.test
def test_direct_failures_retry_then_park_in_the_dead_letter_queue():
    mocks = use_mocks()
    args = PipelineSettings(trigger="direct", retry_attempts=1, max_event_age=3600)
    pipeline = CaptioningPipeline("test", args)
    invoke_config = pipeline.trigger.invoke_config

    def check(values):
        function, retries, age, destinations, dlq_arn, function_name = values
        assert function == function_name
        assert (retries, age) == (1, 3600)
        assert destinations["on_failure"]["destination"] == dlq_arn
        # Lambda checks the role may send to the destination when the config is saved.
        assert mocks.named("test-function-policy").urn in mocks.named("test-async-invoke").dependencies

    return pulumi.Output.all(
        invoke_config.function_name,
        invoke_config.maximum_retry_attempts,
        invoke_config.maximum_event_age_in_seconds,
        invoke_config.destination_config,
        pipeline.dead_letter_queue.arn,
        pipeline.captioning_function.function.name,
    ).apply(check)


def test_direct_mode_creates_no_queue_wiring():
    mocks, pipeline = deploy(lambda: CaptioningPipeline("test", PipelineSettings(trigger="direct")))
    assert pipeline.upload_queue is None and pipeline.queue_url is None
    assert [r.name for r in mocks.of_type("aws:sqs/queue:Queue")] == ["test-dead-letters"]
    assert mocks.named("test-dead-letters").inputs["messageRetentionSeconds"] == 14 * 24 * 3600
    assert "queues" not in mocks.named("test-notification").inputs
    for typ in QUEUE_ONLY:
        assert not mocks.of_type(typ), typ
    for typ in DIRECT_ONLY:
        assert len(mocks.of_type(typ)) == 1, typ


# --- queue: bucket -> SQS -> event source mapping -------------------------------------------------


@pulumi.runtime.test
def test_upload_queue_outlasts_the_function_and_redrives_to_the_dead_letter_queue():
    use_mocks()
    args = PipelineSettings(
        trigger="queue", timeout=200, batching_window=5, max_receive_count=4, reserved_concurrency=5
    )
    pipeline = CaptioningPipeline("test", args)
    queue = pipeline.upload_queue

    def check(values):
        visibility, retention, redrive, dlq_arn, queue_url, exported_url = values
        assert visibility == 6 * 200 + 5
        assert retention == 14 * 24 * 3600
        policy = json.loads(redrive)
        assert policy == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 4}
        assert isinstance(policy["maxReceiveCount"], int)
        assert exported_url == queue_url

    return pulumi.Output.all(
        queue.visibility_timeout_seconds,
        queue.message_retention_seconds,
        queue.redrive_policy,
        pipeline.dead_letter_queue.arn,
        queue.url,
        pipeline.queue_url,
    ).apply(check)


@pulumi.runtime.test
def test_queue_policy_admits_only_this_bucket():
    use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings(trigger="queue", reserved_concurrency=5))
    queue_policy = pipeline.trigger.queue_policy

    def check(values):
        policy_queue_url, document, queue_url, queue_arn, bucket_arn = values
        assert policy_queue_url == queue_url
        (statement,) = statements(document)
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Resource"] == queue_arn
        assert statement["Condition"] == {
            "ArnEquals": {"aws:SourceArn": bucket_arn},
            "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
        }

    return pulumi.Output.all(
        queue_policy.queue_url,
        queue_policy.policy,
        pipeline.upload_queue.url,
        pipeline.upload_queue.arn,
        pipeline.images_bucket.bucket.arn,
    ).apply(check)


@pulumi.runtime.test
def test_queue_notification_sends_filtered_keys_to_the_queue_after_its_policy():
    mocks = use_mocks()
    args = PipelineSettings(trigger="queue", reserved_concurrency=5, key_suffixes=(".jpg",))
    pipeline = CaptioningPipeline("test", args)
    notification = pipeline.trigger.notification

    def check(values):
        queues, lambda_functions, queue_arn = values
        assert [(q["queue_arn"], q["events"], q["filter_suffix"]) for q in queues] == [
            (queue_arn, ["s3:ObjectCreated:*"], ".jpg")
        ]
        assert lambda_functions is None
        assert mocks.named("test-uploads-policy").urn in mocks.named("test-notification").dependencies

    return pulumi.Output.all(
        notification.queues, notification.lambda_functions, pipeline.upload_queue.arn
    ).apply(check)


@pytest.mark.parametrize(
    ("reserved", "explicit", "expected"),
    [(6, None, 6), (6, 3, 3), (None, None, 10), (None, 50, 50)],
)
@pulumi.runtime.test
def test_event_source_mapping_batches_reports_partial_failures_and_caps_concurrency(
    reserved, explicit, expected
):
    mocks = use_mocks()
    args = PipelineSettings(
        trigger="queue",
        memory_size=10240,  # 50 images per call: the sizing check asks about 6.7 GB for the default model
        batch_size=50,
        batching_window=3,
        reserved_concurrency=reserved,
        max_concurrency=explicit,
    )
    pipeline = CaptioningPipeline("test", args)
    mapping = pipeline.trigger.event_source_mapping

    def check(values):
        source, target, batch, window, response_types, scaling, queue_arn, function_arn = values
        assert (source, target) == (queue_arn, function_arn)
        assert (batch, window) == (50, 3)
        assert response_types == ["ReportBatchItemFailures"]
        assert scaling["maximum_concurrency"] == expected
        assert mocks.named("test-function-policy").urn in mocks.named("test-uploads-mapping").dependencies

    return pulumi.Output.all(
        mapping.event_source_arn,
        mapping.function_name,
        mapping.batch_size,
        mapping.maximum_batching_window_in_seconds,
        mapping.function_response_types,
        mapping.scaling_config,
        pipeline.upload_queue.arn,
        pipeline.captioning_function.function.arn,
    ).apply(check)


def test_queue_mode_creates_no_direct_invocation():
    mocks, _ = deploy(
        lambda: CaptioningPipeline("test", PipelineSettings(trigger="queue", reserved_concurrency=5))
    )
    assert "lambdaFunctions" not in mocks.named("test-notification").inputs
    for typ in DIRECT_ONLY:
        assert not mocks.of_type(typ), typ
    for typ in QUEUE_ONLY:
        assert len(mocks.of_type(typ)) == 1, typ
