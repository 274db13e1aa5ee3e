"""The deployed queue-mode resources, served by moto on 127.0.0.1 and created as the component would.

Images bucket --ObjectCreated--> queue (redrive to a dead-letter queue) ; captions table keyed by `key`.
These are real AWS APIs over HTTP (moto's server), not in-process mocks, so boto3 in the function,
the AWS CLI and any SDK can talk to them through the printed endpoint.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import boto3
from botocore.client import BaseClient

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # moto ignores them

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deployment:
    """Names and addresses of the emulated resources."""

    endpoint_url: str
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
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )


class Emulator:
    """Context manager: starts moto's server on a free port and creates the pipeline's resources."""

    def __init__(
        self,
        *,
        name: str = "captioning-local",
        port: int = 0,
        visibility_timeout_s: int = 30,
        max_receive_count: int = 3,
    ) -> None:
        if visibility_timeout_s < 1:
            raise ValueError(f"visibility timeout must be at least 1 s, got {visibility_timeout_s}")
        if max_receive_count < 1:
            raise ValueError(f"maxReceiveCount must be at least 1, got {max_receive_count}")
        self._name = name
        self._port = port
        self._visibility_timeout_s = visibility_timeout_s
        self._max_receive_count = max_receive_count
        self._server: Any = None
        self._restore_clock: Callable[[], None] = lambda: None
        self.deployment: Deployment | None = None

    def __enter__(self) -> Deployment:
        from moto.server import ThreadedMotoServer  # slow to import: only once arguments are checked

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per API call otherwise
        self._restore_clock = _use_fast_sqs_clock()

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        endpoint_url = f"http://{host}:{port}"
        # moto keeps its state per process, not per server: start from an empty account.
        reset = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")  # noqa: S310  loopback http
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310  our own loopback server
        self.deployment = _create_resources(
            endpoint_url=endpoint_url,
            name=self._name,
            visibility_timeout_s=self._visibility_timeout_s,
            max_receive_count=self._max_receive_count,
        )
        return self.deployment

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._restore_clock()


def _use_fast_sqs_clock() -> Callable[[], None]:
    """Give moto's SQS a cheaper "now"; returns how to put moto's own back.

    moto checks every queued message's visibility on each ReceiveMessage, some thirty times per
    call, and its clock helper builds datetimes (so freezegun can move time). With a thousand
    uploads queued that is about a second per receive and throttles the whole pipeline; the same
    epoch time from time.time() makes it 15-20x faster. Calls with an explicit datetime keep moto's code.
    """
    import moto.sqs.models as sqs_models

    original_seconds, original_millis = sqs_models.unix_time, sqs_models.unix_time_millis

    def seconds(dt: Any = None) -> float:
        return time.time() if dt is None else original_seconds(dt)

    def millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else original_millis(dt)

    sqs_models.unix_time, sqs_models.unix_time_millis = seconds, millis

    def restore() -> None:
        sqs_models.unix_time, sqs_models.unix_time_millis = original_seconds, original_millis

    return restore


def _create_resources(
    *, endpoint_url: str, name: str, visibility_timeout_s: int, max_receive_count: int
) -> Deployment:
    probe = Deployment(endpoint_url, REGION, "", "", "", "", "", visibility_timeout_s, max_receive_count)
    s3, sqs, dynamodb = probe.client("s3"), probe.client("sqs"), probe.client("dynamodb")
    bucket, table = f"{name}-images", f"{name}-captions"

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

    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )

    fourteen_days_s = str(14 * 24 * 3600)
    dead_letter_queue_url = sqs.create_queue(
        QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": fourteen_days_s}
    )["QueueUrl"]
    dead_letter_queue_arn = sqs.get_queue_attributes(
        QueueUrl=dead_letter_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=f"{name}-queue",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout_s),
            "MessageRetentionPeriod": fourteen_days_s,
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": max_receive_count}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.set_queue_attributes(
        QueueUrl=queue_url, Attributes={"Policy": json.dumps(_queue_policy(queue_arn, bucket))}
    )

    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    logger.info("emulator ready at %s: bucket %s, queue %s, table %s", endpoint_url, bucket, queue_url, table)
    return Deployment(
        endpoint_url=endpoint_url,
        region=REGION,
        bucket=bucket,
        table=table,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dead_letter_queue_url=dead_letter_queue_url,
        visibility_timeout_s=visibility_timeout_s,
        max_receive_count=max_receive_count,
    )


def _queue_policy(queue_arn: str, bucket: str) -> dict:
    """Only this bucket may send to the queue (moto does not enforce it; AWS does)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"},
                    "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
                },
            }
        ],
    }
