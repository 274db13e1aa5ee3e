"""The images bucket is private, encrypted and TLS-only; the captions table is on-demand and recoverable."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

import pulumi
import pytest

from captioning import CaptioningPipeline, PipelineSettings
from tests.pulumi_mocks import statements, use_mocks


@pulumi.runtime.test
def test_bucket_blocks_every_kind_of_public_access():
    use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings())
    block = pipeline.images_bucket.public_access_block

    def check(values):
        bucket_id, target, *flags = values
        assert target == bucket_id
        assert flags == [True, True, True, True]

    return pulumi.Output.all(
        pipeline.images_bucket.bucket.id,
        block.bucket,
        block.block_public_acls,
        block.block_public_policy,
        block.ignore_public_acls,
        block.restrict_public_buckets,
    ).apply(check)


@pulumi.runtime.test
def test_bucket_is_encrypted_by_default():
    use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings())
    encryption = pipeline.images_bucket.encryption

    def check(values):
        bucket_id, target, rules = values
        assert target == bucket_id
        algorithms = [rule["apply_server_side_encryption_by_default"]["sse_algorithm"] for rule in rules]
        assert algorithms == ["AES256"]

    return pulumi.Output.all(pipeline.images_bucket.bucket.id, encryption.bucket, encryption.rules).apply(
        check
    )


@pulumi.runtime.test
def test_bucket_policy_denies_every_request_without_tls():
    mocks = use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings())
    policy = pipeline.images_bucket.policy

    def check(values):
        bucket_arn, document = values
        (statement,) = statements(document)
        assert statement["Effect"] == "Deny"
        assert statement["Principal"] == "*"
        assert statement["Action"] == "s3:*"
        assert sorted(statement["Resource"]) == [bucket_arn, f"{bucket_arn}/*"]
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        # S3 rejects concurrent changes to a bucket's access settings: the policy waits for the block.
        block_urn = mocks.named("test-images-public-access-block").urn
        assert block_urn in mocks.named("test-images-tls-only").dependencies

    return pulumi.Output.all(pipeline.images_bucket.bucket.arn, policy.policy).apply(check)


@pytest.mark.parametrize("force_destroy", [True, False])
@pulumi.runtime.test
def test_force_destroy_reaches_the_bucket_and_the_repository(force_destroy):
    use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings(force_destroy=force_destroy))

    def check(values):
        assert values == [force_destroy, force_destroy]

    return pulumi.Output.all(
        pipeline.images_bucket.bucket.force_destroy, pipeline.function_image.repository.force_delete
    ).apply(check)


@pulumi.runtime.test
def test_captions_table_is_on_demand_keyed_by_object_key_recoverable_and_encrypted():
    use_mocks()
    table = CaptioningPipeline("test", PipelineSettings()).captions_table

    def check(values):
        billing_mode, hash_key, attributes, recovery, encryption, range_key = values
        assert billing_mode == "PAY_PER_REQUEST"
        assert hash_key == "key"
        assert range_key is None
        assert [(a["name"], a["type"]) for a in attributes] == [("key", "S")]
        assert recovery["enabled"] is True
        assert encryption["enabled"] is True

    return pulumi.Output.all(
        table.billing_mode,
        table.hash_key,
        table.attributes,
        table.point_in_time_recovery,
        table.server_side_encryption,
        table.range_key,
    ).apply(check)
