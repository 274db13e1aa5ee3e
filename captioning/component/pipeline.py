"""CaptioningPipeline: S3 upload -> Lambda (container image) -> DynamoDB caption, in one component."""

import inspect

import pulumi
import pulumi_aws as aws
from pulumi.provider.experimental.util import camel_case

from captioning.component.args import CaptioningPipelineArgs
from captioning.component.function import CaptioningFunction, FunctionGrants, create_captioning_function
from captioning.component.image import FunctionImage, create_function_image
from captioning.component.model_check import check_model_fits
from captioning.component.monitoring import Monitoring, create_monitoring
from captioning.component.queues import create_dead_letter_queue, create_upload_queue
from captioning.component.settings import PipelineSettings, resolve_settings
from captioning.component.storage import (
    CaptionedBucket,
    ImagesBucket,
    captioned_bucket,
    create_captions_table,
)
from captioning.component.triggers import (
    EventBridgeTrigger,
    Trigger,
    connect_direct,
    connect_eventbridge,
    connect_queue,
)

PACKAGE_NAME = "captioning"
"""The Pulumi package serving the component (`pulumi package add`); also the Python distribution's name."""

TYPE_TOKEN = f"{PACKAGE_NAME}:index:CaptioningPipeline"


class CaptioningPipeline(pulumi.ComponentResource):
    """Captions every image uploaded to its bucket and stores the caption in its table (DynamoDB)."""

    # The outputs, in every language (no `from __future__ import annotations`: the provider's schema
    # inference reads these annotations as types).
    bucket_name: pulumi.Output[str]
    """Bucket to upload images to: the one created, or existingBucketName."""
    table_name: pulumi.Output[str]
    """Table holding one item per object key: its caption, or why it has none."""
    function_name: pulumi.Output[str]
    """Name of the captioning function."""
    function_arn: pulumi.Output[str]
    """ARN of the captioning function."""
    function_target_arn: pulumi.Output[str]
    """What the triggers invoke: the `live` alias when it exists, else the function."""
    image_uri: pulumi.Output[str]
    """The function image as `repository@sha256:digest`."""
    dead_letter_queue_url: pulumi.Output[str]
    """Events that could not be captioned."""
    queue_url: pulumi.Output[str] | None
    """Upload queue, in queue and eventbridge modes (unset in direct mode)."""
    alarm_topic_arn: pulumi.Output[str]
    """SNS topic every alarm notifies (ALARM and OK): subscribe to it to be told."""
    dashboard_name: pulumi.Output[str]
    """CloudWatch dashboard of the pipeline."""
    key_prefix: pulumi.Output[str]
    """The key prefix that triggers the function (`python -m ops backfill` feeds only such keys)."""
    key_suffixes: pulumi.Output[list[str]]
    """The key suffixes that trigger the function (empty: every key)."""
    table_stream_arn: pulumi.Output[str] | None
    """The table's DynamoDB stream (new images), with tableStream only (else unset)."""

    def __init__(
        self, name: str, args: CaptioningPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Resolved before anything is registered: a refused setting leaves no half-made component.
        # (Already resolved PipelineSettings are accepted too, and checked again.)
        settings = resolve_settings(args)
        check_model_fits(settings)
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._build(name, settings)

    def _build(self, name: str, settings: PipelineSettings) -> None:
        # From the component's provider (its region, its credentials), never parsed out of a child's ARN:
        # outputs a provider always sets may be missing under a unit test's mocks.
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        bucket = captioned_bucket(name, settings, parent=self)
        table = create_captions_table(name, settings, parent=self)
        dead_letter_queue = create_dead_letter_queue(name, settings, parent=self)
        upload_queue = (
            create_upload_queue(name, settings, dead_letter_queue=dead_letter_queue, parent=self)
            if settings.uses_queue
            else None
        )
        image = create_function_image(name, settings, account_id=account_id, parent=self)
        function = create_captioning_function(
            name,
            settings,
            image_uri=image.uri,
            table_name=table.name,
            grants=FunctionGrants(
                bucket_arn=bucket.arn,
                table_arn=table.arn,
                dead_letter_queue_arn=dead_letter_queue.arn,
                queue_arn=upload_queue.arn if upload_queue is not None else None,
                region=region,
                account_id=account_id,
            ),
            parent=self,
        )
        trigger: Trigger
        if upload_queue is None:
            trigger = connect_direct(
                name,
                settings,
                bucket=bucket,
                account_id=account_id,
                function=function,
                dead_letter_queue=dead_letter_queue,
                parent=self,
            )
        elif settings.trigger == "eventbridge":
            trigger = connect_eventbridge(
                name,
                settings,
                bucket=bucket,
                queue=upload_queue,
                dead_letter_queue=dead_letter_queue,
                function=function,
                parent=self,
            )
        else:
            trigger = connect_queue(
                name,
                settings,
                bucket=bucket,
                account_id=account_id,
                queue=upload_queue,
                function=function,
                parent=self,
            )

        monitoring = create_monitoring(
            name,
            settings,
            region=region,
            function=function,
            dead_letter_queue=dead_letter_queue,
            upload_queue=upload_queue,
            parent=self,
            uploads_rule=trigger.rule if isinstance(trigger, EventBridgeTrigger) else None,
        )

        # The settings and child resources, grouped by concern, for Python programs that extend or test the
        # pipeline (not annotated on the class: they are not outputs of the Pulumi package). The properties
        # below name the ones a program reaches for most.
        self.settings: PipelineSettings = settings
        self.captioned_bucket: CaptionedBucket = bucket
        self.images_bucket: ImagesBucket | None = bucket.created
        self.captions_table: aws.dynamodb.Table = table
        self.dead_letter_queue: aws.sqs.Queue = dead_letter_queue
        self.upload_queue: aws.sqs.Queue | None = upload_queue
        self.function_image: FunctionImage = image
        self.captioning_function: CaptioningFunction = function
        self.trigger: Trigger = trigger
        self.monitoring: Monitoring = monitoring

        self.bucket_name = bucket.name
        self.table_name = table.name
        self.function_name = function.function.name
        self.function_arn = function.function.arn
        self.function_target_arn = function.target_arn
        self.image_uri = image.uri
        self.dead_letter_queue_url = dead_letter_queue.url
        self.queue_url = upload_queue.url if upload_queue is not None else None
        self.alarm_topic_arn = monitoring.topic.arn
        self.dashboard_name = monitoring.dashboard.dashboard_name
        self.key_prefix = pulumi.Output.from_input(settings.key_prefix)
        self.key_suffixes = pulumi.Output.from_input(list(settings.key_suffixes))
        self.table_stream_arn = table.stream_arn if settings.table_stream else None
        self.register_outputs({name: getattr(self, name) for name in OUTPUT_NAMES})

    # The important child resources, for Python programs (not outputs of the Pulumi package: only the
    # class's annotations are). Each is also reachable through the part it belongs to.
    @property
    def function(self) -> aws.lambda_.Function:
        """The captioning function (`memory_size`, `reserved_concurrent_executions`, `timeout`, ...)."""
        return self.captioning_function.function

    @property
    def live_alias(self) -> aws.lambda_.Alias | None:
        """The function's `live` alias, which the triggers invoke; only with provisioned concurrency or
        SnapStart."""
        return self.captioning_function.alias

    @property
    def provisioned_concurrency(self) -> aws.lambda_.ProvisionedConcurrencyConfig | None:
        """Provisioned concurrency on the `live` alias; only when `provisioned_concurrency` > 0."""
        return self.captioning_function.provisioned_concurrency

    @property
    def function_role(self) -> aws.iam.Role:
        """The function's execution role (its inline policy: `.captioning_function.role_policy`)."""
        return self.captioning_function.role

    @property
    def log_group(self) -> aws.cloudwatch.LogGroup:
        """The function's log group (`retention_in_days`)."""
        return self.captioning_function.log_group

    @property
    def bucket(self) -> aws.s3.Bucket | None:
        """The images bucket (its access block, encryption and policy: `.images_bucket`); None when the
        pipeline captions an existing bucket (its name: `.bucket_name`)."""
        return self.images_bucket.bucket if self.images_bucket is not None else None

    @property
    def table(self) -> aws.dynamodb.Table:
        """The captions table, one item per object key (also `.captions_table`)."""
        return self.captions_table

    @property
    def repository(self) -> aws.ecr.Repository:
        """The ECR repository of the function image (the build and push: `.function_image`)."""
        return self.function_image.repository

    @property
    def notification(self) -> aws.s3.BucketNotification | None:
        """The bucket's notification: to the function (direct mode), to the upload queue (queue mode), or
        its EventBridge notifications (eventbridge mode; None on an existing bucket unless
        manage_bucket_notifications)."""
        return self.trigger.notification

    @property
    def uploads_rule(self) -> aws.cloudwatch.EventRule | None:
        """Eventbridge mode's rule matching the bucket's uploads (else None)."""
        return self.trigger.rule if isinstance(self.trigger, EventBridgeTrigger) else None

    @property
    def alarm_topic(self) -> aws.sns.Topic:
        """The SNS topic every alarm notifies."""
        return self.monitoring.topic

    @property
    def alarms(self) -> dict[str, aws.cloudwatch.MetricAlarm]:
        """The CloudWatch alarms by role: `dead-letters`, `errors`, `throttles`, `duration`, and
        `async-events-dropped` + `destination-delivery-failures` (direct) or `queue-age` (queue,
        eventbridge), and `rule-delivery-failures` (eventbridge)."""
        return self.monitoring.alarms

    @property
    def dashboard(self) -> aws.cloudwatch.Dashboard:
        """The CloudWatch dashboard."""
        return self.monitoring.dashboard


OUTPUT_NAMES: tuple[str, ...] = tuple(inspect.get_annotations(CaptioningPipeline))
"""The component's outputs, in every language: its class annotations (what the schema is made from)."""

STACK_OUTPUT_NAMES: dict[str, str] = {name: camel_case(name) for name in OUTPUT_NAMES}
"""Each output's name as the stack program (__main__.py) exports it, as the schema spells it."""
