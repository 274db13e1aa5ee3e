"""Serverless image captioning: `from captioning import CaptioningPipeline, CaptioningPipelineArgs`.

One package, laid out by lifecycle:

- `captioning.component`: the Pulumi component (what `pulumi up` runs);
- `captioning.function`: exactly what the function image runs (the handler and the captioning core);
- `captioning.preparation`: build-time model preparation (`python -m captioning.preparation`);
- `captioning.contract`: the names and defaults both sides read (standard library only);
- `captioning.testing`: Pulumi mocks for a program's unit tests.

The component's names are imported on first use (PEP 562), so the function, which ships this file but
neither Pulumi nor the component, imports `captioning.function` without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from captioning.component import (
        CaptioningPipeline,
        CaptioningPipelineArgs,
        InvalidSettingError,
        PipelineSettings,
    )

__all__ = ["CaptioningPipeline", "CaptioningPipelineArgs", "InvalidSettingError", "PipelineSettings"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("captioning.component"), name)
    raise AttributeError(f"module 'captioning' has no attribute {name!r}")
