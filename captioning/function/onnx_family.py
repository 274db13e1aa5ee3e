"""What one ONNX captioning family is at run time: the adapter interface, and the registry of families.

A prepared ONNX directory (`python -m captioning.preparation --runtime onnx`) names its family in its
manifest (`onnx_model.json`, key "family"). `captioning/function/onnx_captioner.py` is shared by every
family: it reads the manifest, opens one ONNX Runtime session per graph the manifest lists, resolves the
generation settings, runs the numpy search (captioning/function/beam_search.py) and decodes the text with
`tokenizers`. What differs between families lives in one `FamilyRuntime` subclass per family, in its own
flat module here (captioning/function/onnx_<family>.py, registered in FAMILY_MODULES):

- the processor: `pixel_values(images)` reproduces the family's image processor with Pillow + numpy;
- the prompt: `decoder_prompt(prompt)`, the decoder's first tokens (its start token, plus a prompt's
  tokens for families whose decoder continues a prompt, e.g. BLIP); `encode` gets the prompt too, for
  families whose per-image graph reads it (Florence-2's text encoder);
- the per-image work: `encode(pixel_values, prompt)` runs the per-image graph(s) once per call and returns
  an `Encoded`: the step graph's per-image inputs (images axis, e.g. every layer's cross-attention
  keys/values, stored once per image: the beams of an image attend to them together) and, for prefix
  families (GIT, SmolVLM), the self-attention cache the image prefix already filled;
- the decoder step: `step(encoded, tokens, past, past_length)` runs the step graph on `tokens` (rows, n)
  (n > 1 on the first call of a prompt) with the explicit cache `past` and returns the last position's
  logits and log-probabilities and the new cache;
- the cache layout: `past` is a dict of arrays whose axis PAST_ROW_AXIS is the row (row = image *
  num_beams + beam); `reorder_past` (beams change parents) and `expand_past` (a per-image prefix cache
  spread over the beams) default to that axis.

The build side of a family (export modules, reference captions, verification prompts) is
captioning/preparation/family_export.py's `FamilyExporter`; the manifest is what they share.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    import onnxruntime
    from PIL import Image
    from tokenizers import Tokenizer

PAST_ROW_AXIS = 2
"""The row axis of every cache array: (layers, 2, rows, heads, positions, head_dim) in the shipped ones."""

FAMILY_MODULES: dict[str, str] = {
    "vit-gpt2": "captioning.function.onnx_vit_gpt2",
    "vit-bert": "captioning.function.onnx_bert_decoder",
    "blip": "captioning.function.onnx_bert_decoder",
    "git": "captioning.function.onnx_git",
    "florence2": "captioning.function.onnx_florence2",
    "idefics3": "captioning.function.onnx_idefics3",
}
"""Family name (the manifest's "family") -> the module defining its FamilyRuntime subclass, `RUNTIMES`
in it maps family names to classes. Imported only when a directory of that family is loaded."""

LEGACY_FAMILY = "vit-gpt2"
"""The family of a format-1 manifest (written before families existed: ViT + GPT-2 only)."""


class UnsupportedFamily(ValueError):
    """A manifest names a family this runtime does not have."""


@dataclass
class Encoded:
    """The per-image work of one call, done once: what every decoder step reads."""

    images: int
    """How many images (rows of the step graph = images x beams)."""
    image_state: dict[str, np.ndarray]
    """Step-graph inputs with an images axis, fed unchanged to every step (never reordered by beams)."""
    past: dict[str, np.ndarray] | None = None
    """A cache the per-image work already filled (a prefix family's image tokens), one row per image;
    None: the decoder starts from an empty cache."""
    past_length: int = 0
    """Positions already in `past`."""
    extra: dict[str, object] = field(default_factory=dict)
    """Anything else the family's step needs (e.g. a prefix length)."""


@dataclass(frozen=True)
class StepOutput:
    logits: np.ndarray
    """(rows, vocab) float32, the last position's."""
    log_probs: np.ndarray
    """(rows, vocab) float32 log-softmax of `logits`."""
    past: dict[str, np.ndarray]
    """The cache after this step (its length grows by the step's tokens)."""


class FamilyRuntime(ABC):
    """One family's run-time adapter. Subclasses set the class attributes and implement the methods."""

    family: ClassVar[str]
    """The manifest's "family" value."""
    graph_roles: ClassVar[tuple[str, ...]] = ("encoder", "decoder")
    """Roles of the graphs the manifest lists under "graphs" ({role: file name}); a session per role."""
    takes_prompt: ClassVar[bool] = False
    """Whether a user prompt means something to this family (else one is refused at load)."""
    default_prompt: ClassVar[str | None] = None
    """The prompt used when the user gives none (None: caption from the image alone)."""
    max_length_counts_prompt: ClassVar[bool] = True
    """False: a caller's max_length counts only the new tokens (chat models, as the torch runtime has it)."""

    def __init__(
        self, manifest: Mapping[str, object], sessions: Mapping[str, onnxruntime.InferenceSession]
    ) -> None:
        self.manifest = manifest
        self.sessions = sessions

    # -- the processor and the prompt ---------------------------------------------------------------
    @abstractmethod
    def pixel_values(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The image processor's pixel values for `images`, bit-identical to transformers' PIL backend."""

    def decoder_prompt(self, prompt: str | None, tokenizer: Tokenizer) -> list[int]:
        """The decoder's first tokens, the same for every image (default: its start token alone)."""
        return [int(self.manifest["decoder_start_token_id"])]

    def echoed(self, decoder_prompt: Sequence[int]) -> int:
        """Leading tokens of each generated row that are not the caption (cut before decoding)."""
        return len(decoder_prompt)

    # -- the graphs --------------------------------------------------------------------------------
    @abstractmethod
    def encode(self, pixel_values: np.ndarray, prompt: str | None, tokenizer: Tokenizer) -> Encoded:
        """The per-image graph(s) on `pixel_values` (images, ...): once per call, not once per beam."""

    @abstractmethod
    def step(
        self, encoded: Encoded, tokens: np.ndarray, past: dict[str, np.ndarray] | None, past_length: int
    ) -> StepOutput:
        """One decoder pass: `tokens` (rows, n) int64 after `past_length` cached positions (`past` None:
        an empty cache, or `encoded.past` expanded to the rows by the caller)."""

    # -- the cache layout --------------------------------------------------------------------------
    def reorder_past(self, past: dict[str, np.ndarray], parents: np.ndarray) -> dict[str, np.ndarray]:
        """Row r of the result continues row parents[r] (beam search picked new parents)."""
        return {name: np.take(value, parents, axis=PAST_ROW_AXIS) for name, value in past.items()}

    def expand_past(self, past: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        """A cache with one row per image, repeated for each image's beams (rows = images x beams)."""
        images = next(iter(past.values())).shape[PAST_ROW_AXIS]
        if rows == images:
            return past
        return {name: np.repeat(value, rows // images, axis=PAST_ROW_AXIS) for name, value in past.items()}


def runtime_class(family: str) -> type[FamilyRuntime]:
    """The FamilyRuntime subclass for `family`, importing its module."""
    module_name = FAMILY_MODULES.get(family)
    if module_name is None:
        raise UnsupportedFamily(
            f"ONNX family {family!r} is not known to this runtime"
            f" (known: {', '.join(sorted(FAMILY_MODULES))}); prepare the model again with this version"
            " of captioning.preparation"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as missing:
        if missing.name != module_name:
            raise
        raise UnsupportedFamily(
            f"ONNX family {family!r}: its runtime module {module_name} is missing"
        ) from None
    return module.RUNTIMES[family]
