"""Security checks over the deployment the component produces under mocks (issues 6 and 22).

Each check reads what would be sent to AWS (the registered inputs, policy JSON parsed) and
returns findings; the tests assert there are none, for every stack file and both trigger modes.
The checks are themselves tested against deliberately bad deployments, so they can fail.
"""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from captioning import CaptioningPipeline, PipelineSettings
from captioning.component.policies import VPC_NETWORK_INTERFACE_ACTIONS
from tests.pulumi_mocks import (
    ECR_PASSWORD,
    CaptioningMocks,
    Registration,
    as_list,
    deploy,
    is_secret_input,
    statements,
)

ROOT = Path(__file__).resolve().parents[2]
STACK_FILES = sorted(ROOT.glob("Pulumi.*.yaml"))

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
QUEUE = "aws:sqs/queue:Queue"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
RULE = "aws:cloudwatch/eventRule:EventRule"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FUNCTION = "aws:lambda/function:Function"
DOCKER_IMAGE = "docker:index/registryImage:RegistryImage"  # the pushed image (captioning/component/image.py)
ATTACHMENTS = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)

# (resource type, input holding a policy document)
POLICY_INPUTS = [
    (ROLE, "assumeRolePolicy"),
    (ROLE_POLICY, "policy"),
    ("aws:iam/policy:Policy", "policy"),
    (BUCKET_POLICY, "policy"),
    (QUEUE_POLICY, "policy"),
    ("aws:ecr/repositoryPolicy:RepositoryPolicy", "policy"),
]
# The only actions allowed on every resource ("*"), each because AWS offers nothing narrower: X-Ray's
# writes, and the network-interface actions Lambda needs to attach a function to a VPC.
XRAY_EXCEPTIONS = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions (active tracing)",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions (active tracing)",
}
VPC_EXCEPTIONS = dict.fromkeys(
    VPC_NETWORK_INTERFACE_ACTIONS,
    "EC2 scopes neither the Describe calls nor the interfaces Lambda creates for the function (VPC)",
)
STAR_RESOURCE_EXCEPTIONS = {**XRAY_EXCEPTIONS, **VPC_EXCEPTIONS}
# Resources that change a bucket's configuration (an existing bucket must have none of these from us).
BUCKET_CONFIGURATION_TYPES = (
    PUBLIC_ACCESS_BLOCK,
    ENCRYPTION,
    BUCKET_POLICY,
    NOTIFICATION,
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketAcl:BucketAcl",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
)
S3_READ_PREFIXES = ("s3:Get", "s3:List")
DIGEST_REFERENCE = re.compile(r"^[^@]+@sha256:[0-9a-f]{64}$")


def policy_documents(mocks: CaptioningMocks) -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for typ, key in POLICY_INPUTS:
        for registration in mocks.of_type(typ):
            if registration.inputs.get(key):
                documents.append((f"{registration.name}.{key}", json.loads(registration.inputs[key])))
    return documents


def wildcard_findings(mocks: CaptioningMocks) -> list[str]:
    """Allow statements with a wildcard action, or a `*` resource for any action not named an exception."""
    findings = []
    for where, document in policy_documents(mocks):
        for statement in statements(document):
            if statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement or "NotResource" in statement:
                findings.append(f"{where}: Allow with NotAction/NotResource")
            actions = as_list(statement.get("Action"))
            findings += [f"{where}: wildcard action {action!r}" for action in actions if "*" in action]
            if "*" in as_list(statement.get("Resource")):
                findings += [
                    f"{where}: {action} allowed on every resource"
                    for action in actions
                    if action not in STAR_RESOURCE_EXCEPTIONS
                ]
    return findings


