"""The function's settings, read once from its environment at init.

captioning/component/function.py writes these variables, named in captioning/contract/environment.py
(tests/component/test_pipeline_function.py feeds one into the other).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from captioning.contract import constants
from captioning.contract.environment import Variable


class SettingsError(ValueError):
    """An environment variable is missing or holds a value the function cannot use."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    model_dir: Path
    model_id: str
    runtime: str = constants.DEFAULT_RUNTIME
    precision: str = constants.DEFAULT_PRECISION
    num_beams: int | None = None
    """None: the model's generation_config.json decides."""
    max_length: int | None = None
    """None: the model's generation_config.json decides."""
    prompt: str | None = None
    """None: the model family's default prompt."""
    max_object_bytes: int = constants.MAX_OBJECT_BYTES
    metrics_enabled: bool = True
    tracing_enabled: bool = True
    caption_events: bool = False
    """Publish an EventBridge event per captioned or failed object (captioning/function/caption_events.py)."""
    event_bus_name: str | None = None
    """The bus caption events go to; None: the account's default bus."""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        table_name = environ.get(Variable.TABLE_NAME, "").strip()
        if not table_name:
            raise SettingsError(
                f"{Variable.TABLE_NAME} is not set: it must name the DynamoDB table captions are written to"
            )
        model_dir = Path(environ.get(Variable.MODEL_DIR) or constants.MODEL_DIR_IN_IMAGE)
        return cls(
            table_name=table_name,
            model_dir=model_dir,
            model_id=environ.get(Variable.MODEL_ID) or model_dir.name,
            runtime=_one_of(environ, Variable.RUNTIME, constants.RUNTIMES, constants.DEFAULT_RUNTIME),
            precision=_one_of(environ, Variable.PRECISION, constants.PRECISIONS, constants.DEFAULT_PRECISION),
            num_beams=_positive_int(environ, Variable.NUM_BEAMS),
            max_length=_positive_int(environ, Variable.MAX_LENGTH),
            prompt=environ.get(Variable.PROMPT) or None,
            max_object_bytes=_positive_int(environ, Variable.MAX_OBJECT_BYTES) or constants.MAX_OBJECT_BYTES,
            metrics_enabled=not _flag(environ, Variable.POWERTOOLS_METRICS_DISABLED),
            tracing_enabled=not _flag(environ, Variable.POWERTOOLS_TRACE_DISABLED),
            caption_events=_flag(environ, Variable.CAPTION_EVENTS),
            event_bus_name=(environ.get(Variable.EVENT_BUS_NAME) or "").strip() or None,
        )


def _one_of(environ: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = environ.get(name) or default
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _positive_int(environ: Mapping[str, str], name: str) -> int | None:
    text = environ.get(name)
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SettingsError(f"{name} must be a positive integer; got {text!r}")
    return value


def _flag(environ: Mapping[str, str], name: str) -> bool:
    text = (environ.get(name) or "false").strip().lower()
    if text not in ("true", "false", "1", "0"):
        raise SettingsError(f"{name} must be true or false; got {text!r}")
    return text in ("true", "1")
