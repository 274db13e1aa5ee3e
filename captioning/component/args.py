"""CaptioningPipelineArgs: the component's inputs, in every Pulumi language.

A TypedDict because it is the schema's source: `pulumi package add` infers each input, its type and its
description from these annotations and docstrings, and every key is optional. In Python it is built the
usual way, `CaptioningPipelineArgs(memory_size=2048)`. The defaults live in `captioning.component.settings`, which
fills them in and checks every value when the component is created; the docstrings name them for the
readers of the schema (tests/component/test_package.py keeps the two in step). No `from __future__ import
annotations` here: the schema inference reads the annotations as types.
"""

from collections.abc import Sequence
from typing import TypedDict


class CaptioningPipelineArgs(TypedDict, total=False):
    """Settings of one captioning pipeline; every key is optional, and None means its default."""

    memory_size: int
    """Function memory in MB (128-10240). CPU grows with it: 1,769 MB is one vCPU, 10240 MB six. Default: 4096."""

    reserved_concurrency: int | None
    """Concurrent executions reserved for (and capping) the function, at least 1; unset reserves nothing. Default: unset."""

    provisioned_concurrency: int
    """Pre-initialised instances kept warm on the `live` alias; 0 turns it off. Default: 0."""

    timeout: int
    """Function timeout in seconds (1-900). Default: 120."""

    architecture: str
    """Instruction set of the function and its image: "x86_64" or "arm64". Default: "x86_64"."""

    ephemeral_storage: int
    """Size of the function's /tmp in MB (512-10240). Default: 512."""

    snap_start: bool
    """Lambda SnapStart: publish a version whose initialised environment (model loaded, one warm-up caption) is snapshotted, and invoke it through the `live` alias; new environments resume from the snapshot instead of running INIT. Not with provisionedConcurrency above 0 or ephemeralStorage above 512. Default: false."""

    trigger: str
    """How uploads reach the function: "direct" (S3 invokes it), "queue" (S3 -> SQS -> batches) or "eventbridge" (the bucket's EventBridge events -> a rule -> the same queue and batches; what existingBucketName needs). Default: "direct"."""

    batch_size: int
    """Queue and eventbridge modes: most messages per invocation (1-10000; above 10 needs a batching window of at least 1 second). Default: 10."""

    batching_window: int
    """Queue and eventbridge modes: seconds Lambda may wait to fill a batch (0-300). Default: 0."""

    max_concurrency: int | None
    """Queue and eventbridge modes: most concurrent invocations by the queue (2-1000); unset means the reserved concurrency, or 10 when nothing is reserved. Default: unset."""

    max_receive_count: int
    """Queue and eventbridge modes: deliveries of a message before it moves to the dead-letter queue (1-1000). Default: 5."""

    retry_attempts: int
    """Direct mode: retries of a failed asynchronous invocation (0-2) before the dead-letter queue. Default: 2."""

    max_event_age: int
    """Direct mode: seconds an event may wait (e.g. throttled) before the dead-letter queue (60-21600). Default: 21600."""

    model_id: str
    """Hugging Face model baked into the image at build time and written to each caption item. Default: "nlpconnect/vit-gpt2-image-captioning"."""

    model_dir: str | None
    """A local model directory copied into the image instead of downloading the model id (e.g. "models/demo-shapes"): config.json plus weights, or a prepared ONNX model (onnx_model.json and its graphs); anything else is refused before deploy. A relative path is resolved against the program's directory. Default: unset."""

    half_precision_weights: bool
    """Store the weights in float16 in the image (runtime "torch"): half the bytes read at cold start, upcast at load; captions may differ slightly. Default: false."""

    runtime: str
    """How the function runs the model: "onnx" (exported at image build, no torch in the image) or "torch" (PyTorch + transformers; any captioning family transformers loads). Default: "onnx"."""

    num_beams: int | None
    """Beam-search width; unset: what the model's own generate() uses (docs/models.md). Default: unset."""

    max_length: int | None
    """Most tokens in a caption; unset: what the model's own generate() uses (docs/models.md). Default: unset."""

    prompt: str | None
    """Text a prompt-conditioned model starts from (BLIP's conditional text, Florence-2's task token, a chat model's instruction; runtime "torch"); unset takes the model family's default. Default: unset."""

    precision: str
    """Inference precision: "fp32", "bf16" (runtime "torch") or "int8" (onnx quantises at build, torch at load). Default: "fp32"."""

    max_object_bytes: int
    """Objects larger than this are recorded as failed without being downloaded. Default: 52428800."""

    key_prefix: str
    """Only keys starting with this trigger the function ("" for the whole bucket). Default: ""."""

    key_suffixes: Sequence[str]
    """Only keys ending with one of these trigger the function (S3 matches case-sensitively); an empty list lets every key through. Default: [".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif", ".JPG", ".JPEG", ".PNG", ".GIF", ".WEBP", ".BMP", ".TIF", ".TIFF", ".HEIC", ".HEIF", ".AVIF"]."""

    existing_bucket_name: str | None
    """Caption this existing bucket (its keyPrefix) instead of creating one: needs trigger "eventbridge"; its policy, encryption, public-access and versioning settings and its notification configuration are left as they are, and the function may read keyPrefix* only. Its owner turns on its EventBridge notifications (or set manageBucketNotifications). Default: unset."""

    manage_bucket_notifications: bool
    """With existingBucketName: turn on the bucket's EventBridge notifications from this stack. This REPLACES the bucket's whole notification configuration (S3 keeps one per bucket), so any other notification on it is lost: leave it false when anything else is notified. Default: false."""

    log_retention_days: int
    """Days the function's log group keeps events (one of CloudWatch's allowed periods). Default: 30."""

    force_destroy: bool
    """Let `pulumi destroy` delete the bucket and the image repository while they hold objects. Default: false."""

    images_to_keep: int
    """Function images kept in the ECR repository; older ones expire. Default: 5."""

    kms_key_arn: str | None
    """ARN of a customer-managed KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID; not an alias) that encrypts the created bucket (SSE-KMS with a bucket key), the table, the queues, the log group, the image repository and the alarm topic; the function may use it only through S3, SQS and DynamoDB. The key's policy must let CloudWatch Logs, CloudWatch alarms and the event sources use it (docs/deploy.md). Default: unset."""

    permissions_boundary: str | None
    """ARN of an IAM policy set as the permissions boundary of every role the component creates. Default: unset."""

    vpc_subnet_ids: Sequence[str]
    """Subnets (ids, subnet-...) the function runs in, with vpcSecurityGroupIds; it then reaches AWS through VPC endpoints or NAT (docs/deploy.md). Default: []."""

    vpc_security_group_ids: Sequence[str]
    """Security groups (ids, sg-...) of the function's network interfaces, with vpcSubnetIds. Default: []."""

    tracing: bool
    """X-Ray active tracing of the function, with a subsegment per step (fetch, caption, persist). Default: true."""

    metrics: bool
    """The function's own CloudWatch metrics (Embedded Metric Format) and the dashboard built on them. Default: true."""

    metrics_namespace: str
    """CloudWatch namespace of the function's metrics. Default: "Captioning"."""

    alarm_emails: Sequence[str]
    """E-mail addresses subscribed to the alarm topic (each confirms by e-mail). Default: []."""

    alarm_period: int
    """Seconds over which each alarm's metric is aggregated (10, 20, 30 or a multiple of 60). Default: 300."""

    alarm_evaluation_periods: int
    """Consecutive periods over the threshold before an alarm fires. Default: 1."""

    errors_alarm_threshold: int
    """Function errors in a period that fire the errors alarm. Default: 1."""

    throttles_alarm_threshold: int
    """Throttled invocations in a period that fire the throttles alarm. Default: 1."""

    duration_alarm_percent: int
    """The duration alarm fires when p99 duration exceeds this percentage of the timeout (1-100). Default: 80."""

    queue_age_alarm_seconds: int
    """Queue and eventbridge modes: the age of the oldest waiting upload that fires the queue-age alarm (>= 60). Default: 600."""

    caption_events: bool
    """Publish one EventBridge event per captioned or failed object (source "captioning"), after its item is written, to eventBusName or the default bus. Default: false."""

    event_bus_name: str | None
    """With captionEvents: the name of the event bus caption events go to; unset: the account's default bus. Default: unset."""

    table_stream: bool
    """Turn on the table's DynamoDB stream (new images) and export its ARN as tableStreamArn. Default: false."""

    tags: dict[str, str]
    """Tags added to every taggable resource. Default: {}."""
