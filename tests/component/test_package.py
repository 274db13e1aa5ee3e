"""The component as a package: its inferred schema, served the way the engine asks for it, and the
cross-language construct path; the args' documented defaults agree with the settings."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import subprocess
import sys
import typing
from pathlib import Path

import grpc
import pulumi
import pytest
from google.protobuf import struct_pb2
from pulumi.provider.experimental.util import camel_case
from pulumi.provider.server import ComponentInitError, ProviderServicer
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from captioning import CaptioningPipelineArgs, InvalidSettingError, PipelineSettings
from captioning.component.pipeline import PACKAGE_NAME, TYPE_TOKEN
from captioning.component.provider import build_provider, package_version, provider_schema
from captioning.component.settings import SETTING_NAMES, resolve_settings
from captioning.testing import STREAM_LABEL
from tests.pulumi_mocks import use_mocks

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_ADDRESS = "127.0.0.1:1"  # GetSchema never calls the engine back; Construct would.

# Output name -> schema type (queueUrl and tableStreamArn are optional: not in direct mode, not without
# tableStream).
OUTPUT_TYPES = {
    "bucketName": "string",
    "tableName": "string",
    "functionName": "string",
    "functionArn": "string",
    "functionTargetArn": "string",
    "imageUri": "string",
    "deadLetterQueueUrl": "string",
    "queueUrl": "string",
    "alarmTopicArn": "string",
    "dashboardName": "string",
    "keyPrefix": "string",
    "keySuffixes": "array",
    "tableStreamArn": "string",
}
OPTIONAL_OUTPUTS = {"queueUrl", "tableStreamArn"}


def _run(coroutine: typing.Coroutine) -> typing.Any:
    """Run on a loop of its own, leaving the thread's current loop (Pulumi's) in place."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


async def _schema_over_grpc() -> tuple[str, str]:
    """Serve the provider in-process on 127.0.0.1 and ask it as the engine does: GetPluginInfo, GetSchema."""
    server = grpc.aio.server()
    servicer = ProviderServicer(build_provider(), [], engine_address=ENGINE_ADDRESS)
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            info = await stub.GetPluginInfo(provider_pb2.google_dot_protobuf_dot_empty__pb2.Empty())
            response = await stub.GetSchema(provider_pb2.GetSchemaRequest(version=0))
            return info.version, response.schema
    finally:
        await server.stop(None)


@pytest.fixture(scope="module")
def served_schema() -> dict:
    version, schema = _run(_schema_over_grpc())
    assert version == package_version()
    return json.loads(schema)


def _component(schema: dict) -> dict:
    return schema["resources"][TYPE_TOKEN]


def test_the_schema_names_the_package_and_its_one_component(served_schema):
    assert served_schema["name"] == PACKAGE_NAME
    assert served_schema["version"] == package_version()
    assert list(served_schema["resources"]) == [TYPE_TOKEN] == ["captioning:index:CaptioningPipeline"]
    component = _component(served_schema)
    assert component["isComponent"] is True
    assert "caption" in component["description"]


def test_every_input_is_in_the_schema_with_its_type_and_description_and_none_is_required(served_schema):
    inputs = _component(served_schema)["inputProperties"]
    assert set(inputs) == {camel_case(name) for name in SETTING_NAMES}
    assert not _component(served_schema).get("requiredInputs")
    hints = typing.get_type_hints(CaptioningPipelineArgs)
    expected_types = {int: "integer", str: "string", bool: "boolean"}
    for name, hint in hints.items():
        schema_property = inputs[camel_case(name)]
        assert schema_property["description"].strip(), name
        assert "\n" not in schema_property["description"], f"{name}: the description keeps line breaks"
        # Settings shape resources (memory, trigger...): plain values, known when the component is built.
        assert schema_property.get("plain") is True, name
        base = (
            typing.get_args(hint)[0] if typing.get_origin(hint) in (typing.Union, type(int | None)) else hint
        )
        if base in expected_types:
            assert schema_property["type"] == expected_types[base], name
    assert inputs["keySuffixes"]["type"] == "array" and inputs["keySuffixes"]["items"]["type"] == "string"
    assert inputs["alarmEmails"]["items"]["type"] == "string"
    assert inputs["tags"]["type"] == "object"
    assert inputs["tags"]["additionalProperties"]["type"] == "string"
    assert inputs["memorySize"]["type"] == "integer"
    assert inputs["trigger"]["type"] == "string"


