"""Eventbridge mode and an existing bucket: the bucket's EventBridge events reach the upload queue through
one rule, and a bucket the component did not create is left exactly as it is."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

import json

import pulumi
import pytest
from moto.events.models import EventPattern

from captioning import CaptioningPipeline, PipelineSettings
from captioning.component.event_pattern import key_matchers, object_created_pattern
from tests.pulumi_mocks import ACCOUNT_ID, CaptioningMocks, Registration, deploy, statements, use_mocks

BUCKET = "aws:s3/bucket:Bucket"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# Everything that would change a bucket's configuration (the bucket itself aside).
BUCKET_CONFIGURATION_TYPES = (
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketAcl:BucketAcl",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration",
    "aws:s3/bucketLogging:BucketLogging",
    NOTIFICATION,
)
EXISTING = "their-photos"


def _deploy(**settings) -> tuple[CaptioningMocks, CaptioningPipeline]:
    return deploy(lambda: CaptioningPipeline("test", PipelineSettings(trigger="eventbridge", **settings)))


def _upload_queue(mocks: CaptioningMocks) -> Registration:
    return mocks.named("test-uploads")


def _s3_event(bucket: str, key: str) -> dict:
    """An "Object Created" event as S3 sends it to EventBridge (the fields a pattern can match)."""
    return {
        "version": "0",
        "id": "1",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "account": ACCOUNT_ID,
        "region": "us-east-1",
        "time": "2026-12-03T00:00:00Z",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "size": 1}},
    }


def _matches(pattern: dict, event: dict) -> bool:
    return EventPattern.load(json.dumps(pattern)).matches_event(event)


# --- the rule's pattern: prefix AND one of the suffixes ------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "suffixes", "key", "delivered"),
    [
        ("in/", (".jpg", ".png"), "in/a.jpg", True),
        ("in/", (".jpg", ".png"), "in/deep/b.png", True),
        ("in/", (".jpg", ".png"), "in/a.gif", False),
        ("in/", (".jpg", ".png"), "out/a.jpg", False),
        ("in/", (".jpg", ".png"), "a.jpg", False),
        ("", (".jpg",), "x/y.jpg", True),
        ("", (".jpg",), "x/y.JPG", False),  # case-sensitive, as S3's filters
        ("in/", (), "in/anything", True),
        ("in/", (), "elsewhere", False),
        ("", (), "anything at all", True),
        ("a*b/", (".jpg",), "a*b/c.jpg", True),  # the prefix's `*` is a literal, not a wildcard
        ("a*b/", (".jpg",), "aXXb/c.jpg", False),
    ],
)
def test_the_pattern_delivers_what_the_s3_filters_would(prefix, suffixes, key, delivered):
    """Checked with moto's own EventBridge matcher (the local pipeline's emulator)."""
    pattern = object_created_pattern("photos", prefix, suffixes)
    assert _matches(pattern, _s3_event("photos", key)) is delivered


def test_the_pattern_matches_this_bucket_and_object_created_only():
    pattern = object_created_pattern("photos", "", (".jpg",))
    assert _matches(pattern, _s3_event("photos", "a.jpg"))
    assert not _matches(pattern, _s3_event("other", "a.jpg"))
    assert not _matches(pattern, {**_s3_event("photos", "a.jpg"), "detail-type": "Object Deleted"})
    assert not _matches(pattern, {**_s3_event("photos", "a.jpg"), "source": "captioning"})


def test_with_a_prefix_and_suffixes_each_suffix_is_one_wildcard():
    assert key_matchers("in/", (".jpg", ".png")) == [{"wildcard": "in/*.jpg"}, {"wildcard": "in/*.png"}]
    assert key_matchers("", (".jpg",)) == [{"suffix": ".jpg"}]
    assert key_matchers("in/", ()) == [{"prefix": "in/"}]
    assert key_matchers("", ()) == []


# --- eventbridge mode on a created bucket ----------------------------------------------------------


def test_eventbridge_mode_wires_bucket_rule_queue_and_function():
    mocks, _ = _deploy(key_prefix="in/", key_suffixes=(".jpg",), batch_size=5)
    (bucket,) = mocks.of_type(BUCKET)
    (notification,) = mocks.of_type(NOTIFICATION)
    # The created bucket sends its events to EventBridge, and notifies nothing directly.
    assert notification.inputs["bucket"] == bucket.outputs["bucket"]
    assert notification.inputs["eventbridge"] is True
    assert not notification.inputs.get("queues") and not notification.inputs.get("lambdaFunctions")
    (rule,) = mocks.of_type(RULE)
    assert json.loads(rule.inputs["eventPattern"]) == object_created_pattern(
        bucket.outputs["bucket"], "in/", (".jpg",)
    )
    (target,) = mocks.of_type(TARGET)
    queue, dead_letters = _upload_queue(mocks), mocks.named("test-dead-letters")
    assert (target.inputs["rule"], target.inputs["arn"]) == (rule.outputs["name"], queue.outputs["arn"])
    assert target.inputs["deadLetterConfig"] == {"arn": dead_letters.outputs["arn"]}
    (mapping,) = mocks.of_type(MAPPING)
    assert mapping.inputs["eventSourceArn"] == queue.outputs["arn"]
    assert mapping.inputs["batchSize"] == 5
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    # The queue's redrive and the alarms are queue mode's.
    assert json.loads(queue.inputs["redrivePolicy"])["deadLetterTargetArn"] == dead_letters.outputs["arn"]
    assert mocks.named("test-queue-age-alarm")


def test_only_the_rule_may_send_to_the_queues_and_the_target_waits_for_that():
    mocks, _ = _deploy()
    (rule,) = mocks.of_type(RULE)
    policies = {p.name: p for p in mocks.of_type(QUEUE_POLICY)}
    assert set(policies) == {"test-uploads-policy", "test-dead-letters-policy"}
    for policy_name, queue_name in (
        ("test-uploads-policy", "test-uploads"),
        ("test-dead-letters-policy", "test-dead-letters"),
    ):
        queue = mocks.named(queue_name)
        assert policies[policy_name].inputs["queueUrl"] == queue.outputs["url"]
        (statement,) = statements(policies[policy_name].inputs["policy"])
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert (statement["Action"], statement["Resource"]) == ("sqs:SendMessage", queue.outputs["arn"])
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule.outputs["arn"]}}
    target = mocks.named("test-uploads-target")
    assert {policy.urn for policy in policies.values()} <= target.dependencies


def test_eventbridge_mode_has_no_s3_invoke_permission_nor_async_config():
    mocks, _ = _deploy()
    assert mocks.of_type("aws:lambda/permission:Permission") == []
    assert mocks.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig") == []


# --- an existing bucket -------------------------------------------------------------------------


@pytest.mark.parametrize("manage", [False, True], ids=["owner-turns-on-eventbridge", "managed-notifications"])
def test_an_existing_bucket_is_left_as_it_is(manage):
    mocks, pipeline = _deploy(existing_bucket_name=EXISTING, manage_bucket_notifications=manage)
    assert mocks.of_type(BUCKET) == []
    assert pipeline.bucket is None and pipeline.images_bucket is None
    touching = [
        (r.typ, r.name)
        for typ in BUCKET_CONFIGURATION_TYPES
        for r in mocks.of_type(typ)
        if not (manage and typ == NOTIFICATION)
    ]
    assert touching == []
    notifications = mocks.of_type(NOTIFICATION)
    if manage:
        # Only on request, and only EventBridge notifications: nothing else in the configuration.
        (notification,) = notifications
        assert {k: v for k, v in notification.inputs.items() if v not in (None, [], {})} == {
            "bucket": EXISTING,
            "eventbridge": True,
        }
    else:
        assert notifications == []
        assert pipeline.notification is None


def test_an_existing_bucket_is_matched_by_the_rule():
    mocks, _ = _deploy(existing_bucket_name=EXISTING, key_prefix="photos/")
    (rule,) = mocks.of_type(RULE)
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail"]["bucket"] == {"name": [EXISTING]}
    assert pattern["detail"]["object"]["key"][0] == {"wildcard": "photos/*.jpg"}


@pulumi.runtime.test
def test_the_outputs_name_the_existing_bucket_for_ops_backfill():
    use_mocks()
    settings = PipelineSettings(trigger="eventbridge", existing_bucket_name=EXISTING, key_prefix="photos/")
    pipeline = CaptioningPipeline("test", settings)

    def check(values):
        bucket, prefix, queue_url = values
        assert (bucket, prefix) == (EXISTING, "photos/")  # what ops/locate.py reads (bucketName, keyPrefix)
        assert queue_url.rsplit("/", 1)[1].startswith("test-uploads")  # the mode ops sees: the queue's

    return pulumi.Output.all(pipeline.bucket_name, pipeline.key_prefix, pipeline.queue_url).apply(check)


def test_the_function_reads_only_the_prefix_of_an_existing_bucket():
    mocks, _ = _deploy(existing_bucket_name=EXISTING, key_prefix="photos/")
    (policy,) = mocks.of_type(ROLE_POLICY)
    s3 = [
        statement
        for statement in statements(policy.inputs["policy"])
        if any(action.startswith("s3:") for action in statement["Action"])
    ]
    assert s3 == [
        {
            "Sid": "ReadUploadedImages",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{EXISTING}/photos/*"],
        }
    ]
