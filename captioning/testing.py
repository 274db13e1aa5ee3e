"""Pulumi mocks for unit tests of a program that uses CaptioningPipeline: `captioning.testing`.

    import pulumi
    from captioning.testing import CaptioningMocks

    mocks = CaptioningMocks()
    pulumi.runtime.set_mocks(mocks, project="my-project", stack="dev", preview=False)
    # then import your program (or construct CaptioningPipeline) inside a @pulumi.runtime.test function

The component also runs under Pulumi's plain mocks (`new_resource` returning the inputs, `call` returning
`{}`), but then every output AWS computes (ARNs, names, URLs, digests) is None. `CaptioningMocks` answers
with values in the shape AWS gives, so a test can read them:

- resources: each echoes its inputs, plus the outputs AWS computes, for the types the component creates:
  `arn` (`arn:aws:<service>:<region>:<account>:...`), the physical `name` (the logical name and a hash
  suffix, as Pulumi's auto-naming does, unless the inputs name it), `id`, queue `url`, bucket `bucket`,
  the ECR repository's `repositoryUrl` and `registryId`, the function's `version` and `qualifiedArn`, an
  EventBridge rule's `arn`, a table's `streamArn` and `streamLabel` when its stream is on,
  the images' `imageId`, `repoDigest` and `sha256Digest` (a `sha256:` digest), and `region` on every AWS
  resource. Any other resource type gets an id and an `arn`.
- calls: `aws.get_caller_identity` (account `ACCOUNT_ID`), `aws.get_region` (`REGION`) and
  `aws.ecr.get_authorization_token` (user `AWS`, password `ECR_PASSWORD`, the account's ECR endpoint).
  Any other call is answered with `{}`, as Pulumi's plain mocks do; override `call` to answer yours.
- `resources` lists every registration (type, logical name, inputs, outputs) and `calls` every call's
  token, in order; `named`, `of_type` and `one_of_type` look them up.

Outputs are keyed by the provider's camelCase names (`memorySize`, not `memory_size`), as mocks must be.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
ECR_PASSWORD = "mock-ecr-password"  # noqa: S105  a fixed fake, never a real credential
STREAM_LABEL = "2026-01-01T00:00:00.000"
"""The label of a mocked table's stream (tableStream), the end of its `streamArn`."""

GET_CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
GET_REGION = "aws:index/getRegion:getRegion"
GET_ECR_AUTHORIZATION_TOKEN = "aws:ecr/getAuthorizationToken:getAuthorizationToken"  # noqa: S105  a token name
ANSWERED_CALLS = (GET_CALLER_IDENTITY, GET_REGION, GET_ECR_AUTHORIZATION_TOKEN)
"""The calls (data sources) CaptioningPipeline makes, all answered by CaptioningMocks."""