def test_every_output_is_in_the_schema_with_its_type_and_description(served_schema):
    component = _component(served_schema)
    outputs = component["properties"]
    assert set(outputs) == set(OUTPUT_TYPES)
    for name, kind in OUTPUT_TYPES.items():
        assert outputs[name]["type"] == kind, name
        assert outputs[name]["description"].strip(), name
    assert outputs["keySuffixes"]["items"]["type"] == "string"
    assert set(component["required"]) == set(OUTPUT_TYPES) - OPTIONAL_OUTPUTS


def test_the_schema_the_plugin_serves_is_the_one_inferred_in_process(served_schema):
    assert served_schema == provider_schema()


def _default_in_docs(description: str) -> object:
    match = re.search(r"Default: (.+?)\.?$", description)
    assert match, f"no 'Default: ...' in {description!r}"
    text = match.group(1)
    return None if text == "unset" else json.loads(text)


def test_each_documented_default_is_the_settings_default(served_schema):
    """The defaults live in PipelineSettings; the schema's readers see them in the descriptions."""
    inputs = _component(served_schema)["inputProperties"]
    defaults = PipelineSettings()
    for setting in dataclasses.fields(PipelineSettings):
        value = getattr(defaults, setting.name)
        expected = list(value) if isinstance(value, tuple) else value
        assert _default_in_docs(inputs[camel_case(setting.name)]["description"]) == expected, setting.name


def test_args_and_settings_have_the_same_names():
    assert list(typing.get_type_hints(CaptioningPipelineArgs)) == list(SETTING_NAMES)


def test_an_unknown_setting_is_refused_naming_the_settings():
    with pytest.raises(InvalidSettingError) as caught:
        resolve_settings(CaptioningPipelineArgs(memory_size=2048, memroy=1))  # type: ignore[typeddict-unknown-key]
    message = str(caught.value)
    assert message.startswith("memroy=1 is not allowed: not a setting")
    assert "memory_size" in message and "key_suffixes" in message


def test_none_takes_the_default_as_an_unset_key_does():
    """As YAML's null does (the provider drops it), and as `config.get_int("memory")` gives when unset."""
    settings = resolve_settings(
        CaptioningPipelineArgs(memory_size=None, trigger=None, reserved_concurrency=None)
    )
    assert settings == PipelineSettings()


def test_args_that_are_not_a_mapping_are_refused():
    with pytest.raises(InvalidSettingError, match="a CaptioningPipelineArgs"):
        resolve_settings(["memory_size", 2048])  # type: ignore[arg-type]


def test_lists_from_other_languages_become_the_settings_tuples():
    settings = resolve_settings({"key_suffixes": [".jpg"], "alarm_emails": ["ops@example.com"]})
    assert settings.key_suffixes == (".jpg",)
    assert settings.alarm_emails == ("ops@example.com",)


def _as_the_engine_sends(inputs: dict) -> dict:
    """Inputs through the wire and the provider SDK's decoding: a protobuf Struct has no integers."""
    struct = struct_pb2.Struct()
    struct.update(inputs)
    return _run(ProviderServicer._construct_inputs(struct, {}))


@pytest.fixture
def yaml_inputs() -> dict:
    inputs = _as_the_engine_sends(
        {"memorySize": 3072, "reservedConcurrency": 3, "trigger": "queue", "keySuffixes": [".png"]}
    )
    assert inputs["memorySize"] == 3072.0 and isinstance(inputs["memorySize"], float)
    return inputs


@pulumi.runtime.test
def test_the_provider_constructs_the_component_from_schema_named_inputs(yaml_inputs):
    """What a YAML or TypeScript program's `new CaptioningPipeline(...)` reaches: camelCase inputs, numbers
    as floats."""
    mocks = use_mocks()
    provider = build_provider()
    result = provider.construct("from-yaml", TYPE_TOKEN, yaml_inputs, pulumi.ResourceOptions())

    def check(values):
        _, queue_url, key_suffixes = values
        assert queue_url and key_suffixes == [".png"], "queue mode, the given suffixes"
        function = mocks.one_of_type("aws:lambda/function:Function")
        assert function.inputs["memorySize"] == 3072
        assert function.inputs["reservedConcurrentExecutions"] == 3
        (component,) = mocks.of_type(TYPE_TOKEN)
        assert component.name == "from-yaml"

    assert {"bucketName", "keySuffixes", "queueUrl"} <= set(result.state)
    return pulumi.Output.all(
        result.state["functionName"], result.state["queueUrl"], result.state["keySuffixes"]
    ).apply(check)


