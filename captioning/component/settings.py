"""PipelineSettings: CaptioningPipelineArgs resolved, with every default filled in and every value checked.

The one home of the component's defaults. Each field is documented on CaptioningPipelineArgs (the
schema's source); the modules that build resources read these settings, never the raw args.
Constructing them checks the values and reads nothing else (the rules at the end of this module);
whether the model fits is a separate step that reads the model directory or asks the Hub
(captioning.component.model_check.check_model_fits, run by the component).
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pulumi

from captioning.component import event_pattern, limits
from captioning.component.args import CaptioningPipelineArgs
from captioning.component.validation import InvalidSettingError, at_least, integer_in_range, is_int, one_of
from captioning.contract import constants, runtimes
from captioning.contract.constants import TRIGGERS

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
which needs Pillow and so is not imported here; tests/function/test_formats.py keeps the two in step)."""
DEFAULT_IMAGE_SUFFIXES = IMAGE_EXTENSIONS + tuple(extension.upper() for extension in IMAGE_EXTENSIONS)
"""The default keySuffixes: every extension in lower and in upper case (S3 matches case-sensitively)."""
DEFAULT_QUEUE_MAX_CONCURRENCY = 10
PLATFORMS = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}
# Deliberately loose: SNS validates the address; this only catches values that are clearly not one.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A key's ARN, never an alias's: IAM statements naming an alias ARN do not cover the key behind it, so the
# function's grant and the resources' encryption must name the key itself. `mrk-` ids are multi-Region keys.
KMS_KEY_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:kms:[a-z]{2}(-[a-z]+)+-\d:\d{12}:key/"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
)
IAM_POLICY_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::(\d{12}|aws):policy/[\w+=,.@/-]{1,512}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$")
SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8}([0-9a-f]{9})?$")
EVENT_BUS_NAME = re.compile(r"^[/.\-_A-Za-z0-9]+$")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
TRIGGERS_WITH_QUEUE = ("queue", "eventbridge")
"""The triggers that feed the function from the upload queue (an event source mapping, batches)."""


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
    snap_start: bool = False
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
    existing_bucket_name: str | None = None
    manage_bucket_notifications: bool = False
    log_retention_days: int = 30
    force_destroy: bool = False
    images_to_keep: int = 5
    kms_key_arn: str | None = None
    permissions_boundary: str | None = None
    vpc_subnet_ids: tuple[str, ...] = ()
    vpc_security_group_ids: tuple[str, ...] = ()
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
    caption_events: bool = False
    event_bus_name: str | None = None
    table_stream: bool = False
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Lists arrive from YAML, TypeScript and JSON config; the settings keep them immutable.
        if isinstance(self.key_suffixes, list):
            self.key_suffixes = tuple(self.key_suffixes)
        for name in ("alarm_emails", "vpc_subnet_ids", "vpc_security_group_ids"):
            if isinstance(getattr(self, name), list):
                setattr(self, name, tuple(getattr(self, name)))
        validate(self)

    @property
    def queue_max_concurrency(self) -> int:
        """The event source mapping's maximum concurrency in queue mode."""
        if self.max_concurrency is not None:
            return self.max_concurrency
        if self.reserved_concurrency is not None:
            return self.reserved_concurrency
        return DEFAULT_QUEUE_MAX_CONCURRENCY

    @property
    def uses_queue(self) -> bool:
        """Whether uploads reach the function through the upload queue (queue and eventbridge modes)."""
        return self.trigger in TRIGGERS_WITH_QUEUE

    @property
    def creates_bucket(self) -> bool:
        """Whether the component creates the images bucket (else it captions existing_bucket_name)."""
        return self.existing_bucket_name is None

    @property
    def publishes_versions(self) -> bool:
        """Whether the function publishes versions behind the `live` alias the triggers invoke."""
        return self.provisioned_concurrency > 0 or self.snap_start is True

    @property
    def in_vpc(self) -> bool:
        return bool(self.vpc_subnet_ids)

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
        validate(args)  # checked again: the dataclass may have been changed since
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


# --- the rules: read nothing but the values (the model's rules are model_check's) ---------------