def function_role_findings(mocks: CaptioningMocks) -> list[str]:
    """Anything that lets the function's role write to S3 (a bug could re-trigger itself)."""
    findings = []
    roles = {r.outputs["name"]: r for r in mocks.of_type(ROLE)}
    function_roles = [
        r for r in roles.values() if r.outputs["arn"] in {f.inputs["role"] for f in mocks.of_type(FUNCTION)}
    ]
    if not function_roles:
        return ["no function role found"]
    for role in function_roles:
        if role.inputs.get("managedPolicyArns") or role.inputs.get("inlinePolicies"):
            findings.append(f"{role.name}: managed or inline policies bypass the reviewed role policy")
    for typ in ATTACHMENTS:
        findings += [f"{r.name}: a managed policy is attached" for r in mocks.of_type(typ)]
    for policy in mocks.of_type(ROLE_POLICY):
        if policy.inputs["role"] not in {role.outputs["name"] for role in function_roles}:
            continue
        for statement in statements(policy.inputs["policy"]):
            if statement.get("Effect") != "Allow":
                continue
            for action in as_list(statement.get("Action")):
                if action.lower().startswith("s3:") and not action.startswith(S3_READ_PREFIXES):
                    findings.append(f"{policy.name}: function role may {action}")
    return findings


def _for_bucket(mocks: CaptioningMocks, typ: str, bucket_name: str) -> list[Registration]:
    return [r for r in mocks.of_type(typ) if r.inputs.get("bucket") == bucket_name]


def bucket_findings(mocks: CaptioningMocks) -> list[str]:
    """Buckets without the four public-access blocks, default encryption or the TLS-only policy."""
    findings = []
    buckets = mocks.of_type(BUCKET)
    if not buckets and not existing_bucket_names(mocks):
        return ["no bucket found"]
    for bucket in buckets:
        name, arn = bucket.outputs["bucket"], bucket.outputs["arn"]
        blocks = _for_bucket(mocks, PUBLIC_ACCESS_BLOCK, name)
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        if not any(all(block.inputs.get(flag) is True for flag in flags) for block in blocks):
            findings.append(f"{bucket.name}: public access is not fully blocked")
        algorithms = {
            rule.get("applyServerSideEncryptionByDefault", {}).get("sseAlgorithm")
            for config in _for_bucket(mocks, ENCRYPTION, name)
            for rule in config.inputs.get("rules", [])
        }
        if not algorithms & {"AES256", "aws:kms", "aws:kms:dsse"}:
            findings.append(f"{bucket.name}: no default encryption")
        if not any(
            _denies_insecure_transport(p.inputs["policy"], arn)
            for p in _for_bucket(mocks, BUCKET_POLICY, name)
        ):
            findings.append(f"{bucket.name}: requests without TLS are not denied")
    return findings


def existing_bucket_names(mocks: CaptioningMocks) -> set[str]:
    """Buckets the rules match that the deployment did not create: the user's existing buckets."""
    created = {bucket.outputs["bucket"] for bucket in mocks.of_type(BUCKET)}
    named = {
        name
        for rule in mocks.of_type(RULE)
        for name in json.loads(rule.inputs["eventPattern"])["detail"]["bucket"]["name"]
    }
    return named - created


def existing_bucket_findings(mocks: CaptioningMocks) -> list[str]:
    """Anything registered on a bucket the component did not create, beyond turning on its EventBridge
    notifications (which only manageBucketNotifications does)."""
    findings = []
    for name in existing_bucket_names(mocks):
        for typ in BUCKET_CONFIGURATION_TYPES:
            for registration in _for_bucket(mocks, typ, name):
                set_inputs = {k for k, v in registration.inputs.items() if v not in (None, [], {})}
                if typ == NOTIFICATION and set_inputs == {"bucket", "eventbridge"}:
                    continue
                findings.append(f"{registration.name}: changes the existing bucket {name}")
    return findings


def _denies_insecure_transport(policy: str, bucket_arn: str) -> bool:
    for statement in statements(policy):
        if (
            statement.get("Effect") == "Deny"
            and statement.get("Principal") in ("*", {"AWS": "*"})
            and set(as_list(statement.get("Action"))) & {"s3:*", "*"}
            and {bucket_arn, f"{bucket_arn}/*"} <= set(as_list(statement.get("Resource")))
            and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
        ):
            return True
    return False


