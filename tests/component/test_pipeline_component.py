"""The component itself: its type token, exactly the resources each shape creates, all its children."""

import inspect
from collections import Counter
from pathlib import Path

import pulumi
import pytest

from captioning import CaptioningPipeline, CaptioningPipelineArgs
from tests.pulumi_mocks import deploy

COMPONENT_TYPE = "captioning:index:CaptioningPipeline"

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"

# Between them, every resource the component can create: every trigger, with and without an alias
# (provisioned concurrency, SnapStart), with and without alarm e-mails, on a created or an existing
# bucket (its notifications managed or not).
SHAPES = {
    "direct-provisioned": CaptioningPipelineArgs(
        trigger="direct", reserved_concurrency=2, provisioned_concurrency=1
    ),
    "queue-provisioned": CaptioningPipelineArgs(
        trigger="queue", reserved_concurrency=4, provisioned_concurrency=1
    ),
    "direct-plain": CaptioningPipelineArgs(trigger="direct"),
    "queue-emails": CaptioningPipelineArgs(
        trigger="queue", alarm_emails=("ops@example.com", "dev@example.com")
    ),
    "eventbridge-snap-start": CaptioningPipelineArgs(trigger="eventbridge", snap_start=True),
    "eventbridge-existing-bucket": CaptioningPipelineArgs(
        trigger="eventbridge", existing_bucket_name="their-photos", key_prefix="uploads/"
    ),
    "eventbridge-existing-managed": CaptioningPipelineArgs(
        trigger="eventbridge", existing_bucket_name="their-photos", manage_bucket_notifications=True
    ),
    # Settings that change resources' inputs, never which resources exist.
    "eventbridge-account": CaptioningPipelineArgs(
        trigger="eventbridge",
        kms_key_arn=KEY_ARN,
        permissions_boundary="arn:aws:iam::123456789012:policy/boundary",
        vpc_subnet_ids=("subnet-0123456789abcdef0",),
        vpc_security_group_ids=("sg-0123456789abcdef0",),
        caption_events=True,
        table_stream=True,
    ),
}

# What every shape has: storage, the image, the function, the alarm topic, the dashboard and the alarms
# both modes share (dead letters, errors, throttles, duration).
COMMON = Counter(
    {
        "aws:s3/bucket:Bucket": 1,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 1,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 1,
        "aws:s3/bucketPolicy:BucketPolicy": 1,
        "aws:s3/bucketNotification:BucketNotification": 1,
        "aws:dynamodb/table:Table": 1,
        "aws:sqs/queue:Queue": 1,  # the dead-letter queue
        "aws:ecr/repository:Repository": 1,
        "aws:ecr/repositoryPolicy:RepositoryPolicy": 1,
        "aws:ecr/lifecyclePolicy:LifecyclePolicy": 1,
        "docker:index/remoteImage:RemoteImage": 1,  # built locally (captioning/component/image.py)
        "docker:index/registryImage:RegistryImage": 1,  # pushed to the repository
        "aws:cloudwatch/logGroup:LogGroup": 1,
        "aws:iam/role:Role": 1,
        "aws:iam/rolePolicy:RolePolicy": 1,
        "aws:lambda/function:Function": 1,
        "aws:sns/topic:Topic": 1,
        "aws:cloudwatch/dashboard:Dashboard": 1,
        "aws:cloudwatch/metricAlarm:MetricAlarm": 4,
    }
)
DIRECT = Counter(
    {
        "aws:lambda/permission:Permission": 1,
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": 1,
        "aws:cloudwatch/metricAlarm:MetricAlarm": 2,  # asynchronous events dropped, destination failures
    }
)
QUEUE = Counter(
    {
        "aws:sqs/queue:Queue": 1,  # the upload queue
        "aws:sqs/queuePolicy:QueuePolicy": 1,
        "aws:lambda/eventSourceMapping:EventSourceMapping": 1,
        "aws:cloudwatch/metricAlarm:MetricAlarm": 1,  # age of the oldest upload
    }
)
EVENTBRIDGE = Counter(
    {
        "aws:sqs/queue:Queue": 1,  # the upload queue
        "aws:sqs/queuePolicy:QueuePolicy": 2,  # the rule may send to the upload and dead-letter queues
        "aws:cloudwatch/eventRule:EventRule": 1,
        "aws:cloudwatch/eventTarget:EventTarget": 1,
        "aws:lambda/eventSourceMapping:EventSourceMapping": 1,
        "aws:cloudwatch/metricAlarm:MetricAlarm": 2,  # age of the oldest upload, the rule's failures
    }
)
TRIGGERS = {"direct": DIRECT, "queue": QUEUE, "eventbridge": EVENTBRIDGE}
CREATED_BUCKET = (
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy",
)
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
ALIAS = Counter({"aws:lambda/alias:Alias": 1})
PROVISIONED = Counter({"aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig": 1})


def expected_children(args: CaptioningPipelineArgs) -> Counter:
    expected = COMMON + TRIGGERS[args.get("trigger", "direct")]
    if args.get("existing_bucket_name"):
        for typ in CREATED_BUCKET:
            del expected[typ]
        if not args.get("manage_bucket_notifications"):
            del expected[NOTIFICATION]
    if args.get("provisioned_concurrency") or args.get("snap_start"):
        expected += ALIAS
    if args.get("provisioned_concurrency"):
        expected += PROVISIONED
    if args.get("alarm_emails"):
        expected["aws:sns/topicSubscription:TopicSubscription"] = len(args["alarm_emails"])
    return expected


