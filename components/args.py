"""CaptioningPipelineArgs: every setting of the pipeline, with a default, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from components import validation
from handler import constants

REPO_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".JPG", ".JPEG", ".PNG", ".WEBP")
DEFAULT_QUEUE_MAX_CONCURRENCY = 10
PLATFORMS = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}


@dataclass
class CaptioningPipelineArgs:
    """Settings of one captioning pipeline. Invalid values raise InvalidSettingError on creation."""

    memory_size: int = 4096
    """Function memory in MB (128-10240). CPU grows with it: 1,769 MB is one vCPU, 10240 MB six."""

    reserved_concurrency: int | None = None
    """Concurrent executions reserved for (and capping) the function; None reserves nothing."""

    provisioned_concurrency: int = 0
    """Pre-initialised instances kept warm on the `live` alias; 0 turns it off."""

    timeout: int = 120
    """Function timeout in seconds (1-900)."""

    architecture: str = "x86_64"
    """Instruction set of the function and its image: "x86_64" or "arm64"."""

    ephemeral_storage: int = 512
    """Size of the function's /tmp in MB (512-10240)."""

    trigger: str = "direct"
    """How uploads reach the function: "direct" (S3 invokes it) or "queue" (S3 -> SQS -> batches)."""

    batch_size: int = 10
    """Queue mode: most messages per invocation (1-10000; above 10 needs batching_window >= 1)."""

    batching_window: int = 0
    """Queue mode: seconds Lambda may wait to fill a batch (0-300)."""

    max_concurrency: int | None = None
    """Queue mode: most concurrent invocations by the queue (2-1000); None means the reserved
    concurrency, or 10 when nothing is reserved."""

    max_receive_count: int = 5
    """Queue mode: deliveries of a message before it moves to the dead-letter queue (1-1000)."""

    retry_attempts: int = 2
    """Direct mode: retries of a failed asynchronous invocation (0-2) before the dead-letter queue."""

    max_event_age: int = 21600
    """Direct mode: seconds an event may wait (e.g. throttled) before the dead-letter queue (60-21600)."""

    model_id: str = constants.DEFAULT_MODEL_ID
    """Model baked into the image (build arg MODEL_ID) and written to each caption item."""

    model_dir: str | None = None
    """Local model directory, relative to the build context, copied into the image instead of
    downloading `model_id` (e.g. "models/demo-shapes"); None downloads `model_id`."""

    half_precision_weights: bool = False
    """Store the weights in float16 in the image (build arg HALF_WEIGHTS): half the bytes read at
    cold start, upcast at load; captions may differ slightly from the float32 weights."""

    runtime: str = constants.DEFAULT_RUNTIME
    """How the function runs the model: "onnx" (exported at image build, no torch in the image) or
    "torch" (PyTorch + transformers; any captioning family transformers loads)."""

    num_beams: int | None = None
    """Beam-search width; None takes the model's generation_config.json."""

    max_length: int | None = None
    """Most tokens in a caption; None takes the model's generation_config.json."""

    prompt: str | None = None
    """Text a prompt-conditioned model starts from (BLIP's conditional text, Florence-2's task token,
    a chat model's instruction); None takes the model family's default."""

    precision: str = constants.DEFAULT_PRECISION
    """Inference precision: "fp32", "bf16" (torch) or "int8" (onnx quantises at build, torch at load)."""

    max_object_bytes: int = constants.MAX_OBJECT_BYTES
    """Objects larger than this are recorded as failed without being downloaded."""

    key_prefix: str = ""
    """Only keys starting with this trigger the function ("" for the whole bucket)."""

    key_suffixes: tuple[str, ...] = DEFAULT_IMAGE_SUFFIXES
    """Only keys ending with one of these trigger the function (S3 matches case-sensitively);
    an empty tuple lets every key through."""

    log_retention_days: int = 30
    """Days the function's log group keeps events (one of CloudWatch's allowed periods)."""

    force_destroy: bool = False
    """Let `pulumi destroy` delete the bucket and the image repository while they hold objects."""

    images_to_keep: int = 5
    """Function images kept in the ECR repository; older ones expire."""

    build_context: str = str(REPO_ROOT)
    """Docker build context of the function image."""

    dockerfile: str = "handler/Dockerfile"
    """Dockerfile of the function image, relative to `build_context`."""

    tracing: bool = True
    """X-Ray active tracing of the function, with a subsegment per step (fetch, caption, persist)."""

    metrics: bool = True
    """The function's own CloudWatch metrics (Embedded Metric Format) and the dashboard built on them."""

    metrics_namespace: str = constants.DEFAULT_METRICS_NAMESPACE
    """CloudWatch namespace of the function's metrics."""

    alarm_emails: tuple[str, ...] = ()
    """E-mail addresses subscribed to the alarm topic (each confirms by e-mail)."""

    alarm_period: int = 300
    """Seconds over which each alarm's metric is aggregated (10, 30 or a multiple of 60)."""

    alarm_evaluation_periods: int = 1
    """Consecutive periods over the threshold before an alarm fires."""

    errors_alarm_threshold: int = 1
    """Function errors in a period that fire the errors alarm."""

    throttles_alarm_threshold: int = 1
    """Throttled invocations in a period that fire the throttles alarm."""

    duration_alarm_percent: int = 80
    """The duration alarm fires when p99 duration exceeds this percentage of the timeout."""

    queue_age_alarm_seconds: int = 600
    """Queue mode: the age of the oldest waiting upload that fires the queue-age alarm."""

    tags: dict[str, str] = field(default_factory=dict)
    """Tags added to every taggable resource."""

    def __post_init__(self) -> None:
        if isinstance(self.key_suffixes, list):
            self.key_suffixes = tuple(self.key_suffixes)
        if isinstance(self.alarm_emails, list):
            self.alarm_emails = tuple(self.alarm_emails)
        validation.validate(self)

    @property
    def queue_max_concurrency(self) -> int:
        """The event source mapping's maximum concurrency in queue mode."""
        if self.max_concurrency is not None:
            return self.max_concurrency
        if self.reserved_concurrency is not None:
            return self.reserved_concurrency
        return DEFAULT_QUEUE_MAX_CONCURRENCY

    @property
    def platform(self) -> str:
        """Docker platform of the image for this architecture."""
        return PLATFORMS[self.architecture]
