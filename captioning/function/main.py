"""Lambda entry point (`captioning.function.main.handler`, the image's CMD).

Importing this module is the function's INIT, once per runtime: settings from the environment, boto3
clients, the model (captioning/function/processing.py), the SnapStart hooks registered (called by the
runtime only when SnapStart is on: captioning/function/snapstart.py), then one log line: how long loading
took (settings, clients, model; the imports before it are in Lambda's own INIT duration) and the
initialization type. Tests and the local pipeline build a `CaptionHandler` themselves instead of
importing this.
"""

from __future__ import annotations

import time

from captioning.function import snapstart
from captioning.function.processing import CaptionHandler

_started = time.monotonic()
function = CaptionHandler.from_environment()
snapstart_hooks = snapstart.register(function)
function.telemetry.log_init(
    load_ms=(time.monotonic() - _started) * 1000,
    runtime=function.captioner.runtime,
    model=function.captioner.model_id,
)
handler = function.handler
"""Request id in every log line, traced, metrics flushed."""
