"""The images bucket (private, encrypted, TLS only; or the user's existing bucket, left as it is) and the
captions table."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from captioning.component import policies
from captioning.component.settings import PipelineSettings
from captioning.contract.constants import TABLE_KEY

TABLE_STREAM_VIEW = "NEW_IMAGE"
"""What the table's stream carries (tableStream): each item as written, the caption or the failure."""


@dataclass
class ImagesBucket:
    bucket: aws.s3.Bucket
    public_access_block: aws.s3.BucketPublicAccessBlock
    encryption: aws.s3.BucketServerSideEncryptionConfiguration
    policy: aws.s3.BucketPolicy


@dataclass
class CaptionedBucket:
    """The bucket the pipeline captions: the one it created (`created`), or the user's existing bucket,
    of which the component creates nothing (at most its EventBridge notifications, on request)."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    created: ImagesBucket | None


def existing_bucket(name: str) -> CaptionedBucket:
    """The user's bucket, named; nothing is read from or registered on it here."""
    return CaptionedBucket(
        name=pulumi.Output.from_input(name),
        arn=pulumi.Output.from_input(f"arn:aws:s3:::{name}"),
        created=None,
    )


def _default_encryption(
    kms_key_arn: str | None,
) -> aws.s3.BucketServerSideEncryptionConfigurationRuleArgs:
    if kms_key_arn is None:
        by_default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="AES256"
        )
        return aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=by_default
        )
    by_default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
        sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
    )
    # The bucket key: S3 asks KMS for a data key per bucket and period, not per object (cost, throttling).
    return aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
        apply_server_side_encryption_by_default=by_default, bucket_key_enabled=True
    )


def create_images_bucket(name: str, settings: PipelineSettings, *, parent: pulumi.Resource) -> ImagesBucket:
    """The bucket users upload to: no public access, SSE-S3 (or SSE-KMS with kms_key_arn), TLS-only."""
    child = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(
        f"{name}-images", force_destroy=settings.force_destroy, tags=settings.tags, opts=child
    )
    public_access_block = aws.s3.BucketPublicAccessBlock(
        f"{name}-images-public-access-block",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-images-encryption",
        bucket=bucket.id,
        rules=[_default_encryption(settings.kms_key_arn)],
        opts=child,
    )
    policy = aws.s3.BucketPolicy(
        f"{name}-images-tls-only",
        bucket=bucket.id,
        policy=bucket.arn.apply(lambda arn: json.dumps(policies.tls_only_bucket_policy(arn))),
        # S3 refuses concurrent changes to one bucket's access settings; apply them in order.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[public_access_block]),
    )
    return ImagesBucket(bucket, public_access_block, encryption, policy)


def captioned_bucket(name: str, settings: PipelineSettings, *, parent: pulumi.Resource) -> CaptionedBucket:
    """The bucket of these settings: existing_bucket_name's, else a new one."""
    if settings.existing_bucket_name is not None:
        return existing_bucket(settings.existing_bucket_name)
    created = create_images_bucket(name, settings, parent=parent)
    return CaptionedBucket(name=created.bucket.bucket, arn=created.bucket.arn, created=created)


def create_captions_table(
    name: str, settings: PipelineSettings, *, parent: pulumi.Resource
) -> aws.dynamodb.Table:
    """One item per object key: on-demand, encrypted (with kms_key_arn's key when set), with point-in-time
    recovery, and a stream of new images with table_stream."""
    stream = {"stream_enabled": True, "stream_view_type": TABLE_STREAM_VIEW} if settings.table_stream else {}
    return aws.dynamodb.Table(
        f"{name}-captions",
        billing_mode="PAY_PER_REQUEST",
        hash_key=TABLE_KEY,
        attributes=[aws.dynamodb.TableAttributeArgs(name=TABLE_KEY, type="S")],
        point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
        server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
            enabled=True, kms_key_arn=settings.kms_key_arn
        ),
        tags=settings.tags,
        opts=pulumi.ResourceOptions(parent=parent),
        **stream,
    )