@dataclass
class MockedResource:
    """One resource as the program registered it."""

    typ: str
    """Its type token, e.g. `aws:lambda/function:Function`."""
    name: str
    """Its logical name, e.g. `captioning-function`."""
    inputs: dict[str, Any]
    """The inputs as sent to the engine (camelCase keys)."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """What the mocks answered: the inputs and the computed outputs."""


def fake_digest(seed: str) -> str:
    """A `sha256:<64 hex>` digest, the same for the same seed."""
    return "sha256:" + hashlib.sha256(f"image:{seed}".encode()).hexdigest()


def _suffix(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:7]


def _untagged(image_name: str) -> str:
    """`host/repository:tag` -> `host/repository` (a registry host may carry a port)."""
    return image_name.rsplit(":", 1)[0] if ":" in image_name.split("/")[-1] else image_name


def _docker_outputs(typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if typ == "docker:index/image:Image":
        image_name = inputs["imageName"]
        digest = f"{_untagged(image_name)}@{fake_digest(name)}"
        return image_name, {"imageName": image_name, "repoDigest": digest}
    if typ == "docker:index/remoteImage:RemoteImage":
        image_id = fake_digest(f"local:{name}")
        digest = f"{_untagged(inputs['name'])}@{image_id}"
        return inputs["name"], {"name": inputs["name"], "imageId": image_id, "repoDigest": digest}
    if typ == "docker:index/registryImage:RegistryImage":
        return inputs["name"], {"name": inputs["name"], "sha256Digest": fake_digest(name)}
    return f"{name}-id", {}


class CaptioningMocks(pulumi.runtime.Mocks):
    """Mocks that give CaptioningPipeline's resources and calls the outputs AWS would (module docstring)."""

    def __init__(self, *, account_id: str = ACCOUNT_ID, region: str = REGION) -> None:
        self.account_id = account_id
        self.region = region
        self.resources: list[MockedResource] = []
        self.calls: list[str] = []

    @property
    def ecr_host(self) -> str:
        """The account's ECR registry host, as repository URLs start."""
        return f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com"

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id, computed = self.computed_outputs(args.typ, args.name, args.inputs)
        if args.typ.startswith("aws:"):
            computed.setdefault("region", self.region)
        outputs = {**args.inputs, **computed}
        self.resources.append(self.record(args, outputs))
        return resource_id, outputs

    def record(self, args: MockResourceArgs, outputs: dict[str, Any]) -> MockedResource:
        """What `resources` keeps of one registration (a subclass may keep more)."""
        return MockedResource(args.typ, args.name, args.inputs, outputs)

    def computed_outputs(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The id and the outputs AWS would compute for a resource of type `typ` named `name`."""
        region, account = self.region, self.account_id
        physical = inputs.get("name") or f"{name}-{_suffix(name)}"
        if typ == "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or physical
            return bucket, {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        if typ == "aws:dynamodb/table:Table":
            arn = f"arn:aws:dynamodb:{region}:{account}:table/{physical}"
            stream = {}
            if inputs.get("streamEnabled"):
                stream = {"streamArn": f"{arn}/stream/{STREAM_LABEL}", "streamLabel": STREAM_LABEL}
            return physical, {"name": physical, "arn": arn, **stream}
        if typ == "aws:cloudwatch/eventRule:EventRule":
            bus = inputs.get("eventBusName")
            path = f"{bus}/{physical}" if bus and bus != "default" else physical
            return physical, {"name": physical, "arn": f"arn:aws:events:{region}:{account}:rule/{path}"}
        if typ == "aws:sqs/queue:Queue":
            url = f"https://sqs.{region}.amazonaws.com/{account}/{physical}"
            return url, {"name": physical, "url": url, "arn": f"arn:aws:sqs:{region}:{account}:{physical}"}
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            arn = f"arn:aws:logs:{region}:{account}:log-group:{physical}"
            return physical, {"name": physical, "arn": arn}
        if typ == "aws:iam/role:Role":
            return physical, {"name": physical, "arn": f"arn:aws:iam::{account}:role/{physical}"}
        if typ == "aws:sns/topic:Topic":
            return physical, {"name": physical, "arn": f"arn:aws:sns:{region}:{account}:{physical}"}
        if typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
            arn = f"arn:aws:cloudwatch:{region}:{account}:alarm:{physical}"
            return physical, {"name": physical, "arn": arn}
        if typ == "aws:cloudwatch/dashboard:Dashboard":
            dashboard = inputs.get("dashboardName") or physical
            return dashboard, {"dashboardArn": f"arn:aws:cloudwatch::{account}:dashboard/{dashboard}"}
        if typ == "aws:ecr/repository:Repository":
            return physical, {
                "name": physical,
                "arn": f"arn:aws:ecr:{region}:{account}:repository/{physical}",
                "registryId": account,
                "repositoryUrl": f"{self.ecr_host}/{physical}",
            }
        if typ.startswith("docker:"):
            return _docker_outputs(typ, name, inputs)
        if typ == "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:{region}:{account}:function:{physical}"
            version = "1" if inputs.get("publish") else "$LATEST"
            return physical, {
                "name": physical,
                "arn": arn,
                "version": version,
                "qualifiedArn": f"{arn}:{version}",
                "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/functions/{arn}/invocations",
            }
        if typ == "aws:lambda/alias:Alias":
            function_arn = f"arn:aws:lambda:{region}:{account}:function:{inputs['functionName']}"
            return physical, {"name": physical, "arn": f"{function_arn}:{physical}"}
        return f"{name}-id", {"arn": f"arn:aws:mock:{region}:{account}:{typ}/{physical}"}

    def call(self, args: MockCallArgs) -> dict[str, Any]:
        self.calls.append(args.token)
        if args.token == GET_CALLER_IDENTITY:
            return {
                "id": self.account_id,
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:user/tester",
                "userId": "AIDAMOCKUSER",
            }
        if args.token == GET_REGION:
            return {
                "id": self.region,
                "region": self.region,
                "name": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
                "description": self.region,
            }
        if args.token == GET_ECR_AUTHORIZATION_TOKEN:
            return {
                "id": self.region,
                "userName": "AWS",
                "password": ECR_PASSWORD,
                "proxyEndpoint": f"https://{self.ecr_host}",
                "registryId": args.args.get("registryId") or self.account_id,
            }
        return {}

    # Lookups for the test's assertions.
    def named(self, name: str) -> MockedResource:
        """The one resource with this logical name."""
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise LookupError(f"expected one resource named {name!r}, found {len(matches)}")
        return matches[0]

    def of_type(self, typ: str) -> list[MockedResource]:
        """Every resource of this type token, in registration order."""
        return [r for r in self.resources if r.typ == typ]

    def one_of_type(self, typ: str) -> MockedResource:
        """The one resource of this type token."""
        matches = self.of_type(typ)
        if len(matches) != 1:
            raise LookupError(f"expected one {typ}, found {[r.name for r in matches]}")
        return matches[0]
