"""Pulumi mocks for the infrastructure tests: predictable outputs, recorded inputs and dependencies.

Outputs use the provider's camelCase names (snake_case keys would silently resolve to None).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, TypeVar

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs

PROJECT = "captioning"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
ECR_HOST = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
ECR_PASSWORD = "mock-ecr-password"  # noqa: S105  a fixed fake the tests look for in plain inputs

GET_ECR_TOKEN_CALL = "aws:ecr/getAuthorizationToken:getAuthorizationToken"  # noqa: S105  a function token
GET_CALLER_IDENTITY_CALL = "aws:index/getCallerIdentity:getCallerIdentity"

T = TypeVar("T")


@dataclass
class Registration:
    """One resource as the component registered it: its type, name, inputs and dependencies."""

    typ: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    urn: str = ""
    dependencies: set[str] = field(default_factory=set)


def _suffix(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:7]


def fake_digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(f"image:{name}".encode()).hexdigest()


def _computed_outputs(typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The id and the outputs AWS would compute for a resource of type `typ`."""
    physical = inputs.get("name") or f"{name}-{_suffix(name)}"
    if typ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket") or physical
        return bucket, {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
    if typ == "aws:dynamodb/table:Table":
        return physical, {"name": physical, "arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{physical}"}
    if typ == "aws:sqs/queue:Queue":
        url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{physical}"
        return url, {"name": physical, "url": url, "arn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{physical}"}
    if typ == "aws:cloudwatch/logGroup:LogGroup":
        return physical, {"name": physical, "arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{physical}"}
    if typ == "aws:iam/role:Role":
        return physical, {"name": physical, "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{physical}"}
    if typ == "aws:ecr/repository:Repository":
        return physical, {
            "name": physical,
            "arn": f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{physical}",
            "registryId": ACCOUNT_ID,
            "repositoryUrl": f"{ECR_HOST}/{physical}",
        }
    if typ == "docker:index/image:Image":
        image_name = inputs["imageName"]
        repository = image_name.rsplit(":", 1)[0] if ":" in image_name.split("/")[-1] else image_name
        return image_name, {"imageName": image_name, "repoDigest": f"{repository}@{fake_digest(name)}"}
    if typ == "docker:index/remoteImage:RemoteImage":
        return inputs["name"], {"name": inputs["name"], "imageId": fake_digest(f"local:{name}")}
    if typ == "docker:index/registryImage:RegistryImage":
        return inputs["name"], {"name": inputs["name"], "sha256Digest": fake_digest(name)}
    if typ == "aws:lambda/function:Function":
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{physical}"
        version = "1" if inputs.get("publish") else "$LATEST"
        return physical, {
            "name": physical,
            "arn": arn,
            "version": version,
            "qualifiedArn": f"{arn}:{version}",
            "invokeArn": f"arn:aws:apigateway:{REGION}:lambda:path/functions/{arn}/invocations",
        }
    if typ == "aws:lambda/alias:Alias":
        function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{inputs['functionName']}"
        return physical, {"name": physical, "arn": f"{function_arn}:{physical}"}
    return f"{name}-id", {"arn": f"arn:aws:mock:{REGION}:{ACCOUNT_ID}:{typ}/{physical}"}


class CaptioningMocks(pulumi.runtime.Mocks):
    """Echoes inputs, adds computed outputs, answers the two data-source calls the component makes."""

    def __init__(self) -> None:
        self.registrations: list[Registration] = []
        self.calls: list[str] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id, computed = _computed_outputs(args.typ, args.name, args.inputs)
        outputs = {**args.inputs, **computed}
        self.registrations.append(Registration(args.typ, args.name, args.inputs, outputs))
        return resource_id, outputs

    def call(self, args: MockCallArgs) -> dict[str, Any]:
        self.calls.append(args.token)
        if args.token == GET_ECR_TOKEN_CALL:
            return {
                "userName": "AWS",
                "password": ECR_PASSWORD,
                "proxyEndpoint": f"https://{ECR_HOST}",
                "registryId": args.args.get("registryId", ACCOUNT_ID),
            }
        if args.token == GET_CALLER_IDENTITY_CALL:
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/tester",
                "userId": "AIDAMOCKUSER",
            }
        raise NotImplementedError(f"the mocks do not answer {args.token}")

    # Lookups used by the tests.
    def named(self, name: str) -> Registration:
        matches = [r for r in self.registrations if r.name == name]
        if len(matches) != 1:
            raise LookupError(f"expected one resource named {name!r}, found {len(matches)}")
        return matches[0]

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.typ == typ]

    def one_of_type(self, typ: str) -> Registration:
        matches = self.of_type(typ)
        if len(matches) != 1:
            raise LookupError(f"expected one {typ}, found {[r.name for r in matches]}")
        return matches[0]


