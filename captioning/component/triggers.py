"""How an upload reaches the function: S3 invokes it directly, or S3 -> SQS -> batches."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from captioning.component import policies
from captioning.component.function import CaptioningFunction
from captioning.component.settings import PipelineSettings
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


def connect_direct(
    name: str,
    settings: PipelineSettings,
    *,
    bucket: aws.s3.Bucket,
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
        bucket=bucket.id,
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


def connect_queue(
    name: str,
    settings: PipelineSettings,
    *,
    bucket: aws.s3.Bucket,
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
        bucket=bucket.id,
        queues=[
            aws.s3.BucketNotificationQueueArgs(
                queue_arn=queue.arn, events=OBJECT_CREATED, **rule.pulumi_args()
            )
            for rule in key_filters(settings.key_prefix, settings.key_suffixes)
        ],
        # S3 checks it may send to the queue when the notification is saved.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[queue_policy]),
    )
    event_source_mapping = aws.lambda_.EventSourceMapping(
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
    return QueueTrigger(queue_policy, notification, event_source_mapping)
