"""Reads a stack's `captioning:*` config into CaptioningPipelineArgs.

One key per setting: the setting's name in camelCase (as the schema spells the input), except the two
people change most, which are literally `memory` and `concurrency`. A value of the wrong type, an unknown
key, or a value AWS would refuse fails naming the key.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.provider.experimental.util import camel_case
from pulumi.runtime import config as runtime_config

from captioning.component.args import CaptioningPipelineArgs
from captioning.component.model_check import check_model_fits
from captioning.component.settings import resolve_settings
from captioning.component.validation import InvalidSettingError

NAMESPACE = "captioning"

SHORT_KEYS = {"memory_size": "memory", "reserved_concurrency": "concurrency"}
"""The settings whose config key is not their name in camelCase."""

NOT_IN_CONFIG = ("tags",)
"""Settings with no config key: a map of tags is not a config value (a stack tags its resources with
the AWS provider's `aws:defaultTags`)."""

_KINDS = {int: "int", str: "str", bool: "bool"}


@dataclass(frozen=True)
class ConfigKey:
    key: str
    field: str
    kind: str  # "int", "str", "bool" or "list" (of strings, given as JSON)


def _kind(hint: object) -> str:
    """How a setting's config value is read, from its annotation on CaptioningPipelineArgs."""
    if typing.get_origin(hint) is Sequence:
        return "list"
    types = [member for member in typing.get_args(hint) or (hint,) if member is not type(None)]
    (kind,) = {_KINDS[member] for member in types}  # a new kind of setting needs a reader below
    return kind


CONFIG_KEYS = tuple(
    ConfigKey(SHORT_KEYS.get(field, camel_case(field)), field, _kind(hint))
    for field, hint in typing.get_type_hints(CaptioningPipelineArgs).items()
    if field not in NOT_IN_CONFIG
)
"""Every config key, in the order of CaptioningPipelineArgs (the README's configuration table's)."""
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
    try:  # refused here, naming the config key, rather than by the component
        check_model_fits(resolve_settings(values))
    except InvalidSettingError as error:
        entry = _BY_FIELD.get(error.setting)
        if entry is None:
            raise
        raise error.renamed(f"{NAMESPACE}:{entry.key}", config_key_of) from error
    return CaptioningPipelineArgs(**values)


def config_key_of(field: str) -> str:
    """A setting's config key as a stack file spells it (`captioning:provisionedConcurrency`)."""
    entry = _BY_FIELD.get(field)
    return f"{NAMESPACE}:{entry.key}" if entry is not None else field


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
        value = None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return raw  # not a JSON list of strings: the settings' validation refuses it, saying what is allowed


def _reject_unknown_keys() -> None:
    # Pulumi ignores keys nobody reads; a typo such as `memroy` would silently keep the default.
    prefix = f"{NAMESPACE}:"
    known = {prefix + entry.key for entry in CONFIG_KEYS}
    present = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    for key in sorted(present):
        if key.startswith(prefix) and key not in known:
            raise UnknownConfigKeyError(key)