def queue_policy_findings(mocks: CaptioningMocks) -> list[str]:
    """Queue policy statements that admit anyone but S3 sending for the images bucket, or EventBridge
    sending for the deployment's own rule."""
    findings = []
    sources_by_principal = {
        "s3.amazonaws.com": {bucket.outputs["arn"] for bucket in mocks.of_type(BUCKET)},
        "events.amazonaws.com": {rule.outputs["arn"] for rule in mocks.of_type(RULE)},
    }
    for policy in mocks.of_type(QUEUE_POLICY):
        for statement in statements(policy.inputs["policy"]):
            if statement.get("Effect") != "Allow":
                continue
            principal = statement.get("Principal")
            service = (
                principal.get("Service") if isinstance(principal, dict) and len(principal) == 1 else None
            )
            if service not in sources_by_principal:
                findings.append(f"{policy.name}: admits principal {principal!r}")
                continue
            condition = statement.get("Condition", {})
            sources = {
                value
                for operator in ("ArnEquals", "ArnLike", "StringEquals")
                for key, value in condition.get(operator, {}).items()
                if key.lower() == "aws:sourcearn"
            }
            if not sources or not sources <= sources_by_principal[service]:
                findings.append(f"{policy.name}: {service} not pinned to this pipeline: {sorted(sources)}")
    return findings


def key_findings(mocks: CaptioningMocks) -> list[str]:
    """With a customer-managed key: a store the component creates that does not use it, or the function
    allowed any key action beyond Decrypt and GenerateDataKey, on another resource or without a service."""
    keys = {
        queue.inputs["kmsMasterKeyId"] for queue in mocks.of_type(QUEUE) if queue.inputs.get("kmsMasterKeyId")
    }
    if not keys:
        return []
    if len(keys) > 1:
        return [f"queues use several keys: {sorted(keys)}"]
    (key,) = keys
    findings = [
        f"{queue.name}: not encrypted with {key}"
        for queue in mocks.of_type(QUEUE)
        if queue.inputs.get("kmsMasterKeyId") != key
    ]
    stores = [
        ("aws:dynamodb/table:Table", lambda i: (i.get("serverSideEncryption") or {}).get("kmsKeyArn")),
        ("aws:cloudwatch/logGroup:LogGroup", lambda i: i.get("kmsKeyId")),
        ("aws:sns/topic:Topic", lambda i: i.get("kmsMasterKeyId")),
        (
            "aws:ecr/repository:Repository",
            lambda i: ((i.get("encryptionConfigurations") or [{}])[0]).get("kmsKey"),
        ),
        (
            ENCRYPTION,
            lambda i: ((i.get("rules") or [{}])[0].get("applyServerSideEncryptionByDefault") or {}).get(
                "kmsMasterKeyId"
            ),
        ),
    ]
    for typ, used_key in stores:
        findings += [
            f"{r.name}: not encrypted with {key}" for r in mocks.of_type(typ) if used_key(r.inputs) != key
        ]
    for policy in mocks.of_type(ROLE_POLICY):
        for statement in statements(policy.inputs["policy"]):
            actions = [a for a in as_list(statement.get("Action")) if a.lower().startswith("kms:")]
            if not actions:
                continue
            if not set(actions) <= {"kms:Decrypt", "kms:GenerateDataKey"}:
                findings.append(f"{policy.name}: key actions {actions}")
            if as_list(statement.get("Resource")) != [key]:
                findings.append(f"{policy.name}: key actions on {statement.get('Resource')}")
            if not statement.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService"):
                findings.append(f"{policy.name}: key actions not limited to services")
    return findings


def boundary_findings(mocks: CaptioningMocks) -> list[str]:
    """Roles without the boundary while another role has one (the boundary must be on every role)."""
    boundaries = {role.inputs.get("permissionsBoundary") for role in mocks.of_type(ROLE)}
    if len(boundaries) <= 1:
        return []
    return [
        f"{role.name}: no permissions boundary"
        for role in mocks.of_type(ROLE)
        if not role.inputs.get("permissionsBoundary")
    ]


def vpc_findings(mocks: CaptioningMocks) -> list[str]:
    """Network-interface permissions on a function outside a VPC (the `*` exception is for VPCs only)."""
    in_vpc = any(function.inputs.get("vpcConfig") for function in mocks.of_type(FUNCTION))
    findings = []
    for policy in mocks.of_type(ROLE_POLICY):
        for statement in statements(policy.inputs["policy"]):
            ec2 = [a for a in as_list(statement.get("Action")) if a.lower().startswith("ec2:")]
            if ec2 and not in_vpc:
                findings.append(f"{policy.name}: {ec2} without a VPC")
    return findings


