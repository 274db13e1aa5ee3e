"""IAM and resource policy documents, as plain dicts built from resolved ARNs.

Kept free of Pulumi so a reader (and a test) sees exactly what is granted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from captioning.contract.constants import CAPTION_EVENT_DETAIL_TYPES, CAPTION_EVENT_SOURCE

PolicyDocument = dict[str, Any]

QUEUE_CONSUMER_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
"""What active tracing needs (AWSXRayDaemonWriteAccess minus the sampling reads Lambda does not use)."""
VPC_NETWORK_INTERFACE_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]
"""What Lambda does with the role to attach a function to a VPC: AWSLambdaVPCAccessExecutionRole's EC2
actions (not its logs actions, which the role has for its own log group). EC2 scopes neither the
Describe calls nor the interfaces Lambda names itself, so they are the second `*` resource."""


@dataclass(frozen=True)
class KeyUse:
    """What the function does with the customer-managed key, service by service (kms:ViaService)."""

    key_arn: str
    region: str
    reads_bucket: bool
    """The images bucket is encrypted with the key (a created bucket; an existing one keeps its own)."""

    def decrypt_services(self) -> list[str]:
        # Reading SSE-KMS objects, receiving from and sending to encrypted queues, reading/writing items.
        return [self._service(s) for s in (("s3",) if self.reads_bucket else ()) + ("sqs", "dynamodb")]

    def generate_data_key_services(self) -> list[str]:
        # Sending to an encrypted queue (the dead-letter queue), writing items.
        return [self._service(s) for s in ("sqs", "dynamodb")]

    def _service(self, service: str) -> str:
        return f"{service}.{self.region}.amazonaws.com"


def _document(*statements: dict[str, Any]) -> PolicyDocument:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def lambda_assume_role_policy() -> PolicyDocument:
    """Trust policy letting only the Lambda service assume the function's role."""
    return _document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )


def function_role_policy(
    *,
    bucket_arn: str,
    key_prefix: str,
    table_arn: str,
    log_group_arn: str,
    dead_letter_queue_arn: str,
    queue_arn: str | None,
    consumes_queue: bool,
    tracing: bool = False,
    key_use: KeyUse | None = None,
    in_vpc: bool = False,
    event_bus_arn: str | None = None,
) -> PolicyDocument:
    """What the function may do, and nothing more.

    Read-only on the images bucket: with write access a bug could upload an object that
    triggers the function again, in a loop. Logs go to its own log group only (the managed
    AWSLambdaBasicExecutionRole would allow every log group). `consumes_queue` (queue mode), not the
    resolved `queue_arn`, decides whether the queue statement is there: an ARN a mock leaves unset must
    not drop the permission silently. With `tracing`, the two X-Ray
    writes; X-Ray has no resource to scope them to, so they are a `*` resource. With `key_use`, the
    customer-managed key's kms:Decrypt and kms:GenerateDataKey, on that key only and only through the
    services that need it; `in_vpc`, the network-interface actions (the other `*` resource);
    `event_bus_arn`, events:PutEvents on that bus for caption events only.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadUploadedImages",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"{bucket_arn}/{key_prefix}*"],
        },
        {
            "Sid": "WriteCaptions",
            "Effect": "Allow",
            "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": [table_arn],
        },
        {
            # A redelivered event is recognised by its item before the object is fetched and captioned.
            "Sid": "RecogniseDuplicates",
            "Effect": "Allow",
            "Action": ["dynamodb:BatchGetItem"],
            "Resource": [table_arn],
        },
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{log_group_arn}:*"],
        },
        {
            # Direct mode's on-failure destination is delivered with the function's role.
            "Sid": "ParkFailedEvents",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": [dead_letter_queue_arn],
        },
    ]
    if consumes_queue:
        statements.append(
            {
                "Sid": "ConsumeUploadQueue",
                "Effect": "Allow",
                "Action": list(QUEUE_CONSUMER_ACTIONS),
                "Resource": [queue_arn],
            }
        )
    if tracing:
        statements.append(
            {"Sid": "SendTraces", "Effect": "Allow", "Action": list(XRAY_ACTIONS), "Resource": ["*"]}
        )
    if key_use is not None:
        statements += key_statements(key_use)
    if in_vpc:
        statements.append(
            {
                "Sid": "AttachToVpc",
                "Effect": "Allow",
                "Action": list(VPC_NETWORK_INTERFACE_ACTIONS),
                "Resource": ["*"],
            }
        )
    if event_bus_arn is not None:
        statements.append(caption_events_statement(event_bus_arn))
    return _document(*statements)


def key_statements(key_use: KeyUse) -> list[dict[str, Any]]:
    """The function's use of the customer-managed key: decrypt and generate data keys, through the named
    services only (a leaked credential cannot decrypt arbitrary ciphertext with the key directly)."""
    return [
        {
            "Sid": "DecryptWithPipelineKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": [key_use.key_arn],
            "Condition": {"StringEquals": {"kms:ViaService": key_use.decrypt_services()}},
        },
        {
            "Sid": "EncryptWithPipelineKey",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey"],
            "Resource": [key_use.key_arn],
            "Condition": {"StringEquals": {"kms:ViaService": key_use.generate_data_key_services()}},
        },
    ]


def caption_events_statement(event_bus_arn: str) -> dict[str, Any]:
    """events:PutEvents on one bus, for the caption events' source and detail types only."""
    return {
        "Sid": "PublishCaptionEvents",
        "Effect": "Allow",
        "Action": ["events:PutEvents"],
        "Resource": [event_bus_arn],
        "Condition": {
            "StringEquals": {
                "events:source": CAPTION_EVENT_SOURCE,
                "events:detail-type": sorted(CAPTION_EVENT_DETAIL_TYPES.values()),
            }
        },
    }


def event_bus_arn(*, region: str, account_id: str, bus_name: str | None) -> str:
    """The ARN of the bus caption events go to: `bus_name`, or the account's default bus."""
    return f"arn:aws:events:{region}:{account_id}:event-bus/{bus_name or 'default'}"


def tls_only_bucket_policy(bucket_arn: str) -> PolicyDocument:
    """Deny every request to the bucket or its objects that does not arrive over TLS."""
    return _document(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )


def upload_queue_policy(*, queue_arn: str, bucket_arn: str, account_id: str) -> PolicyDocument:
    """Let only this bucket (in this account) send its notifications to the upload queue."""
    return _document(
        {
            "Sid": "AllowImagesBucketNotifications",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {
                "ArnEquals": {"aws:SourceArn": bucket_arn},
                "StringEquals": {"aws:SourceAccount": account_id},
            },
        }
    )


def eventbridge_queue_policy(*, queue_arn: str, rule_arn: str, sid: str) -> PolicyDocument:
    """Let EventBridge send to the queue for this one rule only (the upload queue: its target; the
    dead-letter queue: the target's dead-letter queue)."""
    return _document(
        {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
        }
    )


def image_pull_repository_policy(account_id: str) -> PolicyDocument:
    """Let Lambda pull the function image, for functions of this account only."""
    return _document(
        {
            "Sid": "LambdaImagePull",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Condition": {"StringLike": {"aws:sourceArn": f"arn:aws:lambda:*:{account_id}:function:*"}},
        }
    )


def keep_last_images_lifecycle_policy(count: int) -> PolicyDocument:
    """ECR lifecycle policy expiring all but the newest `count` images."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Keep the last {count} images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": count,
                },
                "action": {"type": "expire"},
            }
        ]
    }
