"""What one ONNX captioning family is at build time: the exporter interface, and the registry of families.

`python -m captioning.preparation --runtime onnx` (captioning/preparation/export.py) is shared by every
family: it picks the family from the model's config (`family_for_config`), refuses what the family's
exporter names as unsupported before loading any weights, loads the model, writes the graphs the family
exports, stores their weights beside them, writes the manifest, tokenizer and configs, verifies the float32
graphs against transformers' `generate` (captioning/preparation/verify.py) and quantises (quantise.py).
What differs between families lives in one `FamilyExporter` subclass per family, in its own module here
(captioning/preparation/export_<family>.py, registered in EXPORTER_MODULES), next to its run-time half
(captioning/function/onnx_family.py's `FamilyRuntime`), with which it shares the manifest:

- `problems(config)`: what in the transformers config the graphs cannot reproduce (empty: exportable);
- `load(source)`: the float32 torch model, processor, tokenizer and generation config (`Loaded`);
- `manifest(loaded)`: the family's manifest entries (pixel settings, cache shapes, token ids ...);
- `export_graphs(loaded, directory, opset)`: the graphs, {role: file name}, written from the model's own
  submodules with caches as explicit tensors (TorchScript exporter, dynamo=False);
- `reference(loaded, images, prompt, num_beams, max_length)`: transformers' own captions (`generate`,
  then batch_decode(skip_special_tokens=True) + strip), which the graphs must equal;
- `teacher_forced_log_probs(loaded, images, prompt, rows)`: torch's log-probabilities along given token
  rows, to tell float noise between near-tied hypotheses from a wrong graph;
- `verify_prompts`: the prompts the build checks (None = no prompt), `int8_roles`: the graphs quantised
  for --precision int8 (a per-module choice where int8 costs one module its accuracy).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from captioning.contract.model_files import ONNX_MODEL_TYPES
from captioning.preparation.errors import refuse_onnx

EXPORTER_MODULES: dict[str, str] = {
    "vit-gpt2": "captioning.preparation.export_vit_gpt2",
    "vit-bert": "captioning.preparation.export_bert_decoder",
    "blip": "captioning.preparation.export_bert_decoder",
    "git": "captioning.preparation.export_git",
    "florence2": "captioning.preparation.export_florence2",
    "idefics3": "captioning.preparation.export_idefics3",
}
"""Family name -> the module whose `EXPORTERS` maps it to its FamilyExporter subclass. A model_type is
exported only once it is also in captioning/contract/model_files.py's ONNX_MODEL_TYPES (the list the
component's sizing check reads)."""

VISION_ENCODER_DECODER_FAMILIES = {"gpt2": "vit-gpt2", "bert": "vit-bert"}
"""A vision-encoder-decoder model's family by its decoder's model_type."""


@dataclass
class Loaded:
    """A model as the exporter works on it (float32, eval mode)."""

    model: object
    processor: object
    """The image processor (PIL backend) or the whole processor, as the family's exporter needs."""
    tokenizer: object
    generation_config: dict
    """The generation config the model's own `generate` uses when called with no arguments (BLIP: its
    text decoder's), as a generation_config.json dict, written beside the graphs."""
    extra: dict[str, object] = field(default_factory=dict)


class FamilyExporter(ABC):
    """One family's build-time adapter. Subclasses set the class attributes and implement the methods."""

    family: ClassVar[str]
    verify_prompts: ClassVar[tuple[str | None, ...]] = (None,)
    """Prompts the build checks the graphs with (None: no prompt); prompt families add one or more."""
    int8_roles: ClassVar[tuple[str, ...]] = ("encoder", "decoder")
    """Graph roles quantised to int8 for --precision int8; the others stay float32."""
    shared_vocabulary: ClassVar[str | None] = None
    """Name of a (hidden x vocab) initializer the step graph both gathers token embeddings from and
    multiplies by for the logits (a tied embedding stored once): quantise.py rewires the lookup to its
    int8 copy. None: no such sharing."""

    @abstractmethod
    def problems(self, config: object) -> list[str]:
        """What in `config` (a transformers PretrainedConfig) cannot be reproduced; empty: exportable."""

    @abstractmethod
    def load(self, source: Path) -> Loaded:
        """The model, processor, tokenizer and generation config from `source`, offline, float32."""

    @abstractmethod
    def manifest(self, loaded: Loaded) -> dict:
        """The family's manifest entries (the shared code adds format, family, precision, graphs,
        clean_up_tokenization_spaces); raise refuse_onnx(...) for what the runtime cannot reproduce."""

    @abstractmethod
    def export_graphs(self, loaded: Loaded, directory: Path, *, opset: int) -> dict[str, str]:
        """Write the graphs into `directory`; return {role: file name} for the family's graph roles."""

    @abstractmethod
    def reference(
        self,
        loaded: Loaded,
        images: Sequence[Image.Image],
        *,
        prompt: str | None,
        num_beams: int,
        max_length: int,
    ) -> tuple[list[list[int]], list[str]]:
        """transformers' own output for `images`: each row's token ids as `generate` returns them (prompt
        tokens first, padding after eos dropped) and the captions the torch runtime gives."""

    @abstractmethod
    def reference_pixel_values(self, loaded: Loaded, images: Sequence[Image.Image]) -> np.ndarray:
        """The transformers processor's pixel values (what `FamilyRuntime.pixel_values` must equal)."""

    @abstractmethod
    def teacher_forced_log_probs(
        self, loaded: Loaded, images: Sequence[Image.Image], *, prompt: str | None, rows: list[list[int]]
    ) -> np.ndarray:
        """(rows, length, vocab) torch log-probabilities of the next token after each position of each
        row (rows padded to one length with their last token), row i continuing image i // beams."""


def family_for_config(config: object) -> str:
    """The ONNX family of a transformers config, or refuse naming the family and what is supported."""
    model_type = getattr(config, "model_type", None)
    if model_type == "vision-encoder-decoder" and model_type in ONNX_MODEL_TYPES:
        decoder_type = config.decoder.model_type
        family = VISION_ENCODER_DECODER_FAMILIES.get(decoder_type)
        if family is None:
            raise refuse_onnx(
                f"vision-encoder-decoder with decoder {decoder_type!r} (supported decoders:"
                f" {', '.join(VISION_ENCODER_DECODER_FAMILIES)})"
            )
        return family
    if model_type in ONNX_MODEL_TYPES and model_type in EXPORTER_MODULES:
        return model_type
    raise refuse_onnx(f"model family {model_type!r} (supported: {', '.join(ONNX_MODEL_TYPES)})")


def exporter_for(family: str) -> FamilyExporter:
    """An instance of the FamilyExporter subclass for `family`, importing its module."""
    module_name = EXPORTER_MODULES[family]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as missing:
        if missing.name != module_name:
            raise
        raise refuse_onnx(
            f"model family {family!r} (its exporter, {module_name}, is not written yet)"
        ) from None
    return module.EXPORTERS[family]()