def image_reference_findings(mocks: CaptioningMocks) -> list[str]:
    """Functions whose image is a mutable tag rather than the pushed image's digest."""
    digests = {
        f"{image.outputs['name'].rsplit(':', 1)[0]}@{image.outputs['sha256Digest']}"
        for image in mocks.of_type(DOCKER_IMAGE)
    }
    findings = []
    for function in mocks.of_type(FUNCTION):
        uri = function.inputs.get("imageUri", "")
        if not DIGEST_REFERENCE.match(uri) or uri not in digests:
            findings.append(f"{function.name}: image referenced as {uri!r}, not repository@sha256:digest")
    return findings


def secret_findings(mocks: CaptioningMocks) -> list[str]:
    """Registry credentials sent in clear, or the ECR password anywhere outside a secret."""
    findings = [
        f"{image.name}: registry credentials are not secret"
        for image in mocks.of_type(DOCKER_IMAGE)
        if "authConfig" in image.inputs and not is_secret_input(image.inputs["authConfig"])
    ]
    for registration in mocks.registrations:
        if ECR_PASSWORD in json.dumps(_without_secrets(registration.inputs), default=str):
            findings.append(f"{registration.name}: the ECR password appears in clear")
    return findings


def _without_secrets(value: Any) -> Any:
    if is_secret_input(value):
        return "[secret]"
    if isinstance(value, dict):
        return {key: _without_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


CHECKS = [
    wildcard_findings,
    function_role_findings,
    bucket_findings,
    existing_bucket_findings,
    queue_policy_findings,
    key_findings,
    boundary_findings,
    vpc_findings,
    image_reference_findings,
    secret_findings,
]


def _deploy_stack(path: Path) -> CaptioningMocks:
    config = yaml.safe_load(path.read_text())["config"]
    mocks, _ = deploy(
        lambda: runpy.run_path(str(ROOT / "__main__.py")), config=config, stack=path.name.split(".")[1]
    )
    return mocks


KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
BOUNDARY = "arn:aws:iam::123456789012:policy/team-boundary"
ACCOUNT_SETTINGS = {
    "kms_key_arn": KEY,
    "permissions_boundary": BOUNDARY,
    "vpc_subnet_ids": ("subnet-0123456789abcdef0",),
    "vpc_security_group_ids": ("sg-0123456789abcdef0",),
    "caption_events": True,
    "table_stream": True,
}

DEPLOYMENTS = {
    **{path.name: (lambda path=path: _deploy_stack(path)) for path in STACK_FILES},
    "direct-with-prefix": lambda: deploy(
        lambda: CaptioningPipeline("test", PipelineSettings(trigger="direct", key_prefix="in/"))
    )[0],
    "direct-untraced": lambda: deploy(
        lambda: CaptioningPipeline("test", PipelineSettings(trigger="direct", tracing=False))
    )[0],
    "queue-provisioned": lambda: deploy(
        lambda: CaptioningPipeline(
            "test", PipelineSettings(trigger="queue", reserved_concurrency=4, provisioned_concurrency=1)
        )
    )[0],
    "eventbridge-kms-vpc-events": lambda: deploy(
        lambda: CaptioningPipeline("test", PipelineSettings(**ACCOUNT_SETTINGS, trigger="eventbridge"))
    )[0],
    "queue-kms-boundary": lambda: deploy(
        lambda: CaptioningPipeline(
            "test", PipelineSettings(trigger="queue", kms_key_arn=KEY, permissions_boundary=BOUNDARY)
        )
    )[0],
    "existing-bucket": lambda: deploy(
        lambda: CaptioningPipeline(
            "test",
            PipelineSettings(
                **ACCOUNT_SETTINGS,
                trigger="eventbridge",
                existing_bucket_name="their-photos",
                key_prefix="in/",
            ),
        )
    )[0],
    "existing-bucket-managed": lambda: deploy(
        lambda: CaptioningPipeline(
            "test",
            PipelineSettings(
                trigger="eventbridge", existing_bucket_name="their-photos", manage_bucket_notifications=True
            ),
        )
    )[0],
    "snap-start-queue": lambda: deploy(
        lambda: CaptioningPipeline("test", PipelineSettings(trigger="queue", snap_start=True))
    )[0],
    "snap-start-eventbridge": lambda: deploy(
        lambda: CaptioningPipeline(
            "test", PipelineSettings(trigger="eventbridge", snap_start=True, architecture="arm64")
        )
    )[0],
}


@pytest.fixture(scope="module", params=sorted(DEPLOYMENTS))
def deployment(request) -> CaptioningMocks:
    return DEPLOYMENTS[request.param]()


@pytest.mark.parametrize("check", CHECKS, ids=[check.__name__ for check in CHECKS])
def test_deployment_passes_security_check(deployment, check):
    assert check(deployment) == []


def function_role_statements(mocks: CaptioningMocks) -> dict[str, dict[str, Any]]:
    """Sid -> statement of the function role's policy."""
    (policy,) = mocks.of_type(ROLE_POLICY)
    return {statement["Sid"]: statement for statement in statements(policy.inputs["policy"])}


def test_x_ray_writes_are_granted_exactly_when_tracing_is_on(deployment):
    (function,) = deployment.of_type(FUNCTION)
    tracing = function.inputs["tracingConfig"]["mode"] == "Active"
    by_sid = function_role_statements(deployment)
    star = [s for s in by_sid.values() if "*" in as_list(s["Resource"]) and s["Sid"] != "AttachToVpc"]
    if tracing:
        assert star == [by_sid["SendTraces"]]
        assert sorted(by_sid["SendTraces"]["Action"]) == sorted(XRAY_EXCEPTIONS)
    else:
        assert star == [] and "SendTraces" not in by_sid


def test_network_interface_actions_are_granted_exactly_in_a_vpc(deployment):
    (function,) = deployment.of_type(FUNCTION)
    by_sid = function_role_statements(deployment)
    if function.inputs.get("vpcConfig"):
        attach = by_sid["AttachToVpc"]
        assert (sorted(attach["Action"]), attach["Resource"]) == (sorted(VPC_EXCEPTIONS), ["*"])
    else:
        assert "AttachToVpc" not in by_sid


def test_duplicates_are_looked_up_on_the_table_only(deployment):
    (table,) = deployment.of_type("aws:dynamodb/table:Table")
    lookup = function_role_statements(deployment)["RecogniseDuplicates"]
    assert (lookup["Action"], lookup["Resource"]) == (["dynamodb:BatchGetItem"], [table.outputs["arn"]])


def test_every_deployment_has_policies_to_check(deployment):
    """Guards the checks against passing vacuously on an empty deployment."""
    assert len(policy_documents(deployment)) >= 4
    queue_mode = bool(deployment.of_type("aws:lambda/eventSourceMapping:EventSourceMapping"))
    eventbridge_mode = bool(deployment.of_type(RULE))
    assert len(deployment.of_type(QUEUE_POLICY)) == (2 if eventbridge_mode else 1 if queue_mode else 0)


# --- the checks catch what they are meant to catch ------------------------------------------------


def _fake(*registrations: Registration) -> CaptioningMocks:
    mocks = CaptioningMocks()
    mocks.registrations.extend(registrations)
    return mocks


def _document(*statement_list: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statement_list)})


