"""The Lambda function's runtime, emulated in-process: its environment, its init, its context object.

`handler.main` configures itself from the environment at import (like a Lambda INIT phase), so the
environment is set first and the module imported after.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from local.emulator import ACCOUNT_ID, DUMMY_CREDENTIALS, Deployment

FUNCTION_NAME = "captioning-local"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")

LambdaHandler = Callable[[dict[str, Any], Any], Any]


class ModelDirectoryError(ValueError):
    """The given model directory cannot hold a loadable captioning model."""


def check_model_directory(model_dir: Path) -> None:
    """Fail fast, before torch is imported, when a directory has no model in it."""
    if not model_dir.exists():
        raise ModelDirectoryError(f"model directory not found: {model_dir}")
    if not model_dir.is_dir():
        raise ModelDirectoryError(f"model path is not a directory: {model_dir}")
    missing = []
    if not (model_dir / "config.json").is_file():
        missing.append("config.json")
    if not any((model_dir / name).is_file() for name in WEIGHT_FILES):
        missing.append("weights (" + " or ".join(WEIGHT_FILES[::2]) + ")")
    if missing:
        raise ModelDirectoryError(f"no model in {model_dir}: missing {' and '.join(missing)}")


@dataclass
class LambdaContext:
    """The attributes and method of the context object Lambda passes to a Python handler."""

    timeout_s: float
    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 4096
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "local"
    _deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_environment(deployment: Deployment, model_dir: Path, log_level: str) -> dict[str, str]:
    """What the deployed function's environment would hold, pointed at the emulator."""
    return {
        **DUMMY_CREDENTIALS,
        "AWS_ENDPOINT_URL": deployment.endpoint_url,
        "AWS_DEFAULT_REGION": deployment.region,
        "AWS_REGION": deployment.region,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "TABLE_NAME": deployment.table,
        "MODEL_DIR": str(model_dir),
        "MODEL_ID": model_dir.name,
        "POWERTOOLS_SERVICE_NAME": "captioning",
        "POWERTOOLS_LOG_LEVEL": log_level,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def load_function(deployment: Deployment, model_dir: Path, *, log_level: str = "WARNING") -> ModuleType:
    """Set the function's environment, run its init (import, model load) and return its module.

    The module's `handler` is the entry point; its `s3_client` / `dynamodb_client` are the clients
    the soak injects faults into.
    """
    for name, value in function_environment(deployment, model_dir, log_level).items():
        os.environ[name] = value
    if "handler.main" in sys.modules:  # a second pipeline in one process: re-run the init
        module = importlib.reload(sys.modules["handler.main"])
    else:
        module = importlib.import_module("handler.main")
    return module
