"""Lambda entry point (`captioning.function.main.handler`, the image's CMD).

Importing this module is the function's INIT, once per runtime: settings from the environment, boto3
clients, the model (captioning/function/processing.py). Tests and the local pipeline build a
`CaptionHandler` themselves instead of importing this.
"""

from __future__ import annotations

from captioning.function.processing import CaptionHandler

function = CaptionHandler.from_environment()
handler = function.handler
"""Request id in every log line, traced, metrics flushed."""