def _role_and_function(policy: str) -> list[Registration]:
    role_outputs = {"name": "r", "arn": "arn:aws:iam::1:role/r"}
    return [
        Registration(ROLE, "role", {"assumeRolePolicy": _document()}, role_outputs),
        Registration(ROLE_POLICY, "policy", {"role": "r", "policy": policy}),
        Registration(FUNCTION, "fn", {"role": "arn:aws:iam::1:role/r"}),
    ]


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": ["dynamodb:PutItem", "*"], "Resource": "arn:aws:dynamodb:::table/t"},
        {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*"},
        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": ["*"]},
        {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:GetTraceSummaries"], "Resource": "*"},
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"},
        {"Effect": "Allow", "Action": "xray:*", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"},
    ],
)
def test_wildcard_check_flags_broad_statements(statement):
    assert wildcard_findings(_fake(*_role_and_function(_document(statement))))


def test_wildcard_check_accepts_the_named_exceptions_only():
    xray = {"Effect": "Allow", "Action": sorted(STAR_RESOURCE_EXCEPTIONS), "Resource": "*"}
    assert wildcard_findings(_fake(*_role_and_function(_document(xray)))) == []


def test_wildcard_check_ignores_deny_statements():
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    assert wildcard_findings(_fake(*_role_and_function(_document(deny)))) == []


@pytest.mark.parametrize("action", ["s3:PutObject", "s3:DeleteObject", "s3:PutObjectAcl", "S3:RestoreObject"])
def test_role_check_flags_write_access_to_the_bucket(action):
    statement = {"Effect": "Allow", "Action": ["s3:GetObject", action], "Resource": "arn:aws:s3:::b/*"}
    assert function_role_findings(_fake(*_role_and_function(_document(statement))))


def test_role_check_flags_managed_policy_attachments():
    read = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    attachment = Registration(
        ATTACHMENTS[0], "basic", {"role": "r", "policyArn": "arn:aws:iam::aws:policy/x"}
    )
    assert function_role_findings(_fake(*_role_and_function(_document(read)), attachment))


def _bucket_registrations(
    *, flags: bool = True, encryption: bool = True, tls: bool = True
) -> list[Registration]:
    bucket = Registration(BUCKET, "b", {}, {"bucket": "b", "arn": "arn:aws:s3:::b"})
    found = [bucket]
    found.append(
        Registration(
            PUBLIC_ACCESS_BLOCK,
            "pab",
            {
                "bucket": "b",
                "blockPublicAcls": True,
                "blockPublicPolicy": flags,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
        )
    )
    if encryption:
        rule = {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
        found.append(Registration(ENCRYPTION, "sse", {"bucket": "b", "rules": [rule]}))
    condition = {"Bool": {"aws:SecureTransport": "false" if tls else "true"}}
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    }
    found.append(
        Registration(
            BUCKET_POLICY, "policy", {"bucket": "b", "policy": _document({**deny, "Condition": condition})}
        )
    )
    return found


def test_bucket_check_accepts_a_locked_bucket():
    assert bucket_findings(_fake(*_bucket_registrations())) == []


@pytest.mark.parametrize("missing", ["flags", "encryption", "tls"])
def test_bucket_check_flags_each_missing_protection(missing):
    assert bucket_findings(_fake(*_bucket_registrations(**{missing: False})))


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "q"},
        {
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": "q",
        },
        {
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": "q",
            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"}},
        },
    ],
)
def test_queue_policy_check_flags_other_sources(statement):
    bucket = Registration(BUCKET, "b", {}, {"bucket": "b", "arn": "arn:aws:s3:::b"})
    policy = Registration(QUEUE_POLICY, "qp", {"policy": _document(statement)})
    assert queue_policy_findings(_fake(bucket, policy))


