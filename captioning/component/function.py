"""The captioning function: its role, log group, the function itself and the warm `live` alias."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from captioning.component import policies
from captioning.component.settings import PipelineSettings
from captioning.contract import constants
from captioning.contract.environment import Variable

LIVE_ALIAS = "live"


@dataclass
class CaptioningFunction:
    role: aws.iam.Role
    role_policy: aws.iam.RolePolicy
    log_group: aws.cloudwatch.LogGroup
    function: aws.lambda_.Function
    alias: aws.lambda_.Alias | None
    provisioned_concurrency: aws.lambda_.ProvisionedConcurrencyConfig | None

    @property
    def target_arn(self) -> pulumi.Output[str]:
        """What triggers invoke: the `live` alias when it exists (provisioned concurrency, SnapStart),
        else the unqualified function."""
        return self.alias.arn if self.alias is not None else self.function.arn

    @property
    def qualifier(self) -> pulumi.Output[str] | None:
        return self.alias.name if self.alias is not None else None


@dataclass
class FunctionGrants:
    """ARNs the function's role is scoped to."""

    bucket_arn: pulumi.Output[str]
    table_arn: pulumi.Output[str]
    dead_letter_queue_arn: pulumi.Output[str]
    queue_arn: pulumi.Output[str] | None
    region: pulumi.Input[str]
    account_id: pulumi.Input[str]


