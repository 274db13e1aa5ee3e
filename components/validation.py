"""Checks on CaptioningPipelineArgs, run before any resource exists.

Each failure is an InvalidSettingError naming the setting, the value given and what is allowed,
so a bad `pulumi config set` fails at the start of `pulumi up` instead of half-way through.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from components import limits

if TYPE_CHECKING:
    from components.args import CaptioningPipelineArgs

PRECISIONS = ("fp32", "bf16", "int8")
TRIGGERS = ("direct", "queue")


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


def validate(args: CaptioningPipelineArgs) -> None:
    """Raise the first InvalidSettingError found in `args`, or return if all settings are valid."""
    for error in _errors(args):
        raise error


def _errors(args: CaptioningPipelineArgs) -> Iterator[InvalidSettingError]:
    yield from _integer_in_range("memory_size", args.memory_size, limits.MEMORY_MB, "MB")
    yield from _integer_in_range("timeout", args.timeout, limits.TIMEOUT_SECONDS, "seconds")
    yield from _integer_in_range(
        "ephemeral_storage", args.ephemeral_storage, limits.EPHEMERAL_STORAGE_MB, "MB"
    )
    yield from _one_of("architecture", args.architecture, limits.ARCHITECTURES)
    yield from _one_of("trigger", args.trigger, TRIGGERS)
    yield from _one_of("precision", args.precision, PRECISIONS)
    yield from _concurrency(args)
    yield from _queue_settings(args)
    yield from _integer_in_range(
        "retry_attempts", args.retry_attempts, limits.ASYNC_RETRY_ATTEMPTS, "retries"
    )
    yield from _integer_in_range(
        "max_event_age", args.max_event_age, limits.ASYNC_EVENT_AGE_SECONDS, "seconds"
    )
    if not _is_int(args.log_retention_days) or args.log_retention_days not in limits.LOG_RETENTION_DAYS:
        yield InvalidSettingError(
            "log_retention_days",
            args.log_retention_days,
            f"one of CloudWatch Logs' retention periods {', '.join(map(str, limits.LOG_RETENTION_DAYS))}",
        )
    yield from _at_least("num_beams", args.num_beams, 1)
    yield from _at_least("max_length", args.max_length, 1)
    yield from _at_least("max_object_bytes", args.max_object_bytes, 1)
    yield from _at_least("images_to_keep", args.images_to_keep, 1)
    if not isinstance(args.model_id, str) or not args.model_id.strip():
        yield InvalidSettingError("model_id", args.model_id, "a non-empty model id")
    yield from _key_filters(args)
    for flag in ("force_destroy", "half_precision_weights"):
        if not isinstance(getattr(args, flag), bool):
            yield InvalidSettingError(flag, getattr(args, flag), "true or false")
    if args.model_dir is not None and (not isinstance(args.model_dir, str) or not args.model_dir.strip()):
        yield InvalidSettingError("model_dir", args.model_dir, "a directory in the build context, or unset")


def _concurrency(args: CaptioningPipelineArgs) -> Iterator[InvalidSettingError]:
    reserved = args.reserved_concurrency
    if reserved is not None:
        yield from _at_least("reserved_concurrency", reserved, 0, "(or unset for no reservation)")
    yield from _at_least("provisioned_concurrency", args.provisioned_concurrency, 0, "(0 turns it off)")
    if (
        reserved is not None
        and _is_int(reserved)
        and _is_int(args.provisioned_concurrency)
        and args.provisioned_concurrency > reserved
    ):
        yield InvalidSettingError(
            "provisioned_concurrency",
            args.provisioned_concurrency,
            f"at most the reserved concurrency ({reserved})",
        )


def _queue_settings(args: CaptioningPipelineArgs) -> Iterator[InvalidSettingError]:
    yield from _integer_in_range("batch_size", args.batch_size, limits.SQS_BATCH_SIZE, "messages")
    yield from _integer_in_range(
        "batching_window", args.batching_window, limits.BATCHING_WINDOW_SECONDS, "seconds"
    )
    if (
        _is_int(args.batch_size)
        and _is_int(args.batching_window)
        and args.batch_size > limits.SQS_BATCH_SIZE_WITHOUT_WINDOW
        and args.batching_window < 1
    ):
        yield InvalidSettingError(
            "batch_size",
            args.batch_size,
            f"at most {limits.SQS_BATCH_SIZE_WITHOUT_WINDOW} unless batching_window is at least 1 second",
        )
    yield from _integer_in_range(
        "max_receive_count", args.max_receive_count, limits.SQS_MAX_RECEIVE_COUNT, "receives"
    )
    if args.max_concurrency is not None:
        yield from _integer_in_range(
            "max_concurrency", args.max_concurrency, limits.SQS_MAXIMUM_CONCURRENCY, "instances"
        )
    reserved = args.reserved_concurrency
    if args.trigger != "queue" or not (reserved is None or _is_int(reserved)):
        return
    effective = args.queue_max_concurrency
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


def _key_filters(args: CaptioningPipelineArgs) -> Iterator[InvalidSettingError]:
    if not isinstance(args.key_prefix, str):
        yield InvalidSettingError("key_prefix", args.key_prefix, "a string ('' for the whole bucket)")
    suffixes = args.key_suffixes
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
