"""IAM and resource policy documents, as plain dicts built from resolved ARNs.

Kept free of Pulumi so a reader (and a test) sees exactly what is granted.
"""

from __future__ import annotations

from typing import Any

PolicyDocument = dict[str, Any]

QUEUE_CONSUMER_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
"""What active tracing needs (AWSXRayDaemonWriteAccess minus the sampling reads Lambda does not use)."""


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
) -> PolicyDocument:
    """What the function may do, and nothing more.

    Read-only on the images bucket: with write access a bug could upload an object that
    triggers the function again, in a loop. Logs go to its own log group only (the managed
    AWSLambdaBasicExecutionRole would allow every log group). `consumes_queue` (queue mode), not the
    resolved `queue_arn`, decides whether the queue statement is there: an ARN a mock leaves unset must
    not drop the permission silently. With `tracing`, the two X-Ray
    writes; X-Ray has no resource to scope them to, so they are the one `*` resource.
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
    return _document(*statements)


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
