"""The Lambda function's runtime, emulated in-process: its environment, its init, its context object.

`handler.main` configures itself from the environment at import (like a Lambda INIT phase), so the
environment is set first and the module imported after.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from local.emulator import ACCOUNT_ID, DUMMY_CREDENTIALS, REGION, Deployment

DEMO_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "demo-shapes"
FUNCTION_NAME = "captioning-local"
WARM_UP_BATCH = 4
FUNCTION_LOGGER = "captioning"  # POWERTOOLS_SERVICE_NAME: the name of the function's Powertools logger
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)

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
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

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
        "POWERTOOLS_SERVICE_NAME": FUNCTION_LOGGER,
        "POWERTOOLS_LOG_LEVEL": log_level,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


class RetryReasons(logging.Handler):
    """Remembers, per object key, why the function last gave it back for a retry.

    Read from the function's own structured log lines ("object will be retried", with `key` and
    `error`), so a dead-lettered key can be reported with its last error rather than a guess.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.by_key: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = getattr(record, "key", None)
        if getattr(record, "status", None) == "retry" and isinstance(key, str):
            self.by_key[key] = str(getattr(record, "error", None) or record.getMessage())


def _route_function_logs(display_level: str) -> RetryReasons:
    """The function's log lines go to stderr at `display_level`; its retry warnings are always captured."""
    function_logger = logging.getLogger(FUNCTION_LOGGER)
    function_logger.propagate = False  # its handler prints JSON lines; not a second time through root
    for existing in list(function_logger.handlers):
        if isinstance(existing, RetryReasons):
            function_logger.removeHandler(existing)
        else:
            existing.setLevel(display_level)
    reasons = RetryReasons()
    function_logger.addHandler(reasons)
    return reasons


def _warm_up(module: ModuleType) -> None:
    """Caption calls before any event, as a warm (provisioned) environment has made them.

    The function's timeout guard starts from a cold-start guess of seconds per image and learns from
    its calls; without this, a short local function timeout sends a first batch back to the queue.
    The first call pays one-off costs; the second, a small batch, gives the estimate.
    Skipped when the module does not expose its captioner and estimate.
    """
    captioner, estimate = getattr(module, "captioner", None), getattr(module, "caption_time", None)
    if captioner is None or not hasattr(estimate, "record"):
        return
    from PIL import Image

    blank = Image.new("RGB", (224, 224), (255, 255, 255))
    captioner.caption([blank])
    started = time.monotonic()
    captioner.caption([blank] * WARM_UP_BATCH)
    estimate.record(WARM_UP_BATCH, (time.monotonic() - started) * 1000)


def load_function(
    deployment: Deployment, model_dir: Path, *, log_level: str = "WARNING"
) -> tuple[ModuleType, RetryReasons]:
    """Set the function's environment, run its init (import, model load), warm it up.

    Returns its module (its `handler` is the entry point; its `s3_client` / `dynamodb_client` are
    the clients the soak injects faults into) and the retry reasons its log lines report.
    """
    capture_level = log_level if logging.getLevelName(log_level) < logging.WARNING else "WARNING"
    for name, value in function_environment(deployment, model_dir, capture_level).items():
        os.environ[name] = value
    if "handler.main" in sys.modules:  # a second pipeline in one process: re-run the init
        module = importlib.reload(sys.modules["handler.main"])
    else:
        module = importlib.import_module("handler.main")
    reasons = _route_function_logs(log_level)
    _warm_up(module)
    return module, reasons
