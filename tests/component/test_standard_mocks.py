"""The component under Pulumi's standard mocks, exactly as Pulumi's docs write them: every resource's outputs
are its inputs (so every ARN, name, URL and digest AWS computes is None) and every call answers `{}` (or
its arguments). No apply of the component may need such a value; and captioning.testing's mocks give the
same program AWS-shaped values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest

from captioning import CaptioningPipeline, CaptioningPipelineArgs
from captioning.testing import ACCOUNT_ID, REGION, CaptioningMocks


class StandardMocks(pulumi.runtime.Mocks):
    """https://www.pulumi.com/docs/iac/guides/testing/unit/ (Python)."""

    def __init__(self, echo_call_arguments: bool) -> None:
        self.echo_call_arguments = echo_call_arguments

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        return [args.name + "_id", args.inputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return args.args if self.echo_call_arguments else {}


DEMO_MODEL = Path(__file__).resolve().parents[2] / "models" / "demo-shapes"

SHAPES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "queue mode": {"trigger": "queue", "batch_size": 4, "max_concurrency": 3},
    "provisioned concurrency": {"provisioned_concurrency": 1, "reserved_concurrency": 2},
    "queue mode, provisioned": {"trigger": "queue", "provisioned_concurrency": 2, "reserved_concurrency": 3},
    "alarm e-mails, no metrics or tracing": {
        "alarm_emails": ["ops@example.com"],
        "metrics": False,
        "tracing": False,
        "key_prefix": "uploads/",
    },
    "a local model directory": {"model_dir": str(DEMO_MODEL), "runtime": "torch"},
    "eventbridge, SnapStart, key, VPC, events": {
        "trigger": "eventbridge",
        "snap_start": True,
        "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
        "vpc_subnet_ids": ["subnet-0123456789abcdef0"],
        "vpc_security_group_ids": ["sg-0123456789abcdef0"],
        "caption_events": True,
        "table_stream": True,
    },
    "an existing bucket": {"trigger": "eventbridge", "existing_bucket_name": "their-photos"},
}
QUEUED = ("queue", "eventbridge")


def _outputs(pipeline: CaptioningPipeline) -> list[pulumi.Output[Any]]:
    """Every output of the component and of its exposed children, so the test waits for all of them."""
    outputs = [
        pipeline.bucket_name,
        pipeline.table_name,
        pipeline.function_name,
        pipeline.function_arn,
        pipeline.function_target_arn,
        pipeline.image_uri,
        pipeline.dead_letter_queue_url,
        pipeline.alarm_topic_arn,
        pipeline.dashboard_name,
        pipeline.key_prefix,
        pipeline.key_suffixes,
        pipeline.dashboard.dashboard_body,
        pipeline.function_image.pushed.urn,
        *([pipeline.notification.urn] if pipeline.notification is not None else []),
        *([pipeline.uploads_rule.urn] if pipeline.uploads_rule is not None else []),
        *([pipeline.table_stream_arn] if pipeline.table_stream_arn is not None else []),
        pipeline.captioning_function.role_policy.policy,
    ]
    if pipeline.queue_url is not None:
        outputs.append(pipeline.queue_url)
    return outputs


@pytest.mark.parametrize("echo_call_arguments", [False, True], ids=["call returns {}", "call echoes"])
@pytest.mark.parametrize("shape", SHAPES)
@pulumi.runtime.test
def test_the_component_runs_under_the_standard_mocks(shape, echo_call_arguments, tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTIONING_BUILD_CACHE", str(tmp_path))
    pulumi.runtime.set_mocks(StandardMocks(echo_call_arguments), preview=False)
    settings = SHAPES[shape]
    pipeline = CaptioningPipeline("captioning", CaptioningPipelineArgs(**settings))

    def check(values: list[Any]) -> None:
        body = json.loads(values[-1])
        role_policy = json.loads(
            values[len(_outputs(pipeline)) - (2 if pipeline.queue_url is not None else 1)]
        )
        sids = {statement["Sid"] for statement in role_policy["Statement"]}
        # queue mode keeps its consumer permissions although the mock leaves the queue's ARN unset
        assert ("ConsumeUploadQueue" in sids) == (settings.get("trigger") in QUEUED)
        charts = [w for w in body["widgets"] if w["type"] == "metric"]
        assert charts, "the dashboard has its charts even when no output is known"
        depth = next(w for w in charts if w["properties"]["title"].startswith("Queue depth"))
        assert len(depth["properties"]["metrics"]) == (2 if settings.get("trigger") in QUEUED else 1)

    return pulumi.Output.all(
        *_outputs(pipeline),
        pipeline.function.memory_size,
        pipeline.function.reserved_concurrent_executions,
        pipeline.dashboard.dashboard_body,
    ).apply(check)


DIGEST_URI = re.compile(rf"^{ACCOUNT_ID}\.dkr\.ecr\.{REGION}\.amazonaws\.com/[^@:]+@sha256:[0-9a-f]{{64}}$")


@pytest.mark.parametrize("shape", SHAPES)
@pulumi.runtime.test
def test_the_packages_mocks_give_aws_shaped_values(shape, tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTIONING_BUILD_CACHE", str(tmp_path))
    mocks = CaptioningMocks()
    pulumi.runtime.set_mocks(mocks, project="consumer", stack="dev", preview=False)
    settings = SHAPES[shape]
    pipeline = CaptioningPipeline("captioning", CaptioningPipelineArgs(**settings))

    def check(values: list[Any]) -> None:
        bucket, function_arn, target_arn, image_uri, queue_url, body = values
        assert function_arn.startswith(f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:captioning-function")
        if settings.get("provisioned_concurrency") or settings.get("snap_start"):
            assert target_arn == f"{function_arn}:live"
        else:
            assert target_arn == function_arn
        assert DIGEST_URI.match(image_uri), image_uri
        assert (
            bucket == settings["existing_bucket_name"]
            if "existing_bucket_name" in settings
            else (bucket.startswith("captioning-images"))
        )
        if settings.get("trigger") in QUEUED:
            assert queue_url.startswith(f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/captioning-uploads")
        else:
            assert queue_url is None
        charts = json.loads(body)["widgets"]
        assert {w["properties"]["region"] for w in charts if w["type"] == "metric"} == {REGION}
        (alarm_widget,) = [w for w in charts if w["type"] == "alarm"]
        assert alarm_widget["properties"]["alarms"]
        assert all(
            arn.startswith(f"arn:aws:cloudwatch:{REGION}:") for arn in alarm_widget["properties"]["alarms"]
        )

    return pulumi.Output.all(
        pipeline.bucket_name,
        pipeline.function_arn,
        pipeline.function_target_arn,
        pipeline.image_uri,
        pipeline.queue_url,
        pipeline.dashboard.dashboard_body,
    ).apply(check)