def validate(settings: PipelineSettings) -> None:
    """Raise the first InvalidSettingError found in `settings`, or return if all settings are valid."""
    for error in _errors(settings):
        raise error


def _errors(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    yield from integer_in_range("memory_size", settings.memory_size, limits.MEMORY_MB, "MB")
    yield from integer_in_range("timeout", settings.timeout, limits.TIMEOUT_SECONDS, "seconds")
    yield from integer_in_range(
        "ephemeral_storage", settings.ephemeral_storage, limits.EPHEMERAL_STORAGE_MB, "MB"
    )
    yield from one_of("architecture", settings.architecture, limits.ARCHITECTURES)
    yield from one_of("trigger", settings.trigger, TRIGGERS)
    yield from _model_settings(settings)
    yield from _concurrency(settings)
    yield from _queue_settings(settings)
    yield from integer_in_range(
        "retry_attempts", settings.retry_attempts, limits.ASYNC_RETRY_ATTEMPTS, "retries"
    )
    yield from integer_in_range(
        "max_event_age", settings.max_event_age, limits.ASYNC_EVENT_AGE_SECONDS, "seconds"
    )
    if (
        not is_int(settings.log_retention_days)
        or settings.log_retention_days not in limits.LOG_RETENTION_DAYS
    ):
        yield InvalidSettingError(
            "log_retention_days",
            settings.log_retention_days,
            f"one of CloudWatch Logs' retention periods {', '.join(map(str, limits.LOG_RETENTION_DAYS))}",
        )
    yield from at_least("max_object_bytes", settings.max_object_bytes, 1)
    yield from at_least("images_to_keep", settings.images_to_keep, 1)
    yield from _key_filters(settings)
    yield from _monitoring(settings)
    yield from _existing_bucket(settings)
    yield from _snap_start(settings)
    yield from _account_settings(settings)
    yield from _events(settings)
    for flag in (
        "force_destroy",
        "half_precision_weights",
        "tracing",
        "metrics",
        "snap_start",
        "manage_bucket_notifications",
        "caption_events",
        "table_stream",
    ):
        if not isinstance(getattr(settings, flag), bool):
            yield InvalidSettingError(flag, getattr(settings, flag), "true or false")


def _model_settings(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    if not isinstance(settings.model_id, str) or not settings.model_id.strip():
        yield InvalidSettingError("model_id", settings.model_id, "a non-empty model id")
    model_dir = settings.model_dir
    if model_dir is not None and (not isinstance(model_dir, str) or not model_dir.strip()):
        yield InvalidSettingError("model_dir", model_dir, "a model directory, or unset to download model_id")
    yield from one_of("runtime", settings.runtime, constants.RUNTIMES)
    yield from one_of("precision", settings.precision, constants.PRECISIONS)
    # An unknown precision is reported by _one_of above; here, one this runtime does not run.
    if settings.precision in constants.PRECISIONS and runtimes.precision_problem(
        settings.runtime, settings.precision
    ):
        supported = ", ".join(runtimes.supported_precisions(settings.runtime))
        yield InvalidSettingError(
            "precision",
            settings.precision,
            f"one of {supported} with runtime {settings.runtime!r}; "
            f"set runtime to 'torch' for {settings.precision}",
        )
    if settings.half_precision_weights is True and runtimes.half_precision_weights_problem(settings.runtime):
        yield InvalidSettingError(
            "half_precision_weights",
            settings.half_precision_weights,
            f"false with runtime {settings.runtime!r} (float16-stored weights need runtime 'torch'; "
            "with 'onnx', precision 'int8' makes the weights four times smaller)",
        )
    for setting in ("num_beams", "max_length"):
        if getattr(settings, setting) is not None:
            yield from at_least(setting, getattr(settings, setting), 1, "(or unset for the model's own)")
    if settings.prompt is not None and (not isinstance(settings.prompt, str) or not settings.prompt.strip()):
        yield InvalidSettingError(
            "prompt", settings.prompt, "non-empty text, or unset for the model's default"
        )
    elif settings.prompt is not None and settings.runtime == "onnx":
        yield InvalidSettingError(
            "prompt",
            settings.prompt,
            "unset with runtime 'onnx' (its ViT + GPT-2 models caption without a prompt); "
            "set runtime to 'torch' for a prompt-conditioned model",
        )


def _monitoring(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    namespace = settings.metrics_namespace
    low, high = limits.METRICS_NAMESPACE_LENGTH
    if (
        not isinstance(namespace, str)
        or not low <= len(namespace) <= high
        or namespace.startswith((limits.RESERVED_METRICS_NAMESPACE_PREFIX, ":"))
        or not namespace.isascii()
    ):
        yield InvalidSettingError(
            "metrics_namespace",
            namespace,
            f"{low}-{high} ASCII characters, not starting with "
            f"{limits.RESERVED_METRICS_NAMESPACE_PREFIX!r} (reserved for AWS) or ':'",
        )
    emails = settings.alarm_emails
    if not isinstance(emails, tuple) or not all(isinstance(e, str) and _EMAIL.match(e) for e in emails):
        yield InvalidSettingError(
            "alarm_emails", emails, 'a list of e-mail addresses, e.g. ["ops@example.com"]'
        )
    period = settings.alarm_period
    if not is_int(period) or not (
        period in limits.ALARM_SUB_MINUTE_PERIODS or (period >= 60 and period % 60 == 0)
    ):
        yield InvalidSettingError("alarm_period", period, "10, 20, 30 or a multiple of 60 seconds")
    yield from at_least("alarm_evaluation_periods", settings.alarm_evaluation_periods, 1)
    if (
        is_int(period)
        and is_int(settings.alarm_evaluation_periods)
        and period * settings.alarm_evaluation_periods > limits.ALARM_MAX_EVALUATION_SECONDS
    ):
        yield InvalidSettingError(
            "alarm_evaluation_periods",
            settings.alarm_evaluation_periods,
            f"at most {limits.ALARM_MAX_EVALUATION_SECONDS} seconds in all (alarm_period x periods)",
        )
    yield from at_least("errors_alarm_threshold", settings.errors_alarm_threshold, 1)
    yield from at_least("throttles_alarm_threshold", settings.throttles_alarm_threshold, 1)
    yield from integer_in_range(
        "duration_alarm_percent", settings.duration_alarm_percent, (1, 100), "percent"
    )
    yield from at_least("queue_age_alarm_seconds", settings.queue_age_alarm_seconds, 60, "seconds")


def _concurrency(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    reserved = settings.reserved_concurrency
    if reserved is not None:
        # 0 is a valid Lambda value but throttles every invocation: nothing would ever be captioned,
        # while provisioned concurrency 0 means "off". Refuse it rather than let the zeros disagree.
        yield from at_least(
            "reserved_concurrency",
            reserved,
            1,
            "(0 would throttle every upload; leave it unset to reserve nothing, "
            "and set provisioned concurrency to 0 to keep no instance warm)",
        )
    yield from at_least("provisioned_concurrency", settings.provisioned_concurrency, 0, "(0 turns it off)")
    if (
        reserved is not None
        and is_int(reserved)
        and is_int(settings.provisioned_concurrency)
        and settings.provisioned_concurrency > reserved
    ):
        yield InvalidSettingError(
            "provisioned_concurrency",
            settings.provisioned_concurrency,
            f"at most the reserved concurrency ({reserved})",
        )


def _queue_settings(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    yield from integer_in_range("batch_size", settings.batch_size, limits.SQS_BATCH_SIZE, "messages")
    yield from integer_in_range(
        "batching_window", settings.batching_window, limits.BATCHING_WINDOW_SECONDS, "seconds"
    )
    if (
        is_int(settings.batch_size)
        and is_int(settings.batching_window)
        and settings.batch_size > limits.SQS_BATCH_SIZE_WITHOUT_WINDOW
        and settings.batching_window < 1
    ):
        yield InvalidSettingError(
            "batch_size",
            settings.batch_size,
            f"at most {limits.SQS_BATCH_SIZE_WITHOUT_WINDOW} unless batching_window is at least 1 second",
        )
    yield from integer_in_range(
        "max_receive_count", settings.max_receive_count, limits.SQS_MAX_RECEIVE_COUNT, "receives"
    )
    if settings.max_concurrency is not None:
        yield from integer_in_range(
            "max_concurrency", settings.max_concurrency, limits.SQS_MAXIMUM_CONCURRENCY, "instances"
        )
    reserved = settings.reserved_concurrency
    if not settings.uses_queue or not (reserved is None or is_int(reserved)):
        return
    effective = settings.queue_max_concurrency
    low = limits.SQS_MAXIMUM_CONCURRENCY[0]
    if is_int(effective) and effective < low:
        yield InvalidSettingError(
            "max_concurrency",
            effective,
            f"at least {low} with trigger {settings.trigger!r} (AWS's minimum for an SQS event source); "
            "it defaults to the reserved concurrency, so reserve at least 2 or use trigger 'direct'",
        )
    elif reserved is not None and is_int(effective) and effective > reserved:
        yield InvalidSettingError(
            "max_concurrency",
            effective,
            f"at most the reserved concurrency ({reserved}), or the event source would be throttled",
        )


def _key_filters(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    if not isinstance(settings.key_prefix, str):
        yield InvalidSettingError("key_prefix", settings.key_prefix, "a string ('' for the whole bucket)")
    suffixes = settings.key_suffixes
    if not isinstance(suffixes, (tuple, list)) or not all(isinstance(s, str) and s for s in suffixes):
        yield InvalidSettingError(
            "key_suffixes",
            suffixes,
            "a list of non-empty strings such as ['.jpg', '.png'] ([] for every key)",
        )
        return
    for index, suffix in enumerate(suffixes):
        clashes = [other for j, other in enumerate(suffixes) if j != index and other.endswith(suffix)]
        if clashes:
            # S3 rejects notification rules whose filters overlap (".jpeg" and "peg", or duplicates).
            yield InvalidSettingError(
                "key_suffixes",
                list(suffixes),
                f"suffixes that do not overlap; {suffix!r} also matches {clashes[0]!r}",
            )
            return
    if settings.trigger == "eventbridge" and isinstance(settings.key_prefix, str):
        yield from _rule_pattern_size(settings)


def _existing_bucket(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    name = settings.existing_bucket_name
    if name is None:
        if settings.manage_bucket_notifications is True:
            yield InvalidSettingError(
                "manage_bucket_notifications",
                True,
                "false unless {existing_bucket_name} is set (the component always sets the notifications "
                "of the bucket it creates)",
                related=("existing_bucket_name",),
            )
        return
    low, high = limits.BUCKET_NAME_LENGTH
    if not isinstance(name, str) or not low <= len(name) <= high or not BUCKET_NAME.match(name):
        yield InvalidSettingError(
            "existing_bucket_name",
            name,
            f"a bucket name: {low}-{high} lowercase letters, digits, dots and hyphens, starting and ending "
            "with a letter or digit (the name, not an ARN or s3:// URL), or unset to create a bucket",
        )
    elif settings.trigger != "eventbridge":
        yield InvalidSettingError(
            "existing_bucket_name",
            name,
            "only with {trigger} 'eventbridge' (any number of EventBridge rules can match a bucket's "
            "events, while S3 keeps one notification configuration per bucket and the component would "
            f"replace its owner's); {{trigger}} is {settings.trigger!r}",
            related=("trigger",),
        )


def _snap_start(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    if settings.snap_start is not True:
        return
    if is_int(settings.provisioned_concurrency) and settings.provisioned_concurrency > 0:
        yield InvalidSettingError(
            "snap_start",
            True,
            "false while {provisioned_concurrency} is above 0 (Lambda does not combine SnapStart with "
            f"provisioned concurrency; {{provisioned_concurrency}} is {settings.provisioned_concurrency})",
            related=("provisioned_concurrency",),
        )
    largest = limits.SNAP_START_MAX_EPHEMERAL_STORAGE_MB
    if is_int(settings.ephemeral_storage) and settings.ephemeral_storage > largest:
        yield InvalidSettingError(
            "snap_start",
            True,
            f"false while {{ephemeral_storage}} is above {largest} MB (Lambda does not combine SnapStart "
            f"with more ephemeral storage; {{ephemeral_storage}} is {settings.ephemeral_storage})",
            related=("ephemeral_storage",),
        )


def _account_settings(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    key = settings.kms_key_arn
    if key is not None and (not isinstance(key, str) or not KMS_KEY_ARN.match(key)):
        yield InvalidSettingError(
            "kms_key_arn",
            key,
            "a KMS key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY-ID (a key id or alias is not enough, and "
            "an alias ARN is refused: the function's grant must name the key itself), or unset for "
            "AWS-managed keys",
        )
    boundary = settings.permissions_boundary
    if boundary is not None and (not isinstance(boundary, str) or not IAM_POLICY_ARN.match(boundary)):
        yield InvalidSettingError(
            "permissions_boundary",
            boundary,
            "an IAM policy ARN, arn:aws:iam::ACCOUNT:policy/NAME (or arn:aws:iam::aws:policy/NAME), "
            "or unset for no boundary",
        )
    yield from _id_list(
        "vpc_subnet_ids", settings.vpc_subnet_ids, SUBNET_ID, "subnet-", limits.VPC_MAX_SUBNETS
    )
    yield from _id_list(
        "vpc_security_group_ids",
        settings.vpc_security_group_ids,
        SECURITY_GROUP_ID,
        "sg-",
        limits.VPC_MAX_SECURITY_GROUPS,
    )
    subnets, groups = settings.vpc_subnet_ids, settings.vpc_security_group_ids
    if isinstance(subnets, tuple) and isinstance(groups, tuple) and bool(subnets) != bool(groups):
        given, missing = (
            ("vpc_subnet_ids", "vpc_security_group_ids")
            if subnets
            else ("vpc_security_group_ids", "vpc_subnet_ids")
        )
        yield InvalidSettingError(
            given,
            list(getattr(settings, given)),
            f"only together with {{{missing}}} (a function in a VPC needs both subnets and security "
            f"groups); set {{{missing}}} too, or neither",
            related=(missing,),
        )


def _id_list(
    setting: str, value: object, pattern: re.Pattern[str], prefix: str, most: int
) -> Iterator[InvalidSettingError]:
    if not isinstance(value, tuple) or not all(
        isinstance(item, str) and pattern.match(item) for item in value
    ):
        yield InvalidSettingError(
            setting, value, f'a list of ids such as ["{prefix}0123456789abcdef0"] ([] for none)'
        )
    elif len(value) > most:
        yield InvalidSettingError(setting, list(value), f"at most {most} ids (Lambda's limit)")
    elif len(set(value)) != len(value):
        yield InvalidSettingError(setting, list(value), "ids that are not repeated")


def _events(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    bus = settings.event_bus_name
    if bus is None:
        return
    low, high = limits.EVENT_BUS_NAME_LENGTH
    if not isinstance(bus, str) or not low <= len(bus) <= high or not EVENT_BUS_NAME.match(bus):
        yield InvalidSettingError(
            "event_bus_name",
            bus,
            f"an event bus name ({low}-{high} letters, digits and . - _ /; not an ARN), "
            "or unset for the default bus",
        )
    elif settings.caption_events is not True:
        yield InvalidSettingError(
            "event_bus_name",
            bus,
            "unset unless {caption_events} is true (it names where caption events go)",
            related=("caption_events",),
        )


def rule_pattern_json(settings: PipelineSettings, bucket_name: str) -> str:
    """Eventbridge mode's rule pattern for `bucket_name`, as sent to EventBridge (compact JSON)."""
    pattern = event_pattern.object_created_pattern(bucket_name, settings.key_prefix, settings.key_suffixes)
    return json.dumps(pattern, separators=(",", ":"))


def _rule_pattern_size(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    bucket = settings.existing_bucket_name or event_pattern.LONGEST_BUCKET_NAME
    size = len(rule_pattern_json(settings, bucket))
    if size > event_pattern.PATTERN_MAX_CHARACTERS:
        yield InvalidSettingError(
            "key_suffixes",
            list(settings.key_suffixes),
            f"fewer or shorter suffixes (or a shorter {{key_prefix}}) with trigger 'eventbridge': the rule's "
            f"pattern would be {size} characters, over EventBridge's {event_pattern.PATTERN_MAX_CHARACTERS}",
            related=("key_prefix",),
        )
