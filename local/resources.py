"""The deployed queue-mode resources, created in the emulator from the component's own definitions.

Images bucket --ObjectCreated (the component's key filters)--> upload queue (redrive to a dead-letter
queue) ; captions table keyed by `key`. Policies, retention and filters are imported from the component
(`captioning`), so the emulated pipeline cannot drift from the deployed one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import boto3
from botocore.client import BaseClient

from captioning.component import limits, policies
from captioning.component.triggers import OBJECT_CREATED
from captioning.contract.constants import TABLE_KEY
from captioning.contract.key_filters import EVERY_KEY, KeyFilter
from ops.aws import MOTO_ACCOUNT_ID, MOTO_CLIENT_CREDENTIALS, MOTO_REGION

logger = logging.getLogger(__name__)

DEFAULT_NAME = "captioning-local"


@dataclass(frozen=True)
class ResourceNames:
    """What create_resources names its resources, from one prefix."""

    prefix: str = DEFAULT_NAME

    @property
    def bucket(self) -> str:
        return f"{self.prefix}-images"

    @property
    def table(self) -> str:
        return f"{self.prefix}-captions"

    @property
    def queue(self) -> str:
        return f"{self.prefix}-queue"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}-dlq"


@dataclass(frozen=True)
class EmulatedResources:
    """Names and addresses of the resources in the emulator."""

    endpoint_url: str | None
    """None: AWS's own endpoints (moto's in-process mock_aws intercepts them in tests)."""
    region: str
    bucket: str
    table: str
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    visibility_timeout_s: int
    max_receive_count: int

    def client(self, service: str) -> BaseClient:
        """A boto3 client for one service of the emulator, independent of the process environment."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            **MOTO_CLIENT_CREDENTIALS,
        )


def create_resources(
    endpoint_url: str | None,
    *,
    name: str = DEFAULT_NAME,
    visibility_timeout_s: int,
    max_receive_count: int,
    key_filters: Sequence[KeyFilter] = EVERY_KEY,
) -> EmulatedResources:
    """Create the bucket, table, queues and notification the component creates in queue mode.

    The visibility timeout is the function timeout here (the component sets six times it), so a
    failed message comes back as soon as AWS would allow.
    """
    if visibility_timeout_s < 1:
        raise ValueError(f"visibility timeout must be at least 1 s, got {visibility_timeout_s}")
    low, high = limits.SQS_MAX_RECEIVE_COUNT
    if not low <= max_receive_count <= high:
        raise ValueError(f"maxReceiveCount must be {low}-{high}, got {max_receive_count}")
    probe = EmulatedResources(
        endpoint_url, MOTO_REGION, "", "", "", "", "", visibility_timeout_s, max_receive_count
    )
    s3, sqs, dynamodb = probe.client("s3"), probe.client("sqs"), probe.client("dynamodb")
    names = ResourceNames(name)
    bucket, table = names.bucket, names.table
    _create_bucket(s3, bucket)
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": TABLE_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": TABLE_KEY, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    retention = str(limits.SQS_MAX_RETENTION_SECONDS)
    dead_letter_queue_url = sqs.create_queue(
        QueueName=names.dead_letter_queue, Attributes={"MessageRetentionPeriod": retention}
    )["QueueUrl"]
    redrive = {
        "deadLetterTargetArn": _queue_arn(sqs, dead_letter_queue_url),
        "maxReceiveCount": max_receive_count,
    }
    queue_url = sqs.create_queue(
        QueueName=names.queue,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout_s),
            "MessageRetentionPeriod": retention,
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    queue_arn = _queue_arn(sqs, queue_url)
    queue_policy = policies.upload_queue_policy(
        queue_arn=queue_arn, bucket_arn=f"arn:aws:s3:::{bucket}", account_id=MOTO_ACCOUNT_ID
    )
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(queue_policy)})
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": notification_rules(queue_arn, key_filters)},
    )
    logger.info("emulator ready at %s: bucket %s, queue %s, table %s", endpoint_url, bucket, queue_url, table)
    return EmulatedResources(
        endpoint_url=endpoint_url,
        region=MOTO_REGION,
        bucket=bucket,
        table=table,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dead_letter_queue_url=dead_letter_queue_url,
        visibility_timeout_s=visibility_timeout_s,
        max_receive_count=max_receive_count,
    )


def notification_rules(queue_arn: str, key_filters: Sequence[KeyFilter]) -> list[dict]:
    """The bucket's queue notification rules, one per key filter (as captioning/component/triggers.py makes
    them)."""
    rules = []
    for key_filter in key_filters:
        rule: dict = {"QueueArn": queue_arn, "Events": list(OBJECT_CREATED)}
        s3_filter = key_filter.s3_filter()
        if s3_filter is not None:
            rule["Filter"] = s3_filter
        rules.append(rule)
    return rules


def _create_bucket(s3: BaseClient, bucket: str) -> None:
    """Private and encrypted by default, as captioning/component/storage.py makes the images bucket. Not its
    TLS-only policy: moto enforces that one, and the emulator speaks plain HTTP on 127.0.0.1."""
    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def _queue_arn(sqs: BaseClient, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