@pytest.fixture
def existing_account_inputs() -> dict:
    """Issue 22's inputs as another language sends them: lists for the VPC, booleans, strings."""
    return _as_the_engine_sends(
        {
            "trigger": "eventbridge",
            "existingBucketName": "their-photos",
            "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
            "vpcSubnetIds": ["subnet-0123456789abcdef0"],
            "vpcSecurityGroupIds": ["sg-0123456789abcdef0"],
            "snapStart": True,
            "tableStream": True,
        }
    )


@pulumi.runtime.test
def test_the_provider_constructs_an_existing_account_pipeline_from_the_wire(existing_account_inputs):
    inputs = existing_account_inputs
    mocks = use_mocks()
    result = build_provider().construct("from-yaml", TYPE_TOKEN, inputs, pulumi.ResourceOptions())

    def check(values):
        bucket_name, stream_arn, _ = values
        assert bucket_name == "their-photos" and stream_arn.endswith(f"/stream/{STREAM_LABEL}")
        function = mocks.one_of_type("aws:lambda/function:Function")
        assert function.inputs["vpcConfig"] == {
            "subnetIds": ["subnet-0123456789abcdef0"],
            "securityGroupIds": ["sg-0123456789abcdef0"],
        }
        assert function.inputs["snapStart"] == {"applyOn": "PublishedVersions"}
        assert mocks.of_type("aws:s3/bucket:Bucket") == []

    # The function's name resolves once the function is registered.
    return pulumi.Output.all(
        result.state["bucketName"], result.state["tableStreamArn"], result.state["functionName"]
    ).apply(check)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"memorySize": 64}, "memorySize=64 is not allowed: a whole number of MB from 128 to 10240"),
        ({"memorySize": 3072.5}, "memorySize=3072.5 is not allowed: a whole number of MB"),
        ({"timeout": 60, "trigger": "sns"}, "trigger='sns' is not allowed: one of 'direct', 'queue'"),
        ({"keySuffixes": [".jpg", ".JPG", ""]}, "keySuffixes=("),
        # A refused combination names the other key in camelCase too.
        (
            {"snapStart": True, "provisionedConcurrency": 1},
            "snapStart=True is not allowed: false while provisionedConcurrency is above 0",
        ),
        (
            {"existingBucketName": "their-photos", "trigger": "queue"},
            "existingBucketName='their-photos' is not allowed: only with trigger 'eventbridge'",
        ),
    ],
)
def test_a_refused_input_reaches_the_engine_as_a_component_error(inputs, message):
    wire_inputs = _as_the_engine_sends(inputs)
    use_mocks()
    with pytest.raises(ComponentInitError) as caught:
        build_provider().construct("bad", TYPE_TOKEN, wire_inputs, pulumi.ResourceOptions())
    assert str(caught.value.inner).startswith(message), "named as the caller spelled it (camelCase)"


def test_an_output_for_a_plain_input_is_refused_clearly():
    use_mocks()
    with pytest.raises(InvalidSettingError) as caught:
        resolve_settings({"memory_size": pulumi.Output.from_input(2048)})
    assert str(caught.value).startswith("memory_size='an output' is not allowed: a plain value known when")


def _plugin_schema(command: list[str], cwd: Path) -> dict:
    """Start the plugin as the engine does (its address as the argument), read its port, ask GetSchema."""
    process = subprocess.Popen(  # noqa: S603  our own interpreter and plugin
        [*command, ENGINE_ADDRESS], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), f"no port printed: {port!r} {process.stderr.read() if process.poll() else ''}"

        async def ask() -> str:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = provider_pb2_grpc.ResourceProviderStub(channel)
                response = await stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
                return response.schema

        return json.loads(_run(ask()))
    finally:
        process.kill()
        process.wait(timeout=30)


@pytest.mark.parametrize("entry_point", ["the directory's __main__.py", "python -m captioning"])
def test_the_plugin_serves_the_schema_to_the_engine(entry_point, served_schema, tmp_path):
    """Pulumi's Python host starts a plugin directory that has a __main__.py as `python <directory> <engine>`
    (in the consumer's directory); `python -m captioning` is the same provider from an installed package."""
    import yaml

    manifest = yaml.safe_load((REPO_ROOT / "PulumiPlugin.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    if entry_point == "python -m captioning":
        command = [sys.executable, "-m", "captioning"]
    else:
        command = [sys.executable, str(REPO_ROOT)]
    schema = _plugin_schema(command, cwd=tmp_path)
    assert schema == served_schema
    assert schema["version"] == package_version()
