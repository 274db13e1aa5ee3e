"""CaptioningPipeline: S3 upload -> Lambda (container image) -> DynamoDB caption, in one component."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components import validation
from components.args import CaptioningPipelineArgs
from components.function import CaptioningFunction, FunctionGrants, create_captioning_function
from components.image import FunctionImage, create_function_image
from components.monitoring import Monitoring, create_monitoring
from components.queues import create_dead_letter_queue, create_upload_queue
from components.storage import ImagesBucket, create_captions_table, create_images_bucket
from components.triggers import DirectTrigger, QueueTrigger, connect_direct, connect_queue


class CaptioningPipeline(pulumi.ComponentResource):
    """Captions every image uploaded to its bucket and stores the caption in its table."""

    bucket_name: pulumi.Output[str]
    """Bucket to upload images to."""
    table_name: pulumi.Output[str]
    """Table holding one item per object key."""
    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    function_target_arn: pulumi.Output[str]
    """What the triggers invoke: the `live` alias when it exists, else the function."""
    image_uri: pulumi.Output[str]
    """The function image as `repository@sha256:digest`."""
    dead_letter_queue_url: pulumi.Output[str]
    """Events that could not be captioned."""
    queue_url: pulumi.Output[str] | None
    """Upload queue, in queue mode only (None in direct mode)."""
    alarm_topic_arn: pulumi.Output[str]
    """SNS topic every alarm notifies (ALARM and OK): subscribe to it to be told."""
    dashboard_name: pulumi.Output[str]
    """CloudWatch dashboard of the pipeline."""

    # The child resources, grouped by concern, for programs that extend the pipeline.
    images_bucket: ImagesBucket
    captions_table: aws.dynamodb.Table
    dead_letter_queue: aws.sqs.Queue
    upload_queue: aws.sqs.Queue | None
    function_image: FunctionImage
    captioning_function: CaptioningFunction
    trigger: DirectTrigger | QueueTrigger
    monitoring: Monitoring

    def __init__(
        self, name: str, args: CaptioningPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Checked again here: the dataclass may have been changed since it was created.
        validation.validate(args)
        super().__init__("captioning:index:CaptioningPipeline", name, None, opts)

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

        self.images_bucket = images
        self.captions_table = table
        self.dead_letter_queue = dead_letter_queue
        self.upload_queue = upload_queue
        self.function_image = image
        self.captioning_function = function
        self.trigger = trigger
        self.monitoring = monitoring

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
            }
        )
