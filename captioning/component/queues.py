"""SQS queues: the dead-letter queue (every mode) and the upload queue (queue and eventbridge modes)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from captioning.component import limits
from captioning.component.settings import PipelineSettings


def queue_encryption(settings: PipelineSettings) -> dict[str, object]:
    """SSE with kms_key_arn's key, else SQS-managed SSE (the two are exclusive)."""
    if settings.kms_key_arn is not None:
        return {"kms_master_key_id": settings.kms_key_arn}
    return {"sqs_managed_sse_enabled": True}


def create_dead_letter_queue(
    name: str, settings: PipelineSettings, *, parent: pulumi.Resource
) -> aws.sqs.Queue:
    """Where events that could not be captioned are kept, for the longest time SQS allows."""
    return aws.sqs.Queue(
        f"{name}-dead-letters",
        message_retention_seconds=limits.SQS_MAX_RETENTION_SECONDS,
        tags=settings.tags,
        opts=pulumi.ResourceOptions(parent=parent),
        **queue_encryption(settings),
    )


def upload_queue_visibility_timeout(settings: PipelineSettings) -> int:
    """Long enough that a message is not redelivered while a batch is still being captioned."""
    return limits.VISIBILITY_TIMEOUT_FACTOR * settings.timeout + settings.batching_window


def create_upload_queue(
    name: str, settings: PipelineSettings, *, dead_letter_queue: aws.sqs.Queue, parent: pulumi.Resource
) -> aws.sqs.Queue:
    """Buffers the bucket's notifications (or EventBridge's deliveries); messages failing
    `max_receive_count` times move to the DLQ."""
    return aws.sqs.Queue(
        f"{name}-uploads",
        visibility_timeout_seconds=upload_queue_visibility_timeout(settings),
        message_retention_seconds=limits.SQS_MAX_RETENTION_SECONDS,
        redrive_policy=dead_letter_queue.arn.apply(
            lambda arn: json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": settings.max_receive_count}
            )
        ),
        tags=settings.tags,
        opts=pulumi.ResourceOptions(parent=parent),
        **queue_encryption(settings),
    )
