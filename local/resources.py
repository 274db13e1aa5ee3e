"""The deployed queue-mode or eventbridge-mode resources, created in the emulator from the component's own
definitions.

queue: images bucket --ObjectCreated (the component's key filters)--> upload queue (redrive to a dead-letter
queue). eventbridge: the bucket's EventBridge notifications on (its other notifications kept) --> a rule on
the default bus with the component's pattern --> the same upload queue (the dead-letter queue as the
target's). Both: the captions table keyed by `key`; with caption events, a rule matching them --> a queue to
read them from. Policies, retention, filters and the pattern are imported from the component
(`captioning`), so the emulated pipeline cannot drift from the deployed one. moto (5.2) delivers S3's
EventBridge events to the rules itself and evaluates their patterns (docs/local-pipeline.md says what it
does not do).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import boto3
from botocore.client import BaseClient

from captioning.component import limits, policies
from captioning.component.event_pattern import object_created_pattern
from captioning.component.triggers import OBJECT_CREATED
from captioning.contract.constants import CAPTION_EVENT_SOURCE, TABLE_KEY
from captioning.contract.key_filters import EVERY_KEY, KeyFilter
from local.settings import LOCAL_TRIGGERS
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

    @property
    def uploads_rule(self) -> str:
        """eventbridge: the rule delivering the bucket's Object Created events to the upload queue."""
        return f"{self.prefix}-uploads"

    @property
    def caption_events_rule(self) -> str:
        return f"{self.prefix}-caption-events"

    @property
    def caption_events_queue(self) -> str:
        """Where the caption-events rule delivers (a stand-in for whatever consumes them)."""
        return f"{self.prefix}-caption-events"


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
    trigger: str = "queue"
    caption_events_queue_url: str | None = None
    """With caption events: the queue a rule on the default bus delivers them to."""

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
    trigger: str = "queue",
    existing_bucket: str | None = None,
    caption_events: bool = False,
) -> EmulatedResources:
    """Create the bucket, table, queues and notification (queue) or rule (eventbridge) the component
    creates in that mode.

    `existing_bucket`: caption that bucket instead of creating one; it is left as it is (its encryption,
    public access and other notifications), except that eventbridge mode turns its EventBridge
    notifications on, as its owner would, keeping the rest of its notification configuration. The
    visibility timeout is the function timeout here (the component sets six times it), so a failed
    message comes back as soon as AWS would allow.
    """
    if trigger not in LOCAL_TRIGGERS:
        raise ValueError(f"trigger must be one of {', '.join(LOCAL_TRIGGERS)}, got {trigger!r}")
    if existing_bucket is not None and trigger != "eventbridge":
        raise ValueError(
            "an existing bucket is captioned with trigger eventbridge only (its notifications stay)"
        )
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
    bucket, table = existing_bucket or names.bucket, names.table
    if existing_bucket is None:
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
    if trigger == "queue":
        queue_policy = policies.upload_queue_policy(
            queue_arn=queue_arn, bucket_arn=f"arn:aws:s3:::{bucket}", account_id=MOTO_ACCOUNT_ID
        )
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(queue_policy)})
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={"QueueConfigurations": notification_rules(queue_arn, key_filters)},
        )
    else:
        _connect_eventbridge(
            s3, sqs, probe.client("events"), names, bucket, queue_url, dead_letter_queue_url, key_filters
        )
    caption_events_queue_url = None
    if caption_events:
        caption_events_queue_url = _caption_events_queue(sqs, probe.client("events"), names)
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
        trigger=trigger,
        caption_events_queue_url=caption_events_queue_url,
    )


def _connect_eventbridge(
    s3: BaseClient,
    sqs: BaseClient,
    events: BaseClient,
    names: ResourceNames,
    bucket: str,
    queue_url: str,
    dead_letter_queue_url: str,
    key_filters: Sequence[KeyFilter],
) -> None:
    """What the component's eventbridge trigger makes: the rule, its target and the queues' policies; and
    what the bucket's owner does for an existing bucket, EventBridge notifications on."""
    enable_eventbridge_notifications(s3, bucket)
    prefix = next((rule.prefix for rule in key_filters if rule.prefix), "")
    suffixes = [rule.suffix for rule in key_filters if rule.suffix]
    pattern = object_created_pattern(bucket, prefix, suffixes)
    rule_arn = events.put_rule(Name=names.uploads_rule, EventPattern=json.dumps(pattern), State="ENABLED")[
        "RuleArn"
    ]
    queue_arn, dead_letter_queue_arn = _queue_arn(sqs, queue_url), _queue_arn(sqs, dead_letter_queue_url)
    for url, arn, sid in (
        (queue_url, queue_arn, "AllowUploadsRuleDeliveries"),
        (dead_letter_queue_url, dead_letter_queue_arn, "AllowUploadsRuleDeadLetters"),
    ):
        policy = policies.eventbridge_queue_policy(queue_arn=arn, rule_arn=rule_arn, sid=sid)
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    events.put_targets(
        Rule=names.uploads_rule,
        Targets=[
            {"Id": "upload-queue", "Arn": queue_arn, "DeadLetterConfig": {"Arn": dead_letter_queue_arn}}
        ],
    )


def enable_eventbridge_notifications(s3: BaseClient, bucket: str) -> None:
    """Turn on the bucket's EventBridge notifications, keeping its other notification rules (one
    configuration per bucket: a put replaces it all, so it is read first, as the console does)."""
    configuration = s3.get_bucket_notification_configuration(Bucket=bucket)
    configuration.pop("ResponseMetadata", None)
    configuration["EventBridgeConfiguration"] = {}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=configuration)


def _caption_events_queue(sqs: BaseClient, events: BaseClient, names: ResourceNames) -> str:
    """A rule on the default bus for the function's caption events, delivering to a queue of their own."""
    queue_url = sqs.create_queue(QueueName=names.caption_events_queue)["QueueUrl"]
    pattern = {"source": [CAPTION_EVENT_SOURCE]}
    events.put_rule(Name=names.caption_events_rule, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(
        Rule=names.caption_events_rule, Targets=[{"Id": "caption-events", "Arn": _queue_arn(sqs, queue_url)}]
    )
    return queue_url


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
