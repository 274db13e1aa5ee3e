"""This directory's entry point, in two roles.

Run by Pulumi as this repository's program (Pulumi.yaml): one CaptioningPipeline per stack, sized by
Pulumi.<stack>.yaml, using the component as any program would (the `captioning` package, installed by
requirements.txt). Started by the engine as the package's plugin (`pulumi package add`, PulumiPlugin.yaml:
Pulumi's Python host runs a plugin directory's __main__.py): the component provider.
"""

from captioning.component.provider import running_as_plugin, serve

if running_as_plugin():
    serve()
else:
    import pulumi

    from captioning import CaptioningPipeline
    from captioning.component.stack_config import args_from_config

    pipeline = CaptioningPipeline("captioning", args_from_config())

    pulumi.export("bucketName", pipeline.bucket_name)
    pulumi.export("tableName", pipeline.table_name)
    pulumi.export("functionName", pipeline.function_name)
    pulumi.export("functionArn", pipeline.function_arn)
    pulumi.export("imageUri", pipeline.image_uri)
    pulumi.export("deadLetterQueueUrl", pipeline.dead_letter_queue_url)
    pulumi.export("functionTargetArn", pipeline.function_target_arn)
    # What `python -m ops backfill` needs to feed the pipeline only the keys S3 would notify it of.
    pulumi.export("keyPrefix", pipeline.key_prefix)
    pulumi.export("keySuffixes", pipeline.key_suffixes)
    pulumi.export("alarmTopicArn", pipeline.alarm_topic_arn)
    pulumi.export("dashboardName", pipeline.dashboard_name)
    if pipeline.queue_url is not None:
        pulumi.export("queueUrl", pipeline.queue_url)