def test_image_check_flags_a_tag_reference():
    digest = "123.dkr.ecr.us-east-1.amazonaws.com/repo@sha256:" + "a" * 64
    pushed = {"name": "123.dkr.ecr.us-east-1.amazonaws.com/repo:dev", "sha256Digest": "sha256:" + "a" * 64}
    image = Registration(DOCKER_IMAGE, "image", {}, pushed)
    tagged = Registration(FUNCTION, "fn", {"imageUri": "123.dkr.ecr.us-east-1.amazonaws.com/repo:latest"})
    assert image_reference_findings(_fake(image, tagged))
    pinned = Registration(FUNCTION, "fn", {"imageUri": digest})
    assert image_reference_findings(_fake(image, pinned)) == []


def test_secret_check_flags_a_password_in_clear():
    registry = {"address": "https://ecr", "username": "AWS", "password": ECR_PASSWORD}
    image = Registration(DOCKER_IMAGE, "image", {"authConfig": registry}, {})
    assert len(secret_findings(_fake(image))) == 2


# --- issue 22's checks catch what they are meant to catch ------------------------------------------


def test_queue_policy_check_flags_eventbridge_for_another_rule():
    rule = Registration(RULE, "rule", {}, {"arn": "arn:aws:events:us-east-1:1:rule/ours"})
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": "q",
        "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/theirs"}},
    }
    policy = Registration(QUEUE_POLICY, "qp", {"policy": _document(statement)})
    assert queue_policy_findings(_fake(rule, policy))
    pinned = {
        **statement,
        "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/ours"}},
    }
    assert (
        queue_policy_findings(_fake(rule, Registration(QUEUE_POLICY, "qp", {"policy": _document(pinned)})))
        == []
    )


