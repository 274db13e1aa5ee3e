"""The function's environment, named once: what the component writes (captioning/component/function.py),
what the function reads (captioning/function/settings.py, telemetry.py), what the image sets
(captioning/function/Dockerfile's ENV) and what the local pipeline and bench set to run the function.

Standard library only: it ships in the image.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum


class Variable(StrEnum):
    """An environment variable of the function (a `str`: usable as a key of `os.environ` as it is)."""

    TABLE_NAME = "TABLE_NAME"
    """The DynamoDB table captions are written to (required)."""
    MODEL_DIR = "MODEL_DIR"
    """The model directory (default: where the image holds its model, constants.MODEL_DIR_IN_IMAGE)."""
    MODEL_ID = "MODEL_ID"
    """The `model` attribute of every item (default: the model directory's name)."""
    RUNTIME = "RUNTIME"
    PRECISION = "PRECISION"
    NUM_BEAMS = "NUM_BEAMS"
    """Unset: what the model's own generate() uses (as for MAX_LENGTH; PROMPT: the family's default)."""
    MAX_LENGTH = "MAX_LENGTH"
    PROMPT = "PROMPT"
    MAX_OBJECT_BYTES = "MAX_OBJECT_BYTES"
    CAPTION_EVENTS = "CAPTION_EVENTS"
    """"true": publish one EventBridge event per captioned or failed object, after its DynamoDB write."""
    EVENT_BUS_NAME = "EVENT_BUS_NAME"
    """The bus caption events go to (unset: the account's default bus)."""
    POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
    POWERTOOLS_METRICS_DISABLED = "POWERTOOLS_METRICS_DISABLED"
    POWERTOOLS_TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"
    POWERTOOLS_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
    """Read by Powertools' Logger itself."""
    AWS_LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"
    """Set by Lambda; the metrics' function_name dimension."""
    AWS_LAMBDA_FUNCTION_TIMEOUT = "AWS_LAMBDA_FUNCTION_TIMEOUT"
    """Set by Lambda; the runtime interface emulator takes its invocation timeout from it."""
    AWS_LAMBDA_INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"
    """Set by Lambda: "on-demand", "provisioned-concurrency", or "snap-start" (an environment restored from
    a SnapStart snapshot, and the INIT that made it); the function's cold-start metric and log lines say
    it."""


OFFLINE_ENVIRONMENT: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}
"""Set wherever a model is loaded at run time: never reach the Hub, no progress bars in logs."""

HUB_OFFLINE = "HF_HUB_OFFLINE"
"""The one of OFFLINE_ENVIRONMENT that stops huggingface_hub from reaching the Hub."""


def offline_environment(
    environ: Mapping[str, str] = os.environ, *, hub_downloads: bool = False
) -> dict[str, str]:
    """What of OFFLINE_ENVIRONMENT `environ` does not set yet: `os.environ.update(offline_environment())`
    applies it (before transformers or huggingface_hub is imported: they read it then), a value already
    set is kept.

    `hub_downloads=True` (preparing a model from a Hub model id) leaves HF_HUB_OFFLINE out.
    """
    return {
        name: value
        for name, value in OFFLINE_ENVIRONMENT.items()
        if name not in environ and not (hub_downloads and name == HUB_OFFLINE)
    }
