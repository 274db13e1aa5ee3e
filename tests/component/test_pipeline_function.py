"""The function: sized from args, its own log group, a least-privilege role, the warm `live` alias."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

import pulumi
import pytest

from captioning import CaptioningPipeline, PipelineSettings
from captioning.component.function import environment
from captioning.contract import constants
from captioning.function.settings import Settings
from tests.pulumi_mocks import as_list, deploy, statements, use_mocks


@pulumi.runtime.test
def test_function_runs_the_image_with_the_configured_size():
    use_mocks()
    args = PipelineSettings(
        memory_size=3008, timeout=300, reserved_concurrency=7, architecture="arm64", ephemeral_storage=2048
    )
    function = CaptioningPipeline("test", args).captioning_function.function

    def check(values):
        package_type, memory, timeout, reserved, architectures, storage = values
        assert package_type == "Image"
        assert (memory, timeout, reserved) == (3008, 300, 7)
        assert architectures == ["arm64"]
        assert storage["size"] == 2048

    return pulumi.Output.all(
        function.package_type,
        function.memory_size,
        function.timeout,
        function.reserved_concurrent_executions,
        function.architectures,
        function.ephemeral_storage,
    ).apply(check)


@pulumi.runtime.test
def test_unset_concurrency_reserves_nothing():
    use_mocks()
    function = CaptioningPipeline("test", PipelineSettings()).captioning_function.function

    def check(values):
        assert values == [None]

    return pulumi.Output.all(function.reserved_concurrent_executions).apply(check)


@pulumi.runtime.test
def test_environment_carries_the_table_and_the_generation_settings():
    use_mocks()
    args = PipelineSettings(
        model_id="acme/captioner",
        runtime="torch",
        num_beams=2,
        max_length=24,
        precision="bf16",
        max_object_bytes=1000,
    )
    pipeline = CaptioningPipeline("test", args)

    def check(values):
        environment, table_name = values
        variables = environment["variables"]
        assert variables["TABLE_NAME"] == table_name
        assert variables["MODEL_ID"] == "acme/captioner"
        assert variables["NUM_BEAMS"] == "2"
        assert variables["MAX_LENGTH"] == "24"
        assert variables["PRECISION"] == "bf16"
        assert variables["MAX_OBJECT_BYTES"] == "1000"
        assert variables["POWERTOOLS_SERVICE_NAME"] == "captioning"
        assert all(isinstance(value, str) for value in variables.values())

    return pulumi.Output.all(
        pipeline.captioning_function.function.environment, pipeline.captions_table.name
    ).apply(check)


@pytest.mark.parametrize(
    "args",
    [
        PipelineSettings(),
        PipelineSettings(
            model_id="Salesforce/blip-image-captioning-base",
            runtime="torch",
            precision="bf16",
            num_beams=3,
            max_length=30,
            prompt="a picture of",
            max_object_bytes=4096,
            metrics=False,
            tracing=False,
        ),
    ],
    ids=["defaults", "every-setting"],
)
def test_the_environment_the_component_writes_is_what_the_handler_reads(args):
    settings = Settings.from_environment(environment(args, "captions-table"))
    assert settings == Settings(
        table_name="captions-table",
        model_dir=settings.model_dir,
        model_id=args.model_id,
        runtime=args.runtime,
        precision=args.precision,
        num_beams=args.num_beams,
        max_length=args.max_length,
        prompt=args.prompt,
        max_object_bytes=args.max_object_bytes,
        metrics_enabled=args.metrics,
        tracing_enabled=args.tracing,
    )
    assert str(settings.model_dir) == constants.MODEL_DIR_IN_IMAGE


def test_generation_settings_left_unset_are_left_to_the_model():
    variables = environment(PipelineSettings(), "captions-table")
    assert not {"NUM_BEAMS", "MAX_LENGTH", "PROMPT"} & variables.keys()
    assert variables["RUNTIME"] == "onnx"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == constants.DEFAULT_METRICS_NAMESPACE
    assert variables["POWERTOOLS_METRICS_DISABLED"] == variables["POWERTOOLS_TRACE_DISABLED"] == "false"


@pytest.mark.parametrize(("tracing", "mode"), [(True, "Active"), (False, "PassThrough")])
@pulumi.runtime.test
def test_tracing_setting_switches_xray_active_tracing(tracing, mode):
    use_mocks()
    function = CaptioningPipeline("test", PipelineSettings(tracing=tracing)).captioning_function.function

    def check(values):
        (tracing_config,) = values
        assert tracing_config["mode"] == mode

    return pulumi.Output.all(function.tracing_config).apply(check)


@pulumi.runtime.test
def test_function_logs_json_to_its_own_log_group_with_retention():
    use_mocks()
    parts = CaptioningPipeline("test", PipelineSettings(log_retention_days=14)).captioning_function

    def check(values):
        logging_config, log_group_name, retention = values
        assert logging_config["log_format"] == "JSON"
        assert logging_config["log_group"] == log_group_name
        assert retention == 14

    return pulumi.Output.all(
        parts.function.logging_config, parts.log_group.name, parts.log_group.retention_in_days
    ).apply(check)


def _grants(document: str) -> dict[str, tuple[list[str], list[str]]]:
    """Sid -> (actions, resources) of every Allow statement."""
    return {
        statement["Sid"]: (sorted(as_list(statement["Action"])), sorted(as_list(statement["Resource"])))
        for statement in statements(document)
        if statement["Effect"] == "Allow"
    }


@pytest.mark.parametrize("trigger", ["direct", "queue"])
@pulumi.runtime.test
def test_role_grants_only_what_the_handler_needs_on_its_own_resources(trigger):
    use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings(trigger=trigger, key_prefix="uploads/"))
    parts = pipeline.captioning_function
    queue_arn = pipeline.upload_queue.arn if pipeline.upload_queue is not None else None

    def check(values):
        document, role_name, bucket_arn, table_arn, log_group_arn, dlq_arn, queue = values
        assert role_name
        expected = {
            "ReadUploadedImages": (["s3:GetObject"], [f"{bucket_arn}/uploads/*"]),
            "WriteCaptions": (["dynamodb:PutItem", "dynamodb:UpdateItem"], [table_arn]),
            "RecogniseDuplicates": (["dynamodb:BatchGetItem"], [table_arn]),
            "WriteOwnLogs": (["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
            "ParkFailedEvents": (["sqs:SendMessage"], [dlq_arn]),
            # Tracing is on by default; X-Ray has no resource-level permissions.
            "SendTraces": (["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"]),
        }
        if trigger == "queue":
            expected["ConsumeUploadQueue"] = (
                ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
                [queue],
            )
        assert _grants(document) == expected

    return pulumi.Output.all(
        parts.role_policy.policy,
        parts.role_policy.role,
        pipeline.images_bucket.bucket.arn,
        pipeline.captions_table.arn,
        parts.log_group.arn,
        pipeline.dead_letter_queue.arn,
        queue_arn,
    ).apply(check)


def test_only_lambda_assumes_the_role_and_no_managed_policy_is_attached():
    mocks, _ = deploy(lambda: CaptioningPipeline("test", PipelineSettings()))
    role = mocks.one_of_type("aws:iam/role:Role").inputs
    (statement,) = statements(role["assumeRolePolicy"])
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    # AWSLambdaBasicExecutionRole would allow logs on every log group ("*").
    assert not role.get("managedPolicyArns")
    assert not mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert not mocks.of_type("aws:iam/policyAttachment:PolicyAttachment")
    assert [r.name for r in mocks.of_type("aws:iam/rolePolicy:RolePolicy")] == ["test-function-policy"]


@pulumi.runtime.test
def test_function_is_created_after_its_permissions():
    mocks = use_mocks()
    function = CaptioningPipeline("test", PipelineSettings()).captioning_function.function

    def check(_):
        assert mocks.named("test-function-policy").urn in mocks.named("test-function").dependencies

    return function.arn.apply(check)


def test_without_provisioned_concurrency_nothing_is_published():
    mocks, pipeline = deploy(lambda: CaptioningPipeline("test", PipelineSettings(provisioned_concurrency=0)))
    function = mocks.named("test-function")
    assert not function.inputs.get("publish")
    assert pipeline.captioning_function.alias is None
    assert not mocks.of_type("aws:lambda/alias:Alias")
    assert not mocks.of_type("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig")
    targets = {
        rule["lambdaFunctionArn"] for rule in mocks.named("test-notification").inputs["lambdaFunctions"]
    }
    assert targets == {function.outputs["arn"]}


@pytest.mark.parametrize("trigger", ["direct", "queue"])
@pulumi.runtime.test
def test_provisioned_concurrency_warms_the_live_alias_that_the_trigger_targets(trigger):
    use_mocks()
    args = PipelineSettings(trigger=trigger, reserved_concurrency=4, provisioned_concurrency=2)
    pipeline = CaptioningPipeline("test", args)
    parts = pipeline.captioning_function
    if trigger == "direct":
        targets = [
            pipeline.trigger.notification.lambda_functions.apply(
                lambda rules: sorted({rule["lambda_function_arn"] for rule in rules})
            ),
            pipeline.trigger.permission.qualifier,
            pipeline.trigger.invoke_config.qualifier,
        ]
    else:
        targets = [pipeline.trigger.event_source_mapping.function_name]

    def check(values):
        publish, version, alias_name, alias_function, alias_version, function_name, alias_arn = values[:7]
        pc_function, pc_qualifier, pc_count = values[7:10]
        assert publish is True
        assert (alias_name, alias_function, alias_version) == ("live", function_name, version)
        assert (pc_function, pc_qualifier, pc_count) == (function_name, "live", 2)
        if trigger == "direct":
            notification_targets, permission_qualifier, invoke_qualifier = values[10:]
            assert notification_targets == [alias_arn]
            assert permission_qualifier == invoke_qualifier == "live"
        else:
            (mapping_target,) = values[10:]
            assert mapping_target == alias_arn

    return pulumi.Output.all(
        parts.function.publish,
        parts.function.version,
        parts.alias.name,
        parts.alias.function_name,
        parts.alias.function_version,
        parts.function.name,
        parts.alias.arn,
        parts.provisioned_concurrency.function_name,
        parts.provisioned_concurrency.qualifier,
        parts.provisioned_concurrency.provisioned_concurrent_executions,
        *targets,
    ).apply(check)
