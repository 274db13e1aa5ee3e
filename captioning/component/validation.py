"""Checks on PipelineSettings, run before any resource exists.

Each failure is an InvalidSettingError naming the setting, the value given and what is allowed,
so a bad `pulumi config set` fails at the start of `pulumi up` instead of half-way through.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from captioning.component import limits
from captioning.contract import constants, runtimes

if TYPE_CHECKING:
    from captioning.component.settings import PipelineSettings

TRIGGERS = ("direct", "queue")
# Deliberately loose: SNS validates the address; this only catches values that are clearly not one.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InvalidSettingError(ValueError):
    """A pipeline setting AWS (or the captioner) would refuse."""

    def __init__(self, setting: str, value: object, allowed: str) -> None:
        self.setting = setting
        self.value = value
        self.allowed = allowed
        super().__init__(f"{setting}={value!r} is not allowed: {allowed}")

    def renamed(self, setting: str) -> InvalidSettingError:
        """The same error, naming the setting as the user spelled it (e.g. a config key)."""
        return InvalidSettingError(setting, self.value, self.allowed)


def validate(settings: PipelineSettings) -> None:
    """Raise the first InvalidSettingError found in `settings`, or return if all settings are valid."""
    for error in _errors(settings):
        raise error


def _errors(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    yield from _integer_in_range("memory_size", settings.memory_size, limits.MEMORY_MB, "MB")
    yield from _integer_in_range("timeout", settings.timeout, limits.TIMEOUT_SECONDS, "seconds")
    yield from _integer_in_range(
        "ephemeral_storage", settings.ephemeral_storage, limits.EPHEMERAL_STORAGE_MB, "MB"
    )
    yield from _one_of("architecture", settings.architecture, limits.ARCHITECTURES)
    yield from _one_of("trigger", settings.trigger, TRIGGERS)
    yield from _model_settings(settings)
    yield from _concurrency(settings)
    yield from _queue_settings(settings)
    yield from _integer_in_range(
        "retry_attempts", settings.retry_attempts, limits.ASYNC_RETRY_ATTEMPTS, "retries"
    )
    yield from _integer_in_range(
        "max_event_age", settings.max_event_age, limits.ASYNC_EVENT_AGE_SECONDS, "seconds"
    )
    if (
        not _is_int(settings.log_retention_days)
        or settings.log_retention_days not in limits.LOG_RETENTION_DAYS
    ):
        yield InvalidSettingError(
            "log_retention_days",
            settings.log_retention_days,
            f"one of CloudWatch Logs' retention periods {', '.join(map(str, limits.LOG_RETENTION_DAYS))}",
        )
    yield from _at_least("max_object_bytes", settings.max_object_bytes, 1)
    yield from _at_least("images_to_keep", settings.images_to_keep, 1)
    yield from _key_filters(settings)
    yield from _monitoring(settings)
    for flag in ("force_destroy", "half_precision_weights", "tracing", "metrics"):
        if not isinstance(getattr(settings, flag), bool):
            yield InvalidSettingError(flag, getattr(settings, flag), "true or false")


def _model_settings(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    if not isinstance(settings.model_id, str) or not settings.model_id.strip():
        yield InvalidSettingError("model_id", settings.model_id, "a non-empty model id")
    model_dir = settings.model_dir
    if model_dir is not None and (not isinstance(model_dir, str) or not model_dir.strip()):
        yield InvalidSettingError("model_dir", model_dir, "a model directory, or unset to download model_id")
    yield from _one_of("runtime", settings.runtime, constants.RUNTIMES)
    yield from _one_of("precision", settings.precision, constants.PRECISIONS)
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
            yield from _at_least(setting, getattr(settings, setting), 1, "(or unset for the model's own)")
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
    if not _is_int(period) or not (
        period in limits.ALARM_SUB_MINUTE_PERIODS or (period >= 60 and period % 60 == 0)
    ):
        yield InvalidSettingError("alarm_period", period, "10, 20, 30 or a multiple of 60 seconds")
    yield from _at_least("alarm_evaluation_periods", settings.alarm_evaluation_periods, 1)
    if (
        _is_int(period)
        and _is_int(settings.alarm_evaluation_periods)
        and period * settings.alarm_evaluation_periods > limits.ALARM_MAX_EVALUATION_SECONDS
    ):
        yield InvalidSettingError(
            "alarm_evaluation_periods",
            settings.alarm_evaluation_periods,
            f"at most {limits.ALARM_MAX_EVALUATION_SECONDS} seconds in all (alarm_period x periods)",
        )
    yield from _at_least("errors_alarm_threshold", settings.errors_alarm_threshold, 1)
    yield from _at_least("throttles_alarm_threshold", settings.throttles_alarm_threshold, 1)
    yield from _integer_in_range(
        "duration_alarm_percent", settings.duration_alarm_percent, (1, 100), "percent"
    )
    yield from _at_least("queue_age_alarm_seconds", settings.queue_age_alarm_seconds, 60, "seconds")


def _concurrency(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    reserved = settings.reserved_concurrency
    if reserved is not None:
        # 0 is a valid Lambda value but throttles every invocation: nothing would ever be captioned,
        # while provisioned concurrency 0 means "off". Refuse it rather than let the zeros disagree.
        yield from _at_least(
            "reserved_concurrency",
            reserved,
            1,
            "(0 would throttle every upload; leave it unset to reserve nothing, "
            "and set provisioned concurrency to 0 to keep no instance warm)",
        )
    yield from _at_least("provisioned_concurrency", settings.provisioned_concurrency, 0, "(0 turns it off)")
    if (
        reserved is not None
        and _is_int(reserved)
        and _is_int(settings.provisioned_concurrency)
        and settings.provisioned_concurrency > reserved
    ):
        yield InvalidSettingError(
            "provisioned_concurrency",
            settings.provisioned_concurrency,
            f"at most the reserved concurrency ({reserved})",
        )


def _queue_settings(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    yield from _integer_in_range("batch_size", settings.batch_size, limits.SQS_BATCH_SIZE, "messages")
    yield from _integer_in_range(
        "batching_window", settings.batching_window, limits.BATCHING_WINDOW_SECONDS, "seconds"
    )
    if (
        _is_int(settings.batch_size)
        and _is_int(settings.batching_window)
        and settings.batch_size > limits.SQS_BATCH_SIZE_WITHOUT_WINDOW
        and settings.batching_window < 1
    ):
        yield InvalidSettingError(
            "batch_size",
            settings.batch_size,
            f"at most {limits.SQS_BATCH_SIZE_WITHOUT_WINDOW} unless batching_window is at least 1 second",
        )
    yield from _integer_in_range(
        "max_receive_count", settings.max_receive_count, limits.SQS_MAX_RECEIVE_COUNT, "receives"
    )
    if settings.max_concurrency is not None:
        yield from _integer_in_range(
            "max_concurrency", settings.max_concurrency, limits.SQS_MAXIMUM_CONCURRENCY, "instances"
        )
    reserved = settings.reserved_concurrency
    if settings.trigger != "queue" or not (reserved is None or _is_int(reserved)):
        return
    effective = settings.queue_max_concurrency
    low = limits.SQS_MAXIMUM_CONCURRENCY[0]
    if _is_int(effective) and effective < low:
        yield InvalidSettingError(
            "max_concurrency",
            effective,
            f"at least {low} in queue mode (AWS's minimum for an SQS event source); it defaults to "
            "the reserved concurrency, so reserve at least 2 or use trigger 'direct'",
        )
    elif reserved is not None and _is_int(effective) and effective > reserved:
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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer_in_range(
    setting: str, value: object, bounds: tuple[int, int], unit: str
) -> Iterator[InvalidSettingError]:
    low, high = bounds
    if not _is_int(value) or not low <= value <= high:  # type: ignore[operator]
        yield InvalidSettingError(setting, value, f"a whole number of {unit} from {low} to {high}")


def _at_least(setting: str, value: object, low: int, note: str = "") -> Iterator[InvalidSettingError]:
    if not _is_int(value) or value < low:  # type: ignore[operator]
        yield InvalidSettingError(setting, value, f"a whole number >= {low} {note}".rstrip())


def _one_of(setting: str, value: object, allowed: tuple[str, ...]) -> Iterator[InvalidSettingError]:
    if value not in allowed:
        yield InvalidSettingError(setting, value, "one of " + ", ".join(repr(a) for a in allowed))
