"""How an upload reaches the function: S3 invokes it directly, S3 -> SQS -> batches, or the bucket's
EventBridge events -> a rule -> the same queue and batches."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from captioning.component import policies
from captioning.component.function import CaptioningFunction
from captioning.component.settings import PipelineSettings, rule_pattern_json
from captioning.component.storage import CaptionedBucket
from captioning.contract.key_filters import key_filters

OBJECT_CREATED = ["s3:ObjectCreated:*"]


@dataclass
class DirectTrigger:
    permission: aws.lambda_.Permission
    notification: aws.s3.BucketNotification
    invoke_config: aws.lambda_.FunctionEventInvokeConfig


@dataclass
class QueueTrigger:
    queue_policy: aws.sqs.QueuePolicy
    notification: aws.s3.BucketNotification
    event_source_mapping: aws.lambda_.EventSourceMapping


@dataclass
class EventBridgeTrigger:
    notification: aws.s3.BucketNotification | None
    """The bucket's EventBridge notifications: on a created bucket, or with manage_bucket_notifications;
    None on an existing bucket, whose owner turns them on."""
    rule: aws.cloudwatch.EventRule
    queue_policy: aws.sqs.QueuePolicy
    dead_letter_queue_policy: aws.sqs.QueuePolicy
    target: aws.cloudwatch.EventTarget
    event_source_mapping: aws.lambda_.EventSourceMapping


Trigger = DirectTrigger | QueueTrigger | EventBridgeTrigger


def connect_direct(
    name: str,
    settings: PipelineSettings,
    *,
    bucket: CaptionedBucket,
    account_id: pulumi.Input[str],
    function: CaptioningFunction,
    dead_letter_queue: aws.sqs.Queue,
    parent: pulumi.Resource,
) -> DirectTrigger:
    """The bucket invokes the function asynchronously; failed or expired events go to the DLQ."""
    permission = aws.lambda_.Permission(
        f"{name}-s3-invoke",
        action="lambda:InvokeFunction",
        function=function.function.name,
        qualifier=function.qualifier,
        principal="s3.amazonaws.com",
        source_arn=bucket.arn,
        source_account=account_id,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    notification = aws.s3.BucketNotification(
        f"{name}-notification",
        bucket=bucket.name,
        lambda_functions=[
            aws.s3.BucketNotificationLambdaFunctionArgs(
                lambda_function_arn=function.target_arn, events=OBJECT_CREATED, **rule.pulumi_args()
            )
            for rule in key_filters(settings.key_prefix, settings.key_suffixes)
        ],
        # S3 checks it may invoke the function when the notification is saved.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[permission]),
    )
    invoke_config = aws.lambda_.FunctionEventInvokeConfig(
        f"{name}-async-invoke",
        function_name=function.function.name,
        qualifier=function.qualifier,
        maximum_retry_attempts=settings.retry_attempts,
        maximum_event_age_in_seconds=settings.max_event_age,
        destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
            on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                destination=dead_letter_queue.arn
            )
        ),
        # Lambda checks the role may send to the destination when the config is saved.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[function.role_policy]),
    )
    return DirectTrigger(permission, notification, invoke_config)


def _event_source_mapping(
    name: str, settings: PipelineSettings, *, queue: aws.sqs.Queue, function: CaptioningFunction, parent
) -> aws.lambda_.EventSourceMapping:
    """The upload queue feeds the function (its `live` alias when there is one) bounded batches."""
    return aws.lambda_.EventSourceMapping(
        f"{name}-uploads-mapping",
        event_source_arn=queue.arn,
        function_name=function.target_arn,
        batch_size=settings.batch_size,
        maximum_batching_window_in_seconds=settings.batching_window,
        function_response_types=["ReportBatchItemFailures"],
        scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
            maximum_concurrency=settings.queue_max_concurrency
        ),
        # Lambda checks the role may read the queue when the mapping is created.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[function.role_policy]),
    )


def connect_queue(
    name: str,
    settings: PipelineSettings,
    *,
    bucket: CaptionedBucket,
    account_id: pulumi.Input[str],
    queue: aws.sqs.Queue,
    function: CaptioningFunction,
    parent: pulumi.Resource,
) -> QueueTrigger:
    """The bucket notifies the queue; an event source mapping feeds the function bounded batches."""
    queue_policy = aws.sqs.QueuePolicy(
        f"{name}-uploads-policy",
        queue_url=queue.url,
        policy=pulumi.Output.all(queue.arn, bucket.arn, account_id).apply(
            lambda values: json.dumps(
                policies.upload_queue_policy(queue_arn=values[0], bucket_arn=values[1], account_id=values[2])
            )
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    notification = aws.s3.BucketNotification(
        f"{name}-notification",
        bucket=bucket.name,
        queues=[
            aws.s3.BucketNotificationQueueArgs(
                queue_arn=queue.arn, events=OBJECT_CREATED, **rule.pulumi_args()
            )
            for rule in key_filters(settings.key_prefix, settings.key_suffixes)
        ],
        # S3 checks it may send to the queue when the notification is saved.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[queue_policy]),
    )
    mapping = _event_source_mapping(name, settings, queue=queue, function=function, parent=parent)
    return QueueTrigger(queue_policy, notification, mapping)


def _eventbridge_queue_policy(
    resource_name: str, queue: aws.sqs.Queue, rule: aws.cloudwatch.EventRule, sid: str, parent
) -> aws.sqs.QueuePolicy:
    return aws.sqs.QueuePolicy(
        resource_name,
        queue_url=queue.url,
        policy=pulumi.Output.all(queue.arn, rule.arn).apply(
            lambda arns: json.dumps(
                policies.eventbridge_queue_policy(queue_arn=arns[0], rule_arn=arns[1], sid=sid)
            )
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def connect_eventbridge(
    name: str,
    settings: PipelineSettings,
    *,
    bucket: CaptionedBucket,
    queue: aws.sqs.Queue,
    dead_letter_queue: aws.sqs.Queue,
    function: CaptioningFunction,
    parent: pulumi.Resource,
) -> EventBridgeTrigger:
    """The bucket's "Object Created" events, matched by a rule on the default bus, go to the upload queue
    (what failed delivery leaves to the dead-letter queue); the queue feeds the function as in queue mode.

    The function is not offered as the rule's target: through the queue, uploads get the same batching,
    partial-batch failures, redrive and concurrency cap as queue mode, and `ops backfill` the same path.
    """
    child = pulumi.ResourceOptions(parent=parent)
    notification = None
    if settings.creates_bucket or settings.manage_bucket_notifications:
        # Replaces the bucket's notification configuration: on an existing bucket only when asked to.
        notification = aws.s3.BucketNotification(
            f"{name}-eventbridge-notifications", bucket=bucket.name, eventbridge=True, opts=child
        )
    rule = aws.cloudwatch.EventRule(
        f"{name}-uploads-rule",
        description="Images uploaded to the captioning pipeline's bucket (keyPrefix and keySuffixes)",
        event_pattern=bucket.name.apply(lambda bucket_name: rule_pattern_json(settings, bucket_name)),
        tags=settings.tags,
        opts=child,
    )
    queue_policy = _eventbridge_queue_policy(
        f"{name}-uploads-policy", queue, rule, "AllowUploadsRuleDeliveries", parent
    )
    dead_letter_queue_policy = _eventbridge_queue_policy(
        f"{name}-dead-letters-policy", dead_letter_queue, rule, "AllowUploadsRuleDeadLetters", parent
    )
    target = aws.cloudwatch.EventTarget(
        f"{name}-uploads-target",
        rule=rule.name,
        arn=queue.arn,
        dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=dead_letter_queue.arn),
        # EventBridge checks neither policy when the target is saved; events sent before they exist fail.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[queue_policy, dead_letter_queue_policy]),
    )
    mapping = _event_source_mapping(name, settings, queue=queue, function=function, parent=parent)
    return EventBridgeTrigger(notification, rule, queue_policy, dead_letter_queue_policy, target, mapping)
