"""The function's settings, read once from its environment at init."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from handler.images import MAX_OBJECT_BYTES

# Where handler/Dockerfile puts the model inside the image.
DEFAULT_MODEL_DIR = "/opt/ml/model"
PRECISION_CHOICES = ("fp32", "bf16", "int8")


class SettingsError(ValueError):
    """An environment variable is missing or holds a value the function cannot use."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    model_dir: Path
    model_id: str
    num_beams: int = 4
    max_length: int = 16
    precision: str = "fp32"
    max_object_bytes: int = MAX_OBJECT_BYTES

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        table_name = environ.get("TABLE_NAME", "").strip()
        if not table_name:
            raise SettingsError(
                "TABLE_NAME is not set: it must name the DynamoDB table captions are written to"
            )
        model_dir = Path(environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR)
        precision = environ.get("PRECISION") or "fp32"
        if precision not in PRECISION_CHOICES:
            raise SettingsError(f"PRECISION must be one of {', '.join(PRECISION_CHOICES)}; got {precision!r}")
        return cls(
            table_name=table_name,
            model_dir=model_dir,
            model_id=environ.get("MODEL_ID") or model_dir.name,
            num_beams=_positive_int(environ, "NUM_BEAMS", 4),
            max_length=_positive_int(environ, "MAX_LENGTH", 16),
            precision=precision,
            max_object_bytes=_positive_int(environ, "MAX_OBJECT_BYTES", MAX_OBJECT_BYTES),
        )


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SettingsError(f"{name} must be a positive integer; got {text!r}")
    return value
