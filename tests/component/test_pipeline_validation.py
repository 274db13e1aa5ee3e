"""Bad settings fail before any resource exists, naming the setting, the value and what is allowed."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

import dataclasses
import json
import shutil
from pathlib import Path

import pulumi
import pytest

from captioning import CaptioningPipeline, InvalidSettingError, PipelineSettings
from captioning.component import limits, model_sizing
from captioning.component.model_check import check_model_fits
from tests.pulumi_mocks import use_mocks

# (overrides, setting named in the error, a phrase of what is allowed)
INVALID = [
    ({"memory_size": 127}, "memory_size", "from 128 to 10240"),
    ({"memory_size": 10241}, "memory_size", "from 128 to 10240"),
    ({"memory_size": "4096"}, "memory_size", "whole number"),
    ({"timeout": 0}, "timeout", "from 1 to 900"),
    ({"timeout": 901}, "timeout", "from 1 to 900"),
    ({"ephemeral_storage": 511}, "ephemeral_storage", "from 512 to 10240"),
    ({"ephemeral_storage": 10241}, "ephemeral_storage", "from 512 to 10240"),
    ({"reserved_concurrency": -1}, "reserved_concurrency", ">= 1"),
    ({"reserved_concurrency": 0}, "reserved_concurrency", "0 would throttle every upload"),
    ({"provisioned_concurrency": -1}, "provisioned_concurrency", ">= 0"),
    (
        {"reserved_concurrency": 1, "provisioned_concurrency": 2},
        "provisioned_concurrency",
        "reserved concurrency (1)",
    ),
    ({"architecture": "amd64"}, "architecture", "'x86_64', 'arm64'"),
    ({"trigger": "sns"}, "trigger", "'direct', 'queue', 'eventbridge'"),
    ({"precision": "fp16"}, "precision", "'fp32', 'bf16', 'int8'"),
    ({"runtime": "tensorflow"}, "runtime", "'onnx', 'torch'"),
    ({"runtime": "onnx", "precision": "bf16"}, "precision", "runtime 'onnx'; set runtime to 'torch'"),
    ({"runtime": "onnx", "half_precision_weights": True}, "half_precision_weights", "runtime 'onnx'"),
    ({"prompt": "  "}, "prompt", "non-empty text"),
    ({"prompt": "a photo of"}, "prompt", "unset with runtime 'onnx'"),
    ({"tracing": "on"}, "tracing", "true or false"),
    ({"metrics": 1}, "metrics", "true or false"),
    ({"metrics_namespace": "AWS/Lambda"}, "metrics_namespace", "reserved for AWS"),
    ({"metrics_namespace": ""}, "metrics_namespace", "1-255 ASCII characters"),
    ({"alarm_emails": ("ops@example.com", "not-an-address")}, "alarm_emails", "e-mail addresses"),
    ({"alarm_period": 45}, "alarm_period", "10, 20, 30 or a multiple of 60"),
    ({"alarm_evaluation_periods": 0}, "alarm_evaluation_periods", ">= 1"),
    ({"alarm_period": 3600, "alarm_evaluation_periods": 25}, "alarm_evaluation_periods", "86400 seconds"),
    ({"errors_alarm_threshold": 0}, "errors_alarm_threshold", ">= 1"),
    ({"throttles_alarm_threshold": 0}, "throttles_alarm_threshold", ">= 1"),
    ({"duration_alarm_percent": 101}, "duration_alarm_percent", "from 1 to 100"),
    ({"queue_age_alarm_seconds": 59}, "queue_age_alarm_seconds", ">= 60"),
    ({"batch_size": 0}, "batch_size", "from 1 to 10000"),
    ({"batch_size": 10001, "batching_window": 5}, "batch_size", "from 1 to 10000"),
    ({"batch_size": 11, "batching_window": 0}, "batch_size", "batching_window is at least 1 second"),
    ({"batching_window": 301}, "batching_window", "from 0 to 300"),
    ({"trigger": "queue", "reserved_concurrency": 1}, "max_concurrency", "at least 2"),
    ({"trigger": "queue", "max_concurrency": 1}, "max_concurrency", "from 2 to 1000"),
    ({"trigger": "queue", "max_concurrency": 1001}, "max_concurrency", "from 2 to 1000"),
    (
        {"trigger": "queue", "reserved_concurrency": 3, "max_concurrency": 5},
        "max_concurrency",
        "reserved concurrency (3)",
    ),
    ({"max_receive_count": 0}, "max_receive_count", "from 1 to 1000"),
    ({"retry_attempts": 3}, "retry_attempts", "from 0 to 2"),
    ({"max_event_age": 59}, "max_event_age", "from 60 to 21600"),
    ({"log_retention_days": 2}, "log_retention_days", "1, 3, 5, 7, 14, 30"),
    ({"log_retention_days": 0}, "log_retention_days", "retention periods"),
    ({"num_beams": 0}, "num_beams", ">= 1"),
    ({"max_length": 0}, "max_length", ">= 1"),
    ({"images_to_keep": 0}, "images_to_keep", ">= 1"),
    ({"model_id": " "}, "model_id", "non-empty"),
    ({"key_suffixes": (".jpeg", "peg")}, "key_suffixes", "do not overlap"),
    ({"key_suffixes": (".jpg", ".jpg")}, "key_suffixes", "do not overlap"),
    ({"key_suffixes": (".jpg", "")}, "key_suffixes", "non-empty strings"),
    ({"force_destroy": "yes"}, "force_destroy", "true or false"),
    ({"half_precision_weights": 1}, "half_precision_weights", "true or false"),
    ({"model_dir": ""}, "model_dir", "a model directory, or unset"),
    # Issue 22: an existing bucket, a key, a boundary, a VPC, caption events.
    ({"existing_bucket_name": "their-photos"}, "existing_bucket_name", "only with trigger 'eventbridge'"),
    (
        {"existing_bucket_name": "their-photos", "trigger": "queue"},
        "existing_bucket_name",
        "trigger is 'queue'",
    ),
    (
        {"existing_bucket_name": "s3://their-photos", "trigger": "eventbridge"},
        "existing_bucket_name",
        "the name, not an ARN or s3:// URL",
    ),
    ({"existing_bucket_name": "", "trigger": "eventbridge"}, "existing_bucket_name", "3-63 lowercase"),
    ({"manage_bucket_notifications": True}, "manage_bucket_notifications", "unless existing_bucket_name"),
    (
        {"existing_bucket_name": "b-b", "trigger": "eventbridge", "manage_bucket_notifications": "yes"},
        "manage_bucket_notifications",
        "true or false",
    ),
    ({"kms_key_arn": "alias/captions"}, "kms_key_arn", "a KMS key ARN"),
    ({"kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/my-key"}, "kms_key_arn", "a KMS key ARN"),
    (
        {"kms_key_arn": "arn:aws:kms:us-east-1:1234:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"},
        "kms_key_arn",
        "ARN",
    ),
    ({"kms_key_arn": "arn:aws:kms:us-east-1:123456789012:alias/captions"}, "kms_key_arn", "alias ARN"),
    ({"kms_key_arn": "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"}, "kms_key_arn", "a key id or alias"),
    ({"kms_key_arn": "arn:aws:s3:::bucket"}, "kms_key_arn", "arn:aws:kms:REGION:ACCOUNT:key/KEY-ID"),
    ({"permissions_boundary": "team-boundary"}, "permissions_boundary", "an IAM policy ARN"),
    (
        {"permissions_boundary": "arn:aws:iam::123456789012:role/team"},
        "permissions_boundary",
        "arn:aws:iam::ACCOUNT:policy/NAME",
    ),
    ({"vpc_subnet_ids": ("subnet-0123456789abcdef0",)}, "vpc_subnet_ids", "only together with vpc_security"),
    (
        {"vpc_security_group_ids": ("sg-0123456789abcdef0",)},
        "vpc_security_group_ids",
        "only together with vpc_subnet_ids",
    ),
    (
        {"vpc_subnet_ids": ("vpc-0123456789abcdef0",), "vpc_security_group_ids": ("sg-0123456789abcdef0",)},
        "vpc_subnet_ids",
        '["subnet-0123456789abcdef0"]',
    ),
    (
        {"vpc_subnet_ids": "subnet-0123456789abcdef0", "vpc_security_group_ids": ("sg-0123456789abcdef0",)},
        "vpc_subnet_ids",
        "a list of ids",
    ),
    (
        {"vpc_subnet_ids": ("subnet-01234567",), "vpc_security_group_ids": ("sg-01234567",) * 2},
        "vpc_security_group_ids",
        "not repeated",
    ),
    (
        {
            "vpc_subnet_ids": tuple(f"subnet-012345{i:02x}" for i in range(17)),
            "vpc_security_group_ids": ("sg-01234567",),
        },
        "vpc_subnet_ids",
        "at most 16 ids",
    ),
    ({"event_bus_name": "captions"}, "event_bus_name", "unset unless caption_events is true"),
    (
        {"caption_events": True, "event_bus_name": "arn:aws:events:us-east-1:1:event-bus/x"},
        "event_bus_name",
        "not an ARN",
    ),
    ({"caption_events": "yes"}, "caption_events", "true or false"),
    ({"table_stream": 1}, "table_stream", "true or false"),
    (
        {"trigger": "eventbridge", "key_prefix": "p" * 80},
        "key_suffixes",
        "over EventBridge's 2048",
    ),
    ({"trigger": "eventbridge", "reserved_concurrency": 1}, "max_concurrency", "trigger 'eventbridge'"),
    # Issue 21: SnapStart excludes provisioned concurrency and more ephemeral storage.
    (
        {"snap_start": True, "provisioned_concurrency": 1},
        "snap_start",
        "false while provisioned_concurrency is above 0",
    ),
    (
        {"snap_start": True, "ephemeral_storage": 513},
        "snap_start",
        "false while ephemeral_storage is above 512",
    ),
    ({"snap_start": "on"}, "snap_start", "true or false"),
]

# Refused by the explicit model check the component runs (check_model_fits): these read the model
# directory or size the model; constructing the settings reads nothing.
MODEL_INVALID = [
    (
        {"trigger": "queue", "batch_size": 10000, "batching_window": 300, "memory_size": 10240},
        "memory_size",
        "none fits nlpconnect/vit-gpt2-image-captioning",
    ),
    (
        {"memory_size": 1024},
        "memory_size",
        "the smallest memory that fits nlpconnect/vit-gpt2-image-captioning",
    ),
    ({"model_dir": "no/such/model"}, "model_dir", "is not one; a relative path is taken from the program's"),
    ({"model_dir": "samples"}, "model_dir", "samples is missing config.json and weights (model.safetensors"),
    (
        {"model_dir": "captioning/preparation/hub_model"},
        "model_dir",
        "hub_model is missing config.json and weights",
    ),
]


@pytest.mark.parametrize(("overrides", "setting", "allowed"), INVALID, ids=[case[1] for case in INVALID])
def test_invalid_setting_is_refused_with_a_clear_error(overrides, setting, allowed):
    with pytest.raises(InvalidSettingError) as caught:
        PipelineSettings(**overrides)
    _assert_names(caught.value, setting, allowed)


@pytest.mark.parametrize(
    ("overrides", "setting", "allowed"), MODEL_INVALID, ids=[case[1] for case in MODEL_INVALID]
)
def test_a_model_that_does_not_fit_is_refused_by_the_model_check(overrides, setting, allowed):
    settings = PipelineSettings(**overrides)  # nothing read yet
    with pytest.raises(InvalidSettingError) as caught:
        check_model_fits(settings)
    _assert_names(caught.value, setting, allowed)


def _assert_names(error: InvalidSettingError, setting: str, allowed: str) -> None:
    assert error.setting == setting
    message = str(error)
    assert message.startswith(f"{setting}=")
    assert repr(error.value) in message
    assert allowed in message


def test_constructing_settings_reads_no_model_and_asks_no_hub(monkeypatch):
    """The tools build PipelineSettings to read defaults: no file, no network, no Pulumi root."""
    monkeypatch.setattr(model_sizing, "model_footprint", lambda *_: pytest.fail("sized at construction"))
    PipelineSettings(model_id="acme/not-in-the-table", memory_size=128)
    PipelineSettings(model_dir="no/such/model")


@pytest.mark.parametrize("overrides", [{"memory_size": 1024}, {"model_dir": "no/such/model"}])
def test_the_component_runs_the_model_check_before_any_resource_is_created(overrides):
    mocks = use_mocks()
    settings = PipelineSettings(**overrides)

    @pulumi.runtime.test
    def deploy():
        CaptioningPipeline("test", settings)

    with pytest.raises(InvalidSettingError, match=next(iter(overrides))):
        deploy()
    assert mocks.registrations == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"memory_size": 128, "timeout": 1, "ephemeral_storage": 512, "model_dir": "models/demo-shapes"},
        {"memory_size": 10240, "timeout": 900, "ephemeral_storage": 10240},
        {"trigger": "queue", "batch_size": 10, "batching_window": 0, "reserved_concurrency": 2},
        {"reserved_concurrency": 1},
        {"runtime": "torch", "precision": "bf16", "half_precision_weights": True},
        {"runtime": "onnx", "precision": "int8"},
        {"num_beams": None, "max_length": None, "prompt": "<DETAILED_CAPTION>", "runtime": "torch"},
        {"alarm_period": 10, "alarm_emails": ("ops@example.com",), "metrics_namespace": "Team/Captions"},
        {"alarm_period": 3600, "alarm_evaluation_periods": 24, "duration_alarm_percent": 100},
        {"reserved_concurrency": 3, "provisioned_concurrency": 3},
        {"log_retention_days": 3653, "retry_attempts": 0, "max_event_age": 21600},
        {"key_suffixes": ()},
    ],
)
def test_settings_at_aws_limits_are_accepted(overrides):
    settings = PipelineSettings(**overrides)
    check_model_fits(settings)
    for name, value in overrides.items():
        assert getattr(settings, name) == value


def test_every_cloudwatch_retention_period_is_accepted():
    for days in limits.LOG_RETENTION_DAYS:
        assert PipelineSettings(log_retention_days=days).log_retention_days == days


def test_args_changed_after_creation_are_checked_before_any_resource_is_created():
    mocks = use_mocks()
    args = PipelineSettings()
    args.memory_size = 20000

    @pulumi.runtime.test
    def deploy():
        CaptioningPipeline("test", args)

    with pytest.raises(InvalidSettingError, match="memory_size=20000"):
        deploy()
    assert mocks.registrations == []


def test_every_field_has_a_default():
    for field in dataclasses.fields(PipelineSettings):
        assert field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING, (
            field.name
        )


DEMO_MODEL = Path(__file__).resolve().parents[2] / "models" / "demo-shapes"


@pytest.mark.parametrize(
    ("files", "missing"),
    [
        ({}, "missing config.json and weights (model.safetensors or pytorch_model.bin"),
        ({"config.json": "{}"}, "missing weights (model.safetensors or pytorch_model.bin"),
        ({"config.json": "{}", "model.onnx": "graph"}, "missing weights ("),
        ({"onnx_model.json": "{}", "encoder.onnx": ""}, "missing decoder_step.onnx and tokenizer.json"),
    ],
    ids=["empty", "config-only", "stray-onnx", "onnx-without-decoder"],
)
def test_a_model_dir_that_holds_no_model_is_refused_naming_what_is_missing(
    files: dict[str, str], missing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "not-a-model"
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    notes: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: notes.append(message))
    with pytest.raises(InvalidSettingError) as caught:
        check_model_fits(PipelineSettings(model_dir=str(directory)))
    error = caught.value
    assert error.setting == "model_dir"
    message = str(error)
    assert f"{directory} is {missing}" in message
    assert "a model directory holds config.json plus weights" in message and "onnx_model.json" in message
    assert notes == [], "refused before the memory check could note it skipped"


def _prepared_onnx(directory: Path, precision: str) -> Path:
    directory.mkdir()
    (directory / "onnx_model.json").write_text(json.dumps({"format": 1, "precision": precision}))
    (directory / "config.json").write_text(json.dumps({"model_type": "vision-encoder-decoder"}))
    for name in ("encoder.onnx", "decoder_step.onnx", "tokenizer.json"):
        (directory / name).write_bytes(b"\0" * 1000)
    return directory


def test_a_prepared_onnx_model_dir_is_accepted_for_its_runtime_and_precision(tmp_path: Path) -> None:
    directory = _prepared_onnx(tmp_path / "exported", "int8")
    check_model_fits(PipelineSettings(model_dir=str(directory), runtime="onnx", precision="int8"))
    with pytest.raises(InvalidSettingError, match=r"precision='fp32' is not allowed: 'int8' with model_dir"):
        check_model_fits(PipelineSettings(model_dir=str(directory), runtime="onnx", precision="fp32"))
    with pytest.raises(InvalidSettingError) as caught:
        check_model_fits(PipelineSettings(model_dir=str(directory), runtime="torch", precision="fp32"))
    assert caught.value.setting == "runtime"
    assert "'onnx' with model_dir" in str(caught.value) and "config.json and weights" in str(caught.value)


def test_a_copied_transformers_model_is_accepted(tmp_path: Path) -> None:
    shutil.copytree(DEMO_MODEL, tmp_path / "mine")
    for runtime in ("onnx", "torch"):
        check_model_fits(
            PipelineSettings(model_dir=str(tmp_path / "mine"), runtime=runtime, memory_size=3008)
        )


def test_a_model_dir_that_holds_no_model_registers_no_resource(tmp_path: Path) -> None:
    mocks = use_mocks()
    args = PipelineSettings()
    args.model_dir = str(tmp_path)  # an empty folder

    @pulumi.runtime.test
    def deploy():
        CaptioningPipeline("test", args)

    with pytest.raises(InvalidSettingError, match="is missing config.json and weights"):
        deploy()
    assert mocks.registrations == []
