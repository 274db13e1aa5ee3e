"""Reads a stack's `captioning:*` config into CaptioningPipelineArgs.

Keys are camelCase; the two people change most are literally `memory` and `concurrency`.
A value of the wrong type, an unknown key, or a value AWS would refuse fails naming the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from captioning.component.args import CaptioningPipelineArgs
from captioning.component.settings import resolve_settings
from captioning.component.validation import InvalidSettingError

NAMESPACE = "captioning"


@dataclass(frozen=True)
class ConfigKey:
    key: str
    field: str
    kind: str  # "int", "str", "bool" or "list"
    example: str = ""  # shown when a list is malformed


CONFIG_KEYS = (
    ConfigKey("memory", "memory_size", "int"),
    ConfigKey("concurrency", "reserved_concurrency", "int"),
    ConfigKey("provisionedConcurrency", "provisioned_concurrency", "int"),
    ConfigKey("timeout", "timeout", "int"),
    ConfigKey("architecture", "architecture", "str"),
    ConfigKey("ephemeralStorage", "ephemeral_storage", "int"),
    ConfigKey("trigger", "trigger", "str"),
    ConfigKey("batchSize", "batch_size", "int"),
    ConfigKey("batchingWindow", "batching_window", "int"),
    ConfigKey("maxConcurrency", "max_concurrency", "int"),
    ConfigKey("maxReceiveCount", "max_receive_count", "int"),
    ConfigKey("retryAttempts", "retry_attempts", "int"),
    ConfigKey("maxEventAge", "max_event_age", "int"),
    ConfigKey("modelId", "model_id", "str"),
    ConfigKey("modelDir", "model_dir", "str"),
    ConfigKey("halfPrecisionWeights", "half_precision_weights", "bool"),
    ConfigKey("runtime", "runtime", "str"),
    ConfigKey("numBeams", "num_beams", "int"),
    ConfigKey("maxLength", "max_length", "int"),
    ConfigKey("prompt", "prompt", "str"),
    ConfigKey("precision", "precision", "str"),
    ConfigKey("maxObjectBytes", "max_object_bytes", "int"),
    ConfigKey("keyPrefix", "key_prefix", "str"),
    ConfigKey("keySuffixes", "key_suffixes", "list", '[".jpg", ".png"]'),
    ConfigKey("logRetentionDays", "log_retention_days", "int"),
    ConfigKey("forceDestroy", "force_destroy", "bool"),
    ConfigKey("imagesToKeep", "images_to_keep", "int"),
    ConfigKey("tracing", "tracing", "bool"),
    ConfigKey("metrics", "metrics", "bool"),
    ConfigKey("metricsNamespace", "metrics_namespace", "str"),
    ConfigKey("alarmEmails", "alarm_emails", "list", '["ops@example.com"]'),
    ConfigKey("alarmPeriod", "alarm_period", "int"),
    ConfigKey("alarmEvaluationPeriods", "alarm_evaluation_periods", "int"),
    ConfigKey("errorsAlarmThreshold", "errors_alarm_threshold", "int"),
    ConfigKey("throttlesAlarmThreshold", "throttles_alarm_threshold", "int"),
    ConfigKey("durationAlarmPercent", "duration_alarm_percent", "int"),
    ConfigKey("queueAgeAlarmSeconds", "queue_age_alarm_seconds", "int"),
)
_BY_FIELD = {entry.field: entry for entry in CONFIG_KEYS}


class UnknownConfigKeyError(ValueError):
    def __init__(self, key: str) -> None:
        known = ", ".join(entry.key for entry in CONFIG_KEYS)
        super().__init__(f"unknown configuration key '{key}'; the {NAMESPACE} namespace takes: {known}")


def args_from_config(config: pulumi.Config | None = None) -> CaptioningPipelineArgs:
    """Args from the current stack's config (only the keys set: the others keep the component's defaults)."""
    config = config if config is not None else pulumi.Config(NAMESPACE)
    _reject_unknown_keys()
    values: dict[str, Any] = {}
    for entry in CONFIG_KEYS:
        value = _read(config, entry)
        if value is not None:
            values[entry.field] = value
    try:
        resolve_settings(values)  # refused here, naming the config key, rather than by the component
    except InvalidSettingError as error:
        entry = _BY_FIELD.get(error.setting)
        if entry is None:
            raise
        raise error.renamed(f"{NAMESPACE}:{entry.key}") from error
    return CaptioningPipelineArgs(**values)


def _read(config: pulumi.Config, entry: ConfigKey) -> Any:
    if entry.kind == "int":
        return config.get_int(entry.key)
    if entry.kind == "bool":
        return config.get_bool(entry.key)
    if entry.kind == "str":
        return config.get(entry.key)
    raw = config.get(entry.key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidSettingError(f"{NAMESPACE}:{entry.key}", raw, f"a list of strings, e.g. {entry.example}")
    return tuple(value)


def _reject_unknown_keys() -> None:
    # Pulumi ignores keys nobody reads; a typo such as `memroy` would silently keep the default.
    prefix = f"{NAMESPACE}:"
    known = {prefix + entry.key for entry in CONFIG_KEYS}
    present = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    for key in sorted(present):
        if key.startswith(prefix) and key not in known:
            raise UnknownConfigKeyError(key)
