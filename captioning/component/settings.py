"""PipelineSettings: CaptioningPipelineArgs resolved, with every default filled in and every value checked.

The one home of the component's defaults. Each field is documented on CaptioningPipelineArgs (the
schema's source); the modules that build resources read these settings, never the raw args.
Constructing them reads nothing but the values (captioning.component.validation); whether the model
fits is a separate step that reads the model directory or asks the Hub
(captioning.component.model_check.check_model_fits, run by the component).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from captioning.component import validation
from captioning.component.args import CaptioningPipelineArgs
from captioning.component.validation import InvalidSettingError
from captioning.contract import constants

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".heic",
    ".heif",
    ".avif",
)
"""The file extensions of the formats the function decodes (captioning/function/images.py ALLOWED_FORMATS,
which needs
Pillow and so is not imported here; tests/test_formats.py keeps the two in step)."""
DEFAULT_IMAGE_SUFFIXES = IMAGE_EXTENSIONS + tuple(extension.upper() for extension in IMAGE_EXTENSIONS)
"""The default keySuffixes: every extension in lower and in upper case (S3 matches case-sensitively)."""
DEFAULT_QUEUE_MAX_CONCURRENCY = 10
PLATFORMS = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}


@dataclass
class PipelineSettings:
    """Every setting of one pipeline, defaults filled in. Invalid values raise InvalidSettingError (the
    model's own checks are check_model_fits')."""

    memory_size: int = 4096
    reserved_concurrency: int | None = None
    provisioned_concurrency: int = 0
    timeout: int = 120
    architecture: str = "x86_64"
    ephemeral_storage: int = 512
    trigger: str = "direct"
    batch_size: int = 10
    batching_window: int = 0
    max_concurrency: int | None = None
    max_receive_count: int = 5
    retry_attempts: int = 2
    max_event_age: int = 21600
    model_id: str = constants.DEFAULT_MODEL_ID
    model_dir: str | None = None
    half_precision_weights: bool = False
    runtime: str = constants.DEFAULT_RUNTIME
    num_beams: int | None = None
    max_length: int | None = None
    prompt: str | None = None
    precision: str = constants.DEFAULT_PRECISION
    max_object_bytes: int = constants.MAX_OBJECT_BYTES
    key_prefix: str = ""
    key_suffixes: tuple[str, ...] = DEFAULT_IMAGE_SUFFIXES
    log_retention_days: int = 30
    force_destroy: bool = False
    images_to_keep: int = 5
    tracing: bool = True
    metrics: bool = True
    metrics_namespace: str = constants.DEFAULT_METRICS_NAMESPACE
    alarm_emails: tuple[str, ...] = ()
    alarm_period: int = 300
    alarm_evaluation_periods: int = 1
    errors_alarm_threshold: int = 1
    throttles_alarm_threshold: int = 1
    duration_alarm_percent: int = 80
    queue_age_alarm_seconds: int = 600
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Lists arrive from YAML, TypeScript and JSON config; the settings keep them immutable.
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


SETTING_NAMES = tuple(setting.name for setting in dataclasses.fields(PipelineSettings))
_INTEGER_SETTINGS = frozenset(
    name
    for name, hint in typing.get_type_hints(CaptioningPipelineArgs).items()
    if hint is int or int in typing.get_args(hint)
)


def resolve_settings(args: Mapping[str, object] | PipelineSettings | None) -> PipelineSettings:
    """The settings `args` asks for, defaults filled in; InvalidSettingError names anything refused."""
    if isinstance(args, PipelineSettings):
        validation.validate(args)  # checked again: the dataclass may have been changed since
        return args
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise InvalidSettingError(
            "args", type(args).__name__, "a CaptioningPipelineArgs (a mapping of setting names to values)"
        )
    unknown = sorted(str(key) for key in args if key not in SETTING_NAMES)
    if unknown:
        raise InvalidSettingError(
            unknown[0], args[unknown[0]], f"not a setting; the settings are {', '.join(SETTING_NAMES)}"
        )
    # None (YAML's null; `config.get_int(...)` of an unset key) means "the default", as leaving it out does.
    return PipelineSettings(
        **{name: _plain_value(name, value) for name, value in args.items() if value is not None}
    )


def _plain_value(name: str, value: object) -> object:
    """A value as the settings take it. From other languages numbers arrive as floats (the wire has no
    integers, and the provider SDK does not convert them back); a value that is an output is refused."""
    if isinstance(value, pulumi.Output):
        raise InvalidSettingError(
            name,
            "an output",
            "a plain value known when the pipeline is created (a literal or stack configuration, not another "
            "resource's output or a secret): it decides which resources exist and how the image is built",
        )
    if name in _INTEGER_SETTINGS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value