class RecordingMonitor(MockMonitor):
    """A mock monitor that also records each resource's URN and the URNs it depends on."""

    def __init__(self, mocks: CaptioningMocks) -> None:
        super().__init__(mocks)
        self.captioning_mocks = mocks

    def RegisterResource(self, request):  # noqa: N802  gRPC method name
        response = super().RegisterResource(request)
        for registration in reversed(self.captioning_mocks.registrations):
            if registration.name == request.name and registration.typ == request.type:
                registration.urn = response.urn
                registration.dependencies = set(request.dependencies)
                break
        return response


def use_mocks(config: dict[str, Any] | None = None, stack: str = "dev") -> CaptioningMocks:
    """Install fresh mocks and the given `captioning:*` config (values as in a stack file)."""
    mocks = CaptioningMocks()
    pulumi.runtime.set_all_config({key: config_value(value) for key, value in (config or {}).items()})
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(mocks)
    )
    return mocks


def config_value(value: Any) -> str:
    """A stack-file value as the Pulumi CLI hands it to the program: a string, JSON for structures."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def is_secret_input(value: Any) -> bool:
    """Whether a registered input was sent to the engine wrapped as a secret."""
    return rpc.is_rpc_secret(value)


def unwrap(value: Any) -> Any:
    return rpc.unwrap_rpc_secret(value) if rpc.is_rpc_secret(value) else value


def statements(policy: str | dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The statements of a policy document given as JSON text or a dict."""
    document = json.loads(policy) if isinstance(policy, str) else policy
    found = document["Statement"]
    yield from ([found] if isinstance(found, dict) else found)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def deploy(
    build: Callable[[], T], config: dict[str, Any] | None = None, stack: str = "dev"
) -> tuple[CaptioningMocks, T]:
    """Run `build` under fresh mocks until every resource is registered; return the mocks and its result.

    For checks over the whole deployment (inventories, absences, every policy document), where
    waiting on a few outputs would not prove that later registrations have happened.
    """
    mocks = use_mocks(config, stack)
    built: list[T] = []

    @pulumi.runtime.test
    def program() -> None:
        built.append(build())

    program()  # returns once all registrations (RPCs) have completed
    return mocks, built[0]


PIPELINE_PARTS = (
    "images_bucket",
    "captions_table",
    "dead_letter_queue",
    "upload_queue",
    "function_image",
    "captioning_function",
    "trigger",
    "monitoring",
)


def child_urns(pipeline: Any) -> list[pulumi.Output[str]]:
    """URNs of every child resource the pipeline exposes: once they resolve, all are registered."""
    resources: list[pulumi.Resource] = []
    for part_name in PIPELINE_PARTS:
        part = getattr(pipeline, part_name)
        members = [getattr(part, f.name) for f in fields(part)] if is_dataclass(part) else [part]
        for member in members:
            if isinstance(member, dict):
                resources.extend(member.values())
            elif isinstance(member, list):
                resources.extend(member)
            elif isinstance(member, pulumi.Resource):
                resources.append(member)
    return [resource.urn for resource in resources]
