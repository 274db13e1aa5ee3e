"""The captioning pipeline as a Pulumi component: `from captioning import CaptioningPipeline`.

Installed with pip (Python programs) or added with `pulumi package add` (any Pulumi language: the package
serves CaptioningPipeline through its component provider, `python -m captioning`). Mocks for a program's
unit tests: `captioning.testing`.
"""

from captioning.component.args import CaptioningPipelineArgs
from captioning.component.pipeline import CaptioningPipeline
from captioning.component.settings import PipelineSettings
from captioning.component.validation import InvalidSettingError

__all__ = ["CaptioningPipeline", "CaptioningPipelineArgs", "InvalidSettingError", "PipelineSettings"]