def qualified_type(urn: str) -> str:
    """`parent-type$type` part of a URN (`urn:pulumi:<stack>::<project>::<qualified type>::<name>`)."""
    return urn.split("::")[2]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_shape_creates_exactly_its_resources_all_children_of_the_component(shape):
    mocks, _ = deploy(lambda: CaptioningPipeline("test", SHAPES[shape]))
    (component,) = [r for r in mocks.registrations if r.typ == COMPONENT_TYPE]
    assert component.name == "test"
    children = [r for r in mocks.registrations if r is not component]
    assert Counter(r.typ for r in children) == expected_children(SHAPES[shape])
    # A resource created without parent=self would hang off the stack instead ("pulumi:pulumi:Stack$...").
    orphans = [
        (r.name, qualified_type(r.urn))
        for r in children
        if qualified_type(r.urn) != f"{COMPONENT_TYPE}${r.typ}"
    ]
    assert orphans == []


def test_the_inventory_totals():
    """The per-mode totals, spelled out: 28 resources in direct mode with an alias, 28 in queue mode, 31 in
    eventbridge mode with an alias (SnapStart), 25 on an existing bucket (none of them on the bucket)."""
    assert sum(expected_children(SHAPES["direct-provisioned"]).values()) == 28
    assert sum(expected_children(SHAPES["queue-provisioned"]).values()) == 28
    assert sum(expected_children(SHAPES["direct-plain"]).values()) == 26
    assert sum(expected_children(SHAPES["eventbridge-snap-start"]).values()) == 31
    assert sum(expected_children(SHAPES["eventbridge-existing-bucket"]).values()) == 25
    assert sum(expected_children(SHAPES["eventbridge-existing-managed"]).values()) == 26
    assert sum(expected_children(SHAPES["eventbridge-account"]).values()) == 30


# --- the child resources a Python program reads (docs/package.md, "The child resources") ----------------

PACKAGE_DOC = Path(__file__).resolve().parents[2] / "docs" / "package.md"

# Attribute -> the resource's type token, or None where the shape has no such resource.
EXPOSED = {
    "function": lambda args: FUNCTION,
    "live_alias": lambda args: (
        "aws:lambda/alias:Alias" if args.get("provisioned_concurrency") or args.get("snap_start") else None
    ),
    "provisioned_concurrency": lambda args: (
        "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
        if args.get("provisioned_concurrency")
        else None
    ),
    "function_role": lambda args: "aws:iam/role:Role",
    "log_group": lambda args: "aws:cloudwatch/logGroup:LogGroup",
    "bucket": lambda args: None if args.get("existing_bucket_name") else "aws:s3/bucket:Bucket",
    "table": lambda args: "aws:dynamodb/table:Table",
    "dead_letter_queue": lambda args: "aws:sqs/queue:Queue",
    "upload_queue": lambda args: (
        "aws:sqs/queue:Queue" if args.get("trigger") in ("queue", "eventbridge") else None
    ),
    "notification": lambda args: (
        None
        if args.get("existing_bucket_name") and not args.get("manage_bucket_notifications")
        else "aws:s3/bucketNotification:BucketNotification"
    ),
    "uploads_rule": lambda args: (
        "aws:cloudwatch/eventRule:EventRule" if args.get("trigger") == "eventbridge" else None
    ),
    "repository": lambda args: "aws:ecr/repository:Repository",
    "alarm_topic": lambda args: "aws:sns/topic:Topic",
    "dashboard": lambda args: "aws:cloudwatch/dashboard:Dashboard",
}
FUNCTION = "aws:lambda/function:Function"


def _type_token(resource: pulumi.Resource) -> str:
    return resource._type  # noqa: SLF001  the SDK keeps no public accessor for a resource's type


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_documented_attributes_are_the_child_resources(shape):
    args = SHAPES[shape]
    mocks, pipeline = deploy(lambda: CaptioningPipeline("test", args))
    for attribute, expected in EXPOSED.items():
        resource = getattr(pipeline, attribute)
        if expected(args) is None:
            assert resource is None, attribute
        else:
            assert isinstance(resource, pulumi.CustomResource), attribute
            assert _type_token(resource) == expected(args), attribute
    assert pipeline.function is pipeline.captioning_function.function
    assert set(pipeline.alarms) == {
        a.name.removeprefix("test-").removesuffix("-alarm")
        for a in mocks.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }


def test_every_exposed_attribute_is_documented_and_not_a_package_output():
    properties = {name for name, value in vars(CaptioningPipeline).items() if isinstance(value, property)}
    assert properties >= set(EXPOSED) - {"dead_letter_queue", "upload_queue"}  # those two: plain attributes
    table = PACKAGE_DOC.read_text().split("### The child resources", 1)[1]
    for name in sorted(properties | set(EXPOSED)):
        assert f"`{name}`" in table, f"{name} is not in docs/package.md's table of child resources"
        assert name not in inspect.get_annotations(CaptioningPipeline), f"{name} would become a schema output"
