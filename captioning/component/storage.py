"""The images bucket (private, encrypted, TLS only) and the captions table."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from captioning.component import policies
from captioning.contract.constants import TABLE_KEY


@dataclass
class ImagesBucket:
    bucket: aws.s3.Bucket
    public_access_block: aws.s3.BucketPublicAccessBlock
    encryption: aws.s3.BucketServerSideEncryptionConfiguration
    policy: aws.s3.BucketPolicy


def create_images_bucket(
    name: str, *, force_destroy: bool, tags: dict[str, str], parent: pulumi.Resource
) -> ImagesBucket:
    """The bucket users upload to: no public access, SSE-S3 by default, TLS-only requests."""
    child = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(f"{name}-images", force_destroy=force_destroy, tags=tags, opts=child)
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
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"
                ),
            )
        ],
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


def create_captions_table(name: str, *, tags: dict[str, str], parent: pulumi.Resource) -> aws.dynamodb.Table:
    """One item per object key: on-demand, encrypted, with point-in-time recovery."""
    return aws.dynamodb.Table(
        f"{name}-captions",
        billing_mode="PAY_PER_REQUEST",
        hash_key=TABLE_KEY,
        attributes=[aws.dynamodb.TableAttributeArgs(name=TABLE_KEY, type="S")],
        point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
        server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