def environment(settings: PipelineSettings, table_name: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    """The handler's environment: what captioning/function/settings.py reads, and Powertools' own switches.

    Generation settings the user left unset are not written: the model's own generate() defaults apply.
    """
    variables: dict[str, pulumi.Input[str]] = {
        Variable.TABLE_NAME: table_name,
        Variable.MODEL_ID: settings.model_id,
        Variable.RUNTIME: settings.runtime,
        Variable.PRECISION: settings.precision,
        Variable.MAX_OBJECT_BYTES: str(settings.max_object_bytes),
        Variable.POWERTOOLS_SERVICE_NAME: constants.SERVICE_NAME,
        Variable.POWERTOOLS_METRICS_NAMESPACE: settings.metrics_namespace,
        Variable.POWERTOOLS_METRICS_DISABLED: _flag(not settings.metrics),
        Variable.POWERTOOLS_TRACE_DISABLED: _flag(not settings.tracing),
    }
    optional = {
        Variable.NUM_BEAMS: settings.num_beams,
        Variable.MAX_LENGTH: settings.max_length,
        Variable.PROMPT: settings.prompt,
    }
    variables.update({name: str(value) for name, value in optional.items() if value is not None})
    if settings.caption_events:
        variables[Variable.CAPTION_EVENTS] = _flag(True)
        if settings.event_bus_name is not None:
            variables[Variable.EVENT_BUS_NAME] = settings.event_bus_name
    return variables


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _role_policy_json(
    settings: PipelineSettings, grants: FunctionGrants, log_group_arn: pulumi.Output[str]
) -> pulumi.Output[str]:
    queue_arn = grants.queue_arn if grants.queue_arn is not None else pulumi.Output.from_input(None)

    def document(arns: list) -> str:
        bucket_arn, table_arn, log_arn, dead_letter_queue_arn, upload_queue_arn, region, account_id = arns
        key_use = (
            policies.KeyUse(settings.kms_key_arn, region, reads_bucket=settings.creates_bucket)
            if settings.kms_key_arn is not None
            else None
        )
        bus_arn = (
            policies.event_bus_arn(region=region, account_id=account_id, bus_name=settings.event_bus_name)
            if settings.caption_events
            else None
        )
        return json.dumps(
            policies.function_role_policy(
                bucket_arn=bucket_arn,
                key_prefix=settings.key_prefix,
                table_arn=table_arn,
                log_group_arn=log_arn,
                dead_letter_queue_arn=dead_letter_queue_arn,
                queue_arn=upload_queue_arn,
                consumes_queue=grants.queue_arn is not None,
                tracing=settings.tracing,
                key_use=key_use,
                in_vpc=settings.in_vpc,
                event_bus_arn=bus_arn,
            )
        )

    return pulumi.Output.all(
        grants.bucket_arn,
        grants.table_arn,
        log_group_arn,
        grants.dead_letter_queue_arn,
        queue_arn,
        grants.region,
        grants.account_id,
    ).apply(document)


def _vpc_config(settings: PipelineSettings) -> aws.lambda_.FunctionVpcConfigArgs | None:
    if not settings.in_vpc:
        return None
    return aws.lambda_.FunctionVpcConfigArgs(
        subnet_ids=list(settings.vpc_subnet_ids), security_group_ids=list(settings.vpc_security_group_ids)
    )


def _snap_start(settings: PipelineSettings) -> aws.lambda_.FunctionSnapStartArgs | None:
    # Snapshots are taken of published versions only; the triggers invoke them through the `live` alias.
    return aws.lambda_.FunctionSnapStartArgs(apply_on="PublishedVersions") if settings.snap_start else None


def create_captioning_function(
    name: str,
    settings: PipelineSettings,
    *,
    image_uri: pulumi.Output[str],
    table_name: pulumi.Output[str],
    grants: FunctionGrants,
    parent: pulumi.Resource,
) -> CaptioningFunction:
    child = pulumi.ResourceOptions(parent=parent)
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        retention_in_days=settings.log_retention_days,
        kms_key_id=settings.kms_key_arn,
        tags=settings.tags,
        opts=child,
    )
    role = aws.iam.Role(
        f"{name}-function-role",
        assume_role_policy=json.dumps(policies.lambda_assume_role_policy()),
        permissions_boundary=settings.permissions_boundary,
        tags=settings.tags,
        opts=child,
    )
    role_policy = aws.iam.RolePolicy(
        f"{name}-function-policy",
        role=role.id,
        policy=_role_policy_json(settings, grants, log_group.arn),
        opts=child,
    )
    publish = settings.publishes_versions
    function = aws.lambda_.Function(
        f"{name}-function",
        package_type="Image",
        image_uri=image_uri,
        role=role.arn,
        architectures=[settings.architecture],
        memory_size=settings.memory_size,
        timeout=settings.timeout,
        ephemeral_storage=aws.lambda_.FunctionEphemeralStorageArgs(size=settings.ephemeral_storage),
        reserved_concurrent_executions=settings.reserved_concurrency,
        publish=publish,
        snap_start=_snap_start(settings),
        vpc_config=_vpc_config(settings),
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment(settings, table_name)),
        # Active: Lambda samples and starts the trace itself; PassThrough records only what callers trace.
        tracing_config=aws.lambda_.FunctionTracingConfigArgs(
            mode="Active" if settings.tracing else "PassThrough"
        ),
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(
            log_format="JSON",
            log_group=log_group.name,
            application_log_level="INFO",
            system_log_level="WARN",
        ),
        tags=settings.tags,
        # Without its permissions in place the first invocations would fail to log or to read.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[role_policy]),
    )
    alias = None
    provisioned = None
    if publish:
        # Each publish moves the alias to the new version; SnapStart snapshots that version first.
        alias = aws.lambda_.Alias(
            f"{name}-{LIVE_ALIAS}",
            name=LIVE_ALIAS,
            function_name=function.name,
            function_version=function.version,
            opts=child,
        )
    if settings.provisioned_concurrency > 0 and alias is not None:
        provisioned = aws.lambda_.ProvisionedConcurrencyConfig(
            f"{name}-provisioned-concurrency",
            function_name=function.name,
            qualifier=alias.name,
            provisioned_concurrent_executions=settings.provisioned_concurrency,
            opts=child,
        )
    return CaptioningFunction(role, role_policy, log_group, function, alias, provisioned)
