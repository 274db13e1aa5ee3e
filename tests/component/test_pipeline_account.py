"""Settings for a real account: a customer-managed key, a permissions boundary, a VPC, caption events, the
table's stream, SnapStart (and the arm64 build's platform): each produces its resources and policies."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

import pulumi
import pytest

from captioning import CaptioningPipeline, PipelineSettings
from captioning.component.policies import VPC_NETWORK_INTERFACE_ACTIONS
from captioning.contract.constants import CAPTION_EVENT_DETAIL_TYPES, CAPTION_EVENT_SOURCE
from captioning.contract.environment import Variable
from captioning.testing import STREAM_LABEL
from tests.pulumi_mocks import ACCOUNT_ID, REGION, CaptioningMocks, deploy, statements, use_mocks

KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
BOUNDARY = "arn:aws:iam::123456789012:policy/team-boundary"
SUBNETS = ("subnet-0123456789abcdef0", "subnet-0123456789abcdef1")
GROUPS = ("sg-0123456789abcdef0",)
FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
QUEUE = "aws:sqs/queue:Queue"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


def _deploy(**settings) -> CaptioningMocks:
    mocks, _ = deploy(lambda: CaptioningPipeline("test", PipelineSettings(**settings)))
    return mocks


def _role_statements(mocks: CaptioningMocks) -> dict[str, dict]:
    (policy,) = mocks.of_type(ROLE_POLICY)
    return {statement["Sid"]: statement for statement in statements(policy.inputs["policy"])}


def _function(mocks: CaptioningMocks):
    (function,) = mocks.of_type(FUNCTION)
    return function


# --- kmsKeyArn ------------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", ["direct", "queue", "eventbridge"])
def test_the_key_encrypts_every_store_the_component_creates(trigger):
    mocks = _deploy(trigger=trigger, kms_key_arn=KEY)
    (encryption,) = mocks.of_type(ENCRYPTION)
    (rule,) = encryption.inputs["rules"]
    assert rule == {
        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY},
        "bucketKeyEnabled": True,
    }
    (table,) = mocks.of_type("aws:dynamodb/table:Table")
    assert table.inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": KEY}
    queues = mocks.of_type(QUEUE)
    assert len(queues) == (1 if trigger == "direct" else 2)
    for queue in queues:
        assert queue.inputs["kmsMasterKeyId"] == KEY, queue.name
        assert "sqsManagedSseEnabled" not in queue.inputs, queue.name  # exclusive with a KMS key
    (log_group,) = mocks.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["kmsKeyId"] == KEY
    (repository,) = mocks.of_type("aws:ecr/repository:Repository")
    assert repository.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": KEY}]
    (topic,) = mocks.of_type("aws:sns/topic:Topic")
    assert topic.inputs["kmsMasterKeyId"] == KEY


def test_without_a_key_aws_managed_encryption_stays():
    mocks = _deploy(trigger="queue")
    (encryption,) = mocks.of_type(ENCRYPTION)
    assert encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    assert all(queue.inputs["sqsManagedSseEnabled"] is True for queue in mocks.of_type(QUEUE))
    for typ, key in (
        ("aws:cloudwatch/logGroup:LogGroup", "kmsKeyId"),
        ("aws:sns/topic:Topic", "kmsMasterKeyId"),
        ("aws:ecr/repository:Repository", "encryptionConfigurations"),
    ):
        assert key not in mocks.one_of_type(typ).inputs, typ
    assert "kms" not in str(_role_statements(mocks)).lower()


def test_the_function_may_use_the_key_only_as_its_services_need():
    mocks = _deploy(trigger="queue", kms_key_arn=KEY)
    by_sid = _role_statements(mocks)
    services = [f"{service}.{REGION}.amazonaws.com" for service in ("s3", "sqs", "dynamodb")]
    assert by_sid["DecryptWithPipelineKey"] == {
        "Sid": "DecryptWithPipelineKey",
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": [KEY],
        "Condition": {"StringEquals": {"kms:ViaService": services}},
    }
    assert by_sid["EncryptWithPipelineKey"] == {
        "Sid": "EncryptWithPipelineKey",
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey"],
        "Resource": [KEY],
        "Condition": {"StringEquals": {"kms:ViaService": services[1:]}},
    }
    kms_actions = sorted(
        action for statement in by_sid.values() for action in statement["Action"] if action.startswith("kms:")
    )
    assert kms_actions == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_an_existing_bucket_is_not_encrypted_and_not_decrypted_through_s3_with_the_key():
    mocks = _deploy(trigger="eventbridge", existing_bucket_name="their-photos", kms_key_arn=KEY)
    assert mocks.of_type(ENCRYPTION) == []
    decrypt = _role_statements(mocks)["DecryptWithPipelineKey"]
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == [
        f"sqs.{REGION}.amazonaws.com",
        f"dynamodb.{REGION}.amazonaws.com",
    ]


# --- permissionsBoundary --------------------------------------------------------------------------


def test_every_role_has_the_boundary():
    mocks = _deploy(trigger="eventbridge", permissions_boundary=BOUNDARY, snap_start=True)
    roles = mocks.of_type(ROLE)
    assert roles
    assert [role.inputs.get("permissionsBoundary") for role in roles] == [BOUNDARY] * len(roles)


def test_without_a_boundary_no_role_has_one():
    assert all("permissionsBoundary" not in role.inputs for role in _deploy().of_type(ROLE))


# --- vpcSubnetIds / vpcSecurityGroupIds ---------------------------------------------------------


def test_the_function_joins_the_subnets_with_the_network_interface_permissions():
    mocks = _deploy(vpc_subnet_ids=SUBNETS, vpc_security_group_ids=GROUPS)
    assert _function(mocks).inputs["vpcConfig"] == {
        "subnetIds": list(SUBNETS),
        "securityGroupIds": list(GROUPS),
    }
    attach = _role_statements(mocks)["AttachToVpc"]
    assert (attach["Action"], attach["Resource"]) == (VPC_NETWORK_INTERFACE_ACTIONS, ["*"])
    assert set(VPC_NETWORK_INTERFACE_ACTIONS) == {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    }


def test_outside_a_vpc_there_is_no_vpc_config_and_no_ec2_permission():
    mocks = _deploy()
    assert "vpcConfig" not in _function(mocks).inputs
    assert "AttachToVpc" not in _role_statements(mocks)


# --- captionEvents / eventBusName, tableStream ----------------------------------------------------


@pytest.mark.parametrize("bus", [None, "captions"])
def test_caption_events_switch_the_function_on_and_grant_put_events_on_that_bus(bus):
    mocks = _deploy(caption_events=True, event_bus_name=bus)
    variables = _function(mocks).inputs["environment"]["variables"]
    assert variables[Variable.CAPTION_EVENTS] == "true"
    if bus is None:
        assert Variable.EVENT_BUS_NAME not in variables
    else:
        assert variables[Variable.EVENT_BUS_NAME] == bus
    publish = _role_statements(mocks)["PublishCaptionEvents"]
    assert publish["Action"] == ["events:PutEvents"]
    assert publish["Resource"] == [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{bus or 'default'}"]
    assert publish["Condition"]["StringEquals"] == {
        "events:source": CAPTION_EVENT_SOURCE,
        "events:detail-type": sorted(CAPTION_EVENT_DETAIL_TYPES.values()),
    }


def test_without_caption_events_nothing_is_published():
    mocks = _deploy()
    variables = _function(mocks).inputs["environment"]["variables"]
    assert Variable.CAPTION_EVENTS not in variables and Variable.EVENT_BUS_NAME not in variables
    assert "PublishCaptionEvents" not in _role_statements(mocks)


@pulumi.runtime.test
def test_the_table_stream_carries_new_images_and_is_exported():
    mocks = use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings(table_stream=True))

    def check(values):
        stream_arn, table_arn = values
        assert stream_arn == f"{table_arn}/stream/{STREAM_LABEL}"
        table = mocks.one_of_type("aws:dynamodb/table:Table")
        assert (table.inputs["streamEnabled"], table.inputs["streamViewType"]) == (True, "NEW_IMAGE")

    return pulumi.Output.all(pipeline.table_stream_arn, pipeline.table.arn).apply(check)


def test_without_table_stream_there_is_no_stream_and_no_output():
    mocks, pipeline = deploy(lambda: CaptioningPipeline("test", PipelineSettings()))
    assert pipeline.table_stream_arn is None
    assert "streamEnabled" not in mocks.one_of_type("aws:dynamodb/table:Table").inputs


# --- snapStart ----------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", ["direct", "queue", "eventbridge"])
def test_snap_start_publishes_and_every_trigger_invokes_the_alias(trigger):
    mocks = _deploy(trigger=trigger, snap_start=True)
    function = _function(mocks)
    assert function.inputs["publish"] is True
    assert function.inputs["snapStart"] == {"applyOn": "PublishedVersions"}
    alias = mocks.one_of_type("aws:lambda/alias:Alias")
    assert alias.inputs["functionVersion"] == function.outputs["version"] == "1"
    assert mocks.of_type("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig") == []
    if trigger == "direct":
        (notification,) = mocks.of_type("aws:s3/bucketNotification:BucketNotification")
        assert {rule["lambdaFunctionArn"] for rule in notification.inputs["lambdaFunctions"]} == {
            alias.outputs["arn"]
        }
        permission = mocks.one_of_type("aws:lambda/permission:Permission")
        assert permission.inputs["qualifier"] == alias.outputs["name"]
        invoke_config = mocks.one_of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
        assert invoke_config.inputs["qualifier"] == alias.outputs["name"]
    else:
        mapping = mocks.one_of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
        assert mapping.inputs["functionName"] == alias.outputs["arn"]


def test_without_snap_start_nothing_is_published():
    function = _function(_deploy())
    assert "snapStart" not in function.inputs and function.inputs["publish"] is False


def test_the_arm64_image_is_built_for_linux_arm64():
    mocks = _deploy(architecture="arm64", snap_start=True)
    image = mocks.one_of_type("docker:index/remoteImage:RemoteImage")
    assert image.inputs["build"]["platform"] == "linux/arm64"
    assert _function(mocks).inputs["architectures"] == ["arm64"]
