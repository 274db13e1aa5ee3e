"""The captioning core's front door: a prepared model directory -> captions for PIL images.

`Captioner.load(model_dir, ...)` chooses the runtime by what the directory holds:
- exported ONNX graphs (`onnx_model.json`, written by `python -m captioning.preparation --runtime onnx`)
  -> ONNX Runtime (captioning/function/onnx_captioner.py); torch and transformers are never imported;
- a VisionEncoderDecoder with a GPT-2 decoder -> the torch fast path (captioning/function/torch_captioner.py);
- any other family transformers' AutoModelForImageTextToText maps -> captioning/function/generic_captioner.py.
Every backend captions all images of a call in one batched pass. Knows nothing of S3, DynamoDB or
events; never touches the network. This module imports neither torch nor transformers: each backend
is imported only when chosen.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from captioning.contract.constants import DEFAULT_PRECISION
from captioning.contract.model_files import ONNX_MANIFEST
from captioning.contract.runtimes import precision_problem

if TYPE_CHECKING:
    from PIL import Image

FAST_PATH_DECODERS = ("gpt2",)
"""Decoders of a vision-encoder-decoder model that the torch fast path (and the ONNX exporter) handle."""


def backend_for(model_dir: str | os.PathLike[str]) -> str:
    """ "onnx", "torch" (the ViT + GPT-2 fast path) or "generic": which backend loads `model_dir`."""
    path = Path(model_dir)
    if (path / ONNX_MANIFEST).is_file():
        return "onnx"
    config_path = path / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"no captioning model at {path}: config.json is missing (and no {ONNX_MANIFEST} either);"
            " prepare one with `python -m captioning.preparation`"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    decoder_type = (config.get("decoder") or {}).get("model_type")
    if config.get("model_type") == "vision-encoder-decoder" and decoder_type in FAST_PATH_DECODERS:
        return "torch"
    return "generic"


def directory_runtime(model_dir: str | os.PathLike[str]) -> str:
    """The runtime (of RUNTIMES) that captions with `model_dir`: "onnx" for exported graphs, else "torch"."""
    return "onnx" if backend_for(model_dir) == "onnx" else "torch"


def directory_precision(model_dir: str | os.PathLike[str]) -> str | None:
    """The precision exported ONNX graphs were built with (their manifest records it); None for a torch
    directory, whose precision is chosen when it is loaded."""
    if backend_for(model_dir) != "onnx":
        return None
    manifest = json.loads((Path(model_dir) / ONNX_MANIFEST).read_text(encoding="utf-8"))
    return manifest.get("precision")


class Captioner:
    """A loaded captioning model. `caption(images)` returns one caption per image, in order.

    Attributes of the chosen backend (model_id, precision, num_beams, max_length, runtime, and the
    backend's own, e.g. `model` on the torch paths) are readable on the Captioner itself.
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def __getattr__(self, name: str) -> Any:
        if name == "backend":  # not set yet (e.g. while unpickling): avoid recursing
            raise AttributeError(name)
        return getattr(self.backend, name)

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str],
        *,
        num_beams: int | None = None,
        max_length: int | None = None,
        precision: str | None = None,
        num_threads: int | None = None,
        model_id: str | None = None,
        prompt: str | None = None,
    ) -> Captioner:
        """Load a prepared model directory offline.

        num_beams, max_length: None = what the model's own `generate()` uses when called without them
        (its generation config, BLIP's text decoder's, transformers' defaults: docs/models.md).
        precision: one of PRECISIONS; None, the directory's own (directory_precision, else DEFAULT_PRECISION).
        ONNX graphs are quantised (or not) when they are built: loading an
        ONNX directory uses the precision it was built with (a warning when another one is asked); bf16
        is refused there. Torch: "fp32" (the same captions as plain float32 generate), "bf16" (where the
        CPU computes bfloat16 natively, else fp32 with one log line), "int8" (dynamic quantisation at load).
        num_threads: default, the CPUs this process may use.
        model_id: the name written beside captions; default, the directory's name.
        prompt: for prompt-conditioned families (BLIP, GIT, Florence-2, chat models; ONNX or generic path);
        None takes the family's default. Families that caption without one (vision-encoder-decoder)
        refuse it.
        """
        if precision is None:
            precision = directory_precision(model_dir) or DEFAULT_PRECISION
        problem = precision_problem(None, precision)
        if problem is not None:
            raise ValueError(problem)
        backend = backend_for(model_dir)
        if backend == "torch" and prompt:
            raise ValueError(
                f"prompt {prompt!r} is not supported by {Path(model_dir)}: ViT + GPT-2 vision-encoder-decoder"
                " models caption without a prompt; leave prompt unset"
            )
        common = {"num_beams": num_beams, "max_length": max_length, "num_threads": num_threads}
        if backend == "onnx":
            from captioning.function.onnx_captioner import OnnxCaptioner

            return cls(
                OnnxCaptioner.load(model_dir, precision=precision, model_id=model_id, prompt=prompt, **common)
            )
        if backend == "torch":
            from captioning.function.torch_captioner import TorchCaptioner

            return cls(TorchCaptioner.load(model_dir, precision=precision, model_id=model_id, **common))
        try:
            from captioning.function.generic_captioner import GenericCaptioner
        except ImportError as missing:
            raise ValueError(
                f"{Path(model_dir)} holds a model family the ViT + GPT-2 paths do not handle, and the generic"
                f" path is not available ({missing})"
            ) from missing
        return cls(
            GenericCaptioner.load(model_dir, precision=precision, model_id=model_id, prompt=prompt, **common)
        )

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, in order; all images go through one batched pass."""
        if not images:
            return []
        return list(self.backend.caption(list(images)))
