"""One home for the names and defaults the function, the component, the local pipeline and the tools share.

Pure Python with no imports beyond the standard library: the component (at `pulumi preview`), the
function (inside the image) and the command-line tools all import it.
"""

from __future__ import annotations

from enum import StrEnum

DEFAULT_MODEL_ID = "nlpconnect/vit-gpt2-image-captioning"
"""The model a pipeline captions with when none is named."""

MODEL_DIR_IN_IMAGE = "/opt/ml/model"
"""Where captioning/function/Dockerfile puts the prepared model inside the function image."""

RUNTIMES: tuple[str, ...] = ("onnx", "torch")
"""How the function runs the model: ONNX Runtime (exported graphs, no torch) or PyTorch + transformers."""

DEFAULT_RUNTIME = "onnx"

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")
"""Inference precisions, over all runtimes."""

RUNTIME_PRECISIONS: dict[str, tuple[str, ...]] = {"onnx": ("fp32", "int8"), "torch": PRECISIONS}
"""The precisions each runtime supports (ONNX int8 is quantised when the image is built)."""

HALF_PRECISION_WEIGHTS_RUNTIMES: tuple[str, ...] = ("torch",)
"""Runtimes that can load float16-stored weights (upcast at load)."""

DEFAULT_PRECISION = "fp32"

GENERATE_DEFAULT_NUM_BEAMS = 1
"""transformers' `generate` default beam width (greedy search): used where the model's generation config
sets none and the user gave no num_beams."""

GENERATE_DEFAULT_NEW_TOKENS = 20
"""transformers' `generate` default length when the generation config sets neither max_length nor
max_new_tokens: 20 tokens after the decoder's input (its start token, or the prompt)."""

TRIGGERS: tuple[str, ...] = ("direct", "queue", "eventbridge")
"""How uploads reach the function: S3 notifications invoking it (direct), S3 notifications to the upload
queue (queue), or the bucket's EventBridge events, which a rule delivers to the upload queue
(eventbridge)."""

S3_EVENT_SOURCE = "aws.s3"
"""The `source` of the events S3 sends to EventBridge (the eventbridge trigger's rule matches it)."""

OBJECT_CREATED_DETAIL_TYPE = "Object Created"
"""The `detail-type` of S3's EventBridge event for a new object (any way it was made: PutObject, POST
Object, CopyObject, CompleteMultipartUpload)."""

ARCHITECTURES: tuple[str, ...] = ("x86_64", "arm64")
"""Lambda's instruction sets (CreateFunction Architectures), as the `architecture` setting names them."""

PLATFORMS: dict[str, str] = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}
"""The one Docker platform each architecture's image is built for (Lambda refuses an image index)."""

CAPTION_EVENT_SOURCE = "captioning"
"""The `source` of the EventBridge events the function publishes (captionEvents)."""

CAPTION_EVENT_DETAIL_TYPES: dict[str, str] = {
    "captioned": "Image Captioned",
    "failed": "Image Caption Failed",
}
"""The `detail-type` of a caption event, by the item's status."""

MAX_OBJECT_BYTES = 50 * 1024 * 1024
"""Objects larger than this are recorded as failed without being downloaded."""

SERVICE_NAME = "captioning"
"""Powertools service name: the function's logger, metrics dimension and tracer service."""

DEFAULT_METRICS_NAMESPACE = "Captioning"
"""CloudWatch namespace of the function's own metrics (Embedded Metric Format)."""

TABLE_KEY = "key"
"""The captions table's partition key attribute: an item's object key."""


class ItemStatus(StrEnum):
    """The `status` attribute of a captions-table item."""

    CAPTIONED = "captioned"
    FAILED = "failed"


class ObjectStatus(StrEnum):
    """What one invocation did with one object: the `status` of its log line and of its outcome in the
    function's result. CAPTIONED and FAILED wrote an item of that ItemStatus."""

    CAPTIONED = ItemStatus.CAPTIONED.value
    FAILED = ItemStatus.FAILED.value
    DUPLICATE = "duplicate"
    """The item already exists for the object's ETag: nothing new is written."""
    RETRY = "retry"
    """Handed back for a later delivery (transient error, or no time left)."""


class MetricName(StrEnum):
    """The function's own metrics (Embedded Metric Format, in the namespace POWERTOOLS_METRICS_NAMESPACE).

    captioning/function/telemetry.py emits them; captioning/component/monitoring.py alarms on them and charts
    them.
    """

    IMAGES_CAPTIONED = "ImagesCaptioned"
    IMAGES_FAILED = "ImagesFailed"
    DUPLICATES = "Duplicates"
    RETRIES = "Retries"
    BATCH_SIZE = "BatchSize"
    CAPTION_LATENCY = "CaptionLatency"
    """Milliseconds, one value per captioned image (its share of the batched caption call)."""
    COLD_START = "ColdStart"
    """Powertools' own name for the metric `capture_cold_start_metric` emits."""


METRIC_DIMENSIONS: tuple[str, ...] = ("function_name", "service")
"""Dimensions of every function metric: the function name (AWS_LAMBDA_FUNCTION_NAME) and SERVICE_NAME."""