def _keyed(
    *, queue_key: str = KEY, table_key: str | None = KEY, statement: dict | None = None
) -> CaptioningMocks:
    grant = statement or {
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": [KEY],
        "Condition": {"StringEquals": {"kms:ViaService": ["sqs.us-east-1.amazonaws.com"]}},
    }
    return _fake(
        Registration(QUEUE, "q", {"kmsMasterKeyId": queue_key}),
        Registration(
            "aws:dynamodb/table:Table",
            "t",
            {"serverSideEncryption": {"enabled": True, "kmsKeyArn": table_key}},
        ),
        Registration(ROLE_POLICY, "p", {"role": "r", "policy": _document(grant)}),
    )


def test_key_check_accepts_a_store_and_a_grant_on_the_key():
    assert key_findings(_keyed()) == []


@pytest.mark.parametrize(
    "broken",
    [
        {"table_key": None},
        {"table_key": "arn:aws:kms:us-east-1:123456789012:key/other"},
        {
            "statement": {
                "Effect": "Allow",
                "Action": ["kms:*"],
                "Resource": [KEY],
                "Condition": {"StringEquals": {"kms:ViaService": ["x"]}},
            }
        },
        {
            "statement": {
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": ["*"],
                "Condition": {"StringEquals": {"kms:ViaService": ["x"]}},
            }
        },
        {"statement": {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [KEY]}},
    ],
)
def test_key_check_flags_a_store_without_the_key_or_a_broad_grant(broken):
    assert key_findings(_keyed(**broken))


def test_boundary_check_flags_a_role_without_the_boundary():
    with_boundary = Registration(ROLE, "a", {"permissionsBoundary": BOUNDARY})
    assert boundary_findings(_fake(with_boundary, Registration(ROLE, "b", {}))) == [
        "b: no permissions boundary"
    ]
    assert boundary_findings(_fake(with_boundary)) == []


def test_vpc_check_flags_network_interface_actions_outside_a_vpc():
    attach = {"Effect": "Allow", "Action": VPC_NETWORK_INTERFACE_ACTIONS, "Resource": ["*"]}
    outside = _role_and_function(_document(attach))
    assert vpc_findings(_fake(*outside))
    inside = outside[:2] + [
        Registration(FUNCTION, "fn", {"role": "arn:aws:iam::1:role/r", "vpcConfig": {"subnetIds": ["s"]}})
    ]
    assert vpc_findings(_fake(*inside)) == []


def test_existing_bucket_check_flags_anything_but_its_eventbridge_notifications():
    pattern = json.dumps({"detail": {"bucket": {"name": ["theirs"]}}})
    rule = Registration(RULE, "rule", {"eventPattern": pattern}, {"arn": "arn:aws:events:us-east-1:1:rule/r"})
    eventbridge_on = Registration(NOTIFICATION, "n", {"bucket": "theirs", "eventbridge": True})
    assert existing_bucket_findings(_fake(rule, eventbridge_on)) == []
    to_queue = Registration(NOTIFICATION, "n", {"bucket": "theirs", "queues": [{"queueArn": "q"}]})
    policy = Registration(BUCKET_POLICY, "p", {"bucket": "theirs", "policy": _document()})
    sse = Registration(ENCRYPTION, "e", {"bucket": "theirs", "rules": []})
    for registration in (to_queue, policy, sse):
        assert existing_bucket_findings(_fake(rule, registration)), registration.typ


@pytest.mark.parametrize("name", ["eventbridge-kms-vpc-events", "existing-bucket"])
def test_the_account_settings_reach_every_role_store_and_function(name):
    """Where the deployment asks for them: the boundary on every role, the key on every store (and the
    function's grant), the function in the VPC (its network-interface grant)."""
    mocks = DEPLOYMENTS[name]()
    assert [role.inputs.get("permissionsBoundary") for role in mocks.of_type(ROLE)] == [BOUNDARY]
    assert {queue.inputs.get("kmsMasterKeyId") for queue in mocks.of_type(QUEUE)} == {KEY}
    assert key_findings(mocks) == []
    assert {"DecryptWithPipelineKey", "EncryptWithPipelineKey"} <= set(function_role_statements(mocks))
    (function,) = mocks.of_type(FUNCTION)
    assert function.inputs["vpcConfig"]["subnetIds"] == list(ACCOUNT_SETTINGS["vpc_subnet_ids"])
    assert "AttachToVpc" in function_role_statements(mocks)
