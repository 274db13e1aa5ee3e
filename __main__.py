"""The Pulumi program: one CaptioningPipeline per stack, sized by Pulumi.<stack>.yaml."""

import pulumi

from components import CaptioningPipeline
from components.stack_config import args_from_config

args = args_from_config()
pipeline = CaptioningPipeline("captioning", args)

pulumi.export("bucketName", pipeline.bucket_name)
pulumi.export("tableName", pipeline.table_name)
pulumi.export("functionName", pipeline.function_name)
pulumi.export("functionArn", pipeline.function_arn)
pulumi.export("imageUri", pipeline.image_uri)
pulumi.export("deadLetterQueueUrl", pipeline.dead_letter_queue_url)
pulumi.export("functionTargetArn", pipeline.function_target_arn)
# What `python -m ops backfill` needs to feed the pipeline only the keys S3 would notify it of.
pulumi.export("keyPrefix", args.key_prefix)
pulumi.export("keySuffixes", list(args.key_suffixes))
pulumi.export("alarmTopicArn", pipeline.alarm_topic_arn)
pulumi.export("dashboardName", pipeline.dashboard_name)
if pipeline.queue_url is not None:
    pulumi.export("queueUrl", pipeline.queue_url)
