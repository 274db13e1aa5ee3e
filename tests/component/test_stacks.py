"""Every committed Pulumi.<stack>.yaml deploys, under mocks, the function and trigger it describes."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

import json
import runpy
from pathlib import Path

import pulumi
import pytest
import yaml
from pulumi.config import ConfigTypeError

from captioning import InvalidSettingError, PipelineSettings
from captioning.component import limits
from captioning.component.settings import (
    DEFAULT_IMAGE_SUFFIXES,
    DEFAULT_QUEUE_MAX_CONCURRENCY,
    resolve_settings,
)
from captioning.component.stack_config import CONFIG_KEYS, UnknownConfigKeyError, args_from_config
from tests.pulumi_mocks import child_urns, deploy, use_mocks

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "__main__.py"
STACK_FILES = sorted(ROOT.glob("Pulumi.*.yaml"))
DEFAULTS = PipelineSettings()


def stack_config(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["config"]


def test_the_dev_and_prod_stacks_are_committed():
    assert {path.name for path in STACK_FILES} >= {"Pulumi.dev.yaml", "Pulumi.prod.yaml"}
    for path in STACK_FILES:
        assert stack_config(path).get("aws:region"), f"{path.name} sets no aws:region"


def test_the_project_is_named_captioning_and_runs_python():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "captioning"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["toolchain"] == "pip"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=[path.name for path in STACK_FILES])
@pulumi.runtime.test
def test_stack_file_deploys_the_function_and_trigger_it_describes(stack_file):
    config = stack_config(stack_file)
    stack = stack_file.name.split(".")[1]
    mocks = use_mocks(config, stack=stack)
    pipeline = runpy.run_path(str(PROGRAM))["pipeline"]
    function = pipeline.captioning_function.function

    def setting(key, default):
        return config.get(f"captioning:{key}", default)

    def check(values):
        memory, reserved, timeout, architectures, notification_queues, notification_functions = values[:6]
        assert memory == setting("memory", DEFAULTS.memory_size)
        assert reserved == setting("concurrency", DEFAULTS.reserved_concurrency)
        assert timeout == setting("timeout", DEFAULTS.timeout)
        assert architectures == [setting("architecture", DEFAULTS.architecture)]

        trigger = setting("trigger", DEFAULTS.trigger)
        mappings = mocks.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
        if trigger == "queue":
            assert notification_queues and not notification_functions
            (mapping,) = mappings
            assert mapping.inputs["batchSize"] == setting("batchSize", DEFAULTS.batch_size)
            assert mapping.inputs["scalingConfig"]["maximumConcurrency"] == setting(
                "maxConcurrency", setting("concurrency", DEFAULT_QUEUE_MAX_CONCURRENCY)
            )
        else:
            assert notification_functions and not notification_queues
            assert not mappings

        provisioned = setting("provisionedConcurrency", 0)
        configs = mocks.of_type("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig")
        if provisioned:
            (config_,) = configs
            assert config_.inputs["provisionedConcurrentExecutions"] == provisioned
            assert config_.inputs["qualifier"] == "live"
        else:
            assert not configs

    return pulumi.Output.all(
        function.memory_size,
        function.reserved_concurrent_executions,
        function.timeout,
        function.architectures,
        pipeline.trigger.notification.queues,
        pipeline.trigger.notification.lambda_functions,
        *child_urns(pipeline),  # every child registered before the inventory below is read
    ).apply(check)


@pytest.mark.parametrize("trigger", ["direct", "queue"])
def test_program_exports_the_outputs_in_camel_case(trigger, monkeypatch):
    exports = {}
    monkeypatch.setattr(pulumi, "export", exports.__setitem__)
    config = {"captioning:trigger": trigger, "captioning:concurrency": 4}
    _, program = deploy(lambda: runpy.run_path(str(PROGRAM)), config=config)
    pipeline = program["pipeline"]
    expected = {
        "bucketName": pipeline.bucket_name,
        "tableName": pipeline.table_name,
        "functionName": pipeline.function_name,
        "functionArn": pipeline.function_arn,
        "imageUri": pipeline.image_uri,
        "deadLetterQueueUrl": pipeline.dead_letter_queue_url,
        "functionTargetArn": pipeline.function_target_arn,
        "keyPrefix": pipeline.key_prefix,
        "keySuffixes": pipeline.key_suffixes,
        "alarmTopicArn": pipeline.alarm_topic_arn,
        "dashboardName": pipeline.dashboard_name,
    }
    if trigger == "queue":
        expected["queueUrl"] = pipeline.queue_url
    assert exports.keys() == expected.keys()
    for name, output in expected.items():
        assert exports[name] is output, name


@pulumi.runtime.test
def test_program_exports_the_key_filters_the_component_applies_defaults_included(monkeypatch):
    exports = {}
    monkeypatch.setattr(pulumi, "export", exports.__setitem__)
    use_mocks({"captioning:keyPrefix": "uploads/"})
    runpy.run_path(str(PROGRAM))

    def check(values):
        assert values == ["uploads/", list(DEFAULT_IMAGE_SUFFIXES)]  # what `python -m ops backfill` reads

    return pulumi.Output.all(exports["keyPrefix"], exports["keySuffixes"]).apply(check)


def test_dev_is_small_and_direct_prod_is_full_size_behind_the_queue():
    dev = stack_config(ROOT / "Pulumi.dev.yaml")
    prod = stack_config(ROOT / "Pulumi.prod.yaml")
    assert (dev["captioning:trigger"], dev["captioning:memory"], dev["captioning:concurrency"]) == (
        "direct",
        4096,
        1,
    )
    assert (prod["captioning:trigger"], prod["captioning:memory"]) == ("queue", 10240)
    assert prod["captioning:provisionedConcurrency"] == 1
    assert dev["captioning:runtime"] == prod["captioning:runtime"] == "onnx"


EVERY_KEY = {
    "memory": 2048, "concurrency": 8, "provisionedConcurrency": 2, "timeout": 60,
    "architecture": "arm64", "ephemeralStorage": 1024, "snapStart": False, "trigger": "eventbridge",
    "batchSize": 20, "batchingWindow": 4, "maxConcurrency": 6, "maxReceiveCount": 3, "retryAttempts": 1,
    "maxEventAge": 600, "modelId": "acme/m", "modelDir": "models/demo-shapes", "numBeams": 3,
    "halfPrecisionWeights": True,
    "maxLength": 20, "precision": "int8", "maxObjectBytes": 1024, "keyPrefix": "in/",
    "keySuffixes": [".jpg", ".png"], "existingBucketName": "their-photos",
    "manageBucketNotifications": True, "logRetentionDays": 14, "forceDestroy": True, "imagesToKeep": 2,
    "kmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
    "permissionsBoundary": "arn:aws:iam::123456789012:policy/team-boundary",
    "vpcSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    "vpcSecurityGroupIds": ["sg-0123456789abcdef0"],
    "runtime": "torch", "prompt": "<DETAILED_CAPTION>", "tracing": False, "metrics": False,
    "metricsNamespace": "Team/Captions", "alarmEmails": ["ops@example.com"], "alarmPeriod": 60,
    "alarmEvaluationPeriods": 3, "errorsAlarmThreshold": 5, "throttlesAlarmThreshold": 2,
    "durationAlarmPercent": 90, "queueAgeAlarmSeconds": 900, "captionEvents": True,
    "eventBusName": "captions", "tableStream": True,
}  # fmt: skip
# SnapStart excludes provisioned concurrency and more ephemeral storage: its own stack, so snapStart's
# true reaches the field too.
SNAP_START = {**EVERY_KEY, "snapStart": True, "provisionedConcurrency": 0, "ephemeralStorage": 512}


@pytest.mark.parametrize("values", [EVERY_KEY, SNAP_START], ids=["every-key", "snap-start"])
def test_every_config_key_reaches_its_field(values):
    assert set(values) == {entry.key for entry in CONFIG_KEYS}
    use_mocks({f"captioning:{key}": value for key, value in values.items()})
    args = resolve_settings(args_from_config())
    for entry in CONFIG_KEYS:
        expected = values[entry.key]
        actual = getattr(args, entry.field)
        assert (list(actual) if entry.kind == "list" else actual) == expected, entry.key


def test_unset_keys_keep_the_component_defaults():
    use_mocks({"aws:region": "eu-west-1"})
    assert args_from_config() == {}
    assert resolve_settings(args_from_config()) == PipelineSettings()


@pytest.mark.parametrize(
    ("key", "value"),
    [("memory", "lots"), ("concurrency", "1.5"), ("forceDestroy", "maybe"), ("batchSize", "ten")],
)
def test_a_value_of_the_wrong_type_fails_naming_the_key(key, value):
    use_mocks({f"captioning:{key}": value})

    @pulumi.runtime.test
    def deploy():
        runpy.run_path(str(PROGRAM))

    with pytest.raises(ConfigTypeError, match=f"captioning:{key}"):
        deploy()


def test_a_list_key_given_something_else_fails_naming_the_key():
    use_mocks({"captioning:keySuffixes": '{"jpg": true}'})
    with pytest.raises(InvalidSettingError, match="captioning:keySuffixes"):
        args_from_config()


def test_a_value_aws_refuses_fails_naming_the_config_key():
    mocks = use_mocks({"captioning:memory": 20000})

    @pulumi.runtime.test
    def deploy():
        runpy.run_path(str(PROGRAM))

    with pytest.raises(InvalidSettingError, match=r"captioning:memory=20000 .*from 128 to 10240"):
        deploy()
    assert mocks.registrations == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"snapStart": True, "ephemeralStorage": 1024},
            "captioning:snapStart=True is not allowed: false while captioning:ephemeralStorage is above 512",
        ),
        (
            {"vpcSubnetIds": ["subnet-0123456789abcdef0"]},
            "only together with captioning:vpcSecurityGroupIds",
        ),
        ({"eventBusName": "captions"}, "unset unless captioning:captionEvents is true"),
    ],
)
def test_a_refused_combination_names_both_config_keys(config, message):
    use_mocks({f"captioning:{key}": value for key, value in config.items()})
    with pytest.raises(InvalidSettingError) as caught:
        args_from_config()
    assert message in str(caught.value)


def test_an_unknown_key_fails_listing_the_known_ones():
    use_mocks({"captioning:memroy": 4096})
    with pytest.raises(UnknownConfigKeyError, match=r"captioning:memroy.*memory, concurrency"):
        args_from_config()


# --- the README's configuration table matches the code --------------------------------------------

RANGES = {
    "memory": limits.MEMORY_MB,
    "timeout": limits.TIMEOUT_SECONDS,
    "ephemeralStorage": limits.EPHEMERAL_STORAGE_MB,
    "batchSize": limits.SQS_BATCH_SIZE,
    "batchingWindow": limits.BATCHING_WINDOW_SECONDS,
    "maxConcurrency": limits.SQS_MAXIMUM_CONCURRENCY,
    "maxReceiveCount": limits.SQS_MAX_RECEIVE_COUNT,
    "retryAttempts": limits.ASYNC_RETRY_ATTEMPTS,
    "maxEventAge": limits.ASYNC_EVENT_AGE_SECONDS,
}


def configuration_table(markdown: str) -> dict[str, list[str]]:
    """Rows of the `## Configuration` table: key -> the remaining cells."""
    section = markdown.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def rendered_default(entry) -> str:
    value = getattr(DEFAULTS, entry.field)
    if entry.key == "maxConcurrency":
        return f"`concurrency`, else `{DEFAULT_QUEUE_MAX_CONCURRENCY}`"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return f"`{json.dumps(list(value))}`"
    return '`""`' if value == "" else f"`{value}`"


def test_readme_configuration_table_matches_the_code():
    readme = ROOT / "README.md"
    text = readme.read_text() if readme.exists() else ""
    if "## Configuration" not in text:
        pytest.skip("README.md has no Configuration section yet")
    rows = configuration_table(text)
    assert list(rows) == [entry.key for entry in CONFIG_KEYS]
    stacks = {name: stack_config(ROOT / f"Pulumi.{name}.yaml") for name in ("dev", "prod")}
    for entry in CONFIG_KEYS:
        _meaning, default, allowed, dev, prod = rows[entry.key]
        assert default.startswith(rendered_default(entry)), (entry.key, default)
        if entry.key in RANGES:
            low, high = RANGES[entry.key]
            assert f"{low}–{high}" in allowed, (entry.key, allowed)
        for name, cell in (("dev", dev), ("prod", prod)):
            value = stacks[name].get(f"captioning:{entry.key}")
            expected = (
                "" if value is None else f"`{str(value).lower() if isinstance(value, bool) else value}`"
            )
            assert cell == expected, (name, entry.key, cell)
    assert ", ".join(map(str, limits.LOG_RETENTION_DAYS)) in rows["logRetentionDays"][2]
