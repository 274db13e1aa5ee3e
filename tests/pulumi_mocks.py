"""Pulumi mocks for the infrastructure tests: the package's own (captioning.testing), plus recorded
dependencies and helpers to deploy under them and read what was registered.

Outputs use the provider's camelCase names (snake_case keys would silently resolve to None).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, TypeVar

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs

from captioning import testing
from captioning.testing import ACCOUNT_ID as ACCOUNT_ID
from captioning.testing import ECR_PASSWORD as ECR_PASSWORD  # the tests look for it in plain inputs
from captioning.testing import REGION as REGION

PROJECT = "captioning"
ECR_HOST = testing.CaptioningMocks().ecr_host
GET_ECR_TOKEN_CALL = testing.GET_ECR_AUTHORIZATION_TOKEN

T = TypeVar("T")


@dataclass
class Registration(testing.MockedResource):
    """One resource as the component registered it: its type, name, inputs, outputs and dependencies."""

    urn: str = ""
    dependencies: set[str] = field(default_factory=set)


class CaptioningMocks(testing.CaptioningMocks):
    """The package's mocks (captioning.testing), strict: a call they do not answer fails the test, so a new
    data source the component makes cannot go unnoticed by the package's mocks."""

    @property
    def registrations(self) -> list[Registration]:
        return self.resources  # type: ignore[return-value]  record() makes every one a Registration

    def record(self, args: MockResourceArgs, outputs: dict[str, Any]) -> Registration:
        return Registration(args.typ, args.name, args.inputs, outputs)

    def call(self, args: MockCallArgs) -> dict[str, Any]:
        if args.token not in testing.ANSWERED_CALLS:
            raise NotImplementedError(f"the mocks do not answer {args.token}")
        return super().call(args)


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
