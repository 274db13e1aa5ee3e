"""CaptioningPipeline: S3 upload -> Lambda (container image) -> DynamoDB caption, in one component."""

import pulumi
import pulumi_aws as aws

from captioning.args import CaptioningPipelineArgs
from captioning.function import CaptioningFunction, FunctionGrants, create_captioning_function
from captioning.image import FunctionImage, create_function_image
from captioning.monitoring import Monitoring, create_monitoring
from captioning.queues import create_dead_letter_queue, create_upload_queue
from captioning.settings import PipelineSettings, resolve_settings
from captioning.storage import ImagesBucket, create_captions_table, create_images_bucket
from captioning.triggers import DirectTrigger, QueueTrigger, connect_direct, connect_queue

PACKAGE_NAME = "captioning"
"""The Pulumi package serving the component (`pulumi package add`); also the Python distribution's name."""

TYPE_TOKEN = f"{PACKAGE_NAME}:index:CaptioningPipeline"


class CaptioningPipeline(pulumi.ComponentResource):
    """Captions every image uploaded to its bucket and stores the caption in its table (DynamoDB)."""

    # The outputs, in every language (no `from __future__ import annotations`: the provider's schema
    # inference reads these annotations as types).
    bucket_name: pulumi.Output[str]
    """Bucket to upload images to."""
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
    """Upload queue, in queue mode only (unset in direct mode)."""
    alarm_topic_arn: pulumi.Output[str]
    """SNS topic every alarm notifies (ALARM and OK): subscribe to it to be told."""
    dashboard_name: pulumi.Output[str]
    """CloudWatch dashboard of the pipeline."""
    key_prefix: pulumi.Output[str]
    """The key prefix that triggers the function (`python -m ops backfill` feeds only such keys)."""
    key_suffixes: pulumi.Output[list[str]]
    """The key suffixes that trigger the function (empty: every key)."""

    def __init__(
        self, name: str, args: CaptioningPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Resolved before anything is registered: a refused setting leaves no half-made component.
        # (Already resolved PipelineSettings are accepted too, and checked again.)
        settings = resolve_settings(args)
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._build(name, settings)

    def _build(self, name: str, args: PipelineSettings) -> None:
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        images = create_images_bucket(name, force_destroy=args.force_destroy, tags=args.tags, parent=self)
        table = create_captions_table(name, tags=args.tags, parent=self)
        dead_letter_queue = create_dead_letter_queue(name, tags=args.tags, parent=self)
        upload_queue = (
            create_upload_queue(name, args, dead_letter_queue=dead_letter_queue, parent=self)
            if args.trigger == "queue"
            else None
        )
        image = create_function_image(name, args, account_id=account_id, parent=self)
        function = create_captioning_function(
            name,
            args,
            image_uri=image.uri,
            table_name=table.name,
            grants=FunctionGrants(
                bucket_arn=images.bucket.arn,
                table_arn=table.arn,
                dead_letter_queue_arn=dead_letter_queue.arn,
                queue_arn=upload_queue.arn if upload_queue is not None else None,
            ),
            parent=self,
        )
        trigger: DirectTrigger | QueueTrigger
        if upload_queue is None:
            trigger = connect_direct(
                name,
                args,
                bucket=images.bucket,
                account_id=account_id,
                function=function,
                dead_letter_queue=dead_letter_queue,
                parent=self,
            )
        else:
            trigger = connect_queue(
                name,
                args,
                bucket=images.bucket,
                account_id=account_id,
                queue=upload_queue,
                function=function,
                parent=self,
            )

        monitoring = create_monitoring(
            name,
            args,
            function=function,
            dead_letter_queue=dead_letter_queue,
            upload_queue=upload_queue,
            parent=self,
        )

        # The settings and child resources, grouped by concern, for Python programs that extend the
        # pipeline (not annotated on the class: they are not outputs of the Pulumi package).
        self.settings: PipelineSettings = args
        self.images_bucket: ImagesBucket = images
        self.captions_table: aws.dynamodb.Table = table
        self.dead_letter_queue: aws.sqs.Queue = dead_letter_queue
        self.upload_queue: aws.sqs.Queue | None = upload_queue
        self.function_image: FunctionImage = image
        self.captioning_function: CaptioningFunction = function
        self.trigger: DirectTrigger | QueueTrigger = trigger
        self.monitoring: Monitoring = monitoring

        self.bucket_name = images.bucket.bucket
        self.table_name = table.name
        self.function_name = function.function.name
        self.function_arn = function.function.arn
        self.function_target_arn = function.target_arn
        self.image_uri = image.uri
        self.dead_letter_queue_url = dead_letter_queue.url
        self.queue_url = upload_queue.url if upload_queue is not None else None
        self.alarm_topic_arn = monitoring.topic.arn
        self.dashboard_name = monitoring.dashboard.dashboard_name
        self.key_prefix = pulumi.Output.from_input(args.key_prefix)
        self.key_suffixes = pulumi.Output.from_input(list(args.key_suffixes))
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "table_name": self.table_name,
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "function_target_arn": self.function_target_arn,
                "image_uri": self.image_uri,
                "dead_letter_queue_url": self.dead_letter_queue_url,
                "queue_url": self.queue_url,
                "alarm_topic_arn": self.alarm_topic_arn,
                "dashboard_name": self.dashboard_name,
                "key_prefix": self.key_prefix,
                "key_suffixes": self.key_suffixes,
            }
        )
