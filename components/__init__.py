"""Pulumi components of the captioning service."""

from components.args import CaptioningPipelineArgs
from components.pipeline import CaptioningPipeline
from components.validation import InvalidSettingError

__all__ = ["CaptioningPipeline", "CaptioningPipelineArgs", "InvalidSettingError"]
