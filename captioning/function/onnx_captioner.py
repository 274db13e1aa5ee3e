"""The ONNX runtime, shared by every family: exported graphs -> captions, with onnxruntime, numpy, Pillow
and tokenizers. No torch, no transformers.

A directory written by `python -m captioning.preparation --runtime onnx` holds:
- onnx_model.json, the manifest: format, family, precision, the graphs ({role: file name}), the decoder's
  start token, the pixel settings, whether decoding cleans up tokenization spaces, and what the family's
  adapter reads (cache shapes, prompt token ids ...);
- the graphs (each with its weights in `<graph>.data` beside it, ONNX external data): a per-image graph
  (e.g. encoder.onnx: pixel values -> every decoder layer's cross-attention keys/values, once per image,
  not per beam) and one decoder step with explicit caches (decoder_step.onnx);
- generation_config.json (what the model's own `generate` uses), tokenizer.json, the configs.
What differs per family (processor, prompt, graphs' inputs, cache layout) is the family's adapter,
captioning/function/onnx_family.py's `FamilyRuntime`; this module runs any of them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tokenizers import Tokenizer

from captioning.contract.model_files import ONNX_MANIFEST, ONNX_TOKENIZER, onnx_graph_files
from captioning.contract.runtimes import precision_problem
from captioning.function.beam_search import generate
from captioning.function.cpus import available_cpus
from captioning.function.generation import generation_from_config, read_generation_config
from captioning.function.onnx_family import LEGACY_FAMILY, Encoded, FamilyRuntime, runtime_class
from captioning.function.onnx_sessions import load_sessions

MANIFEST_FORMAT = 2
READABLE_FORMATS = (1, MANIFEST_FORMAT)
"""Format 1: written before families existed (ViT + GPT-2, the same graphs); still read."""

logger = logging.getLogger(__name__)

# transformers' clean_up_tokenization (tokenization_utils_base.py), applied when the tokenizer asks for it.
_CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"))
_CLEAN_UP += ((" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def clean_up_tokenization(text: str) -> str:
    for old, new in _CLEAN_UP:
        text = text.replace(old, new)
    return text


def read_manifest(model_dir: str | os.PathLike[str]) -> dict:
    """The directory's manifest; a format-1 manifest gets format 2's family and graphs."""
    manifest = json.loads((Path(model_dir) / ONNX_MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") not in READABLE_FORMATS:
        raise ValueError(
            f"{Path(model_dir) / ONNX_MANIFEST}: format {manifest.get('format')!r}, this runtime reads"
            f" {', '.join(map(str, READABLE_FORMATS))}; prepare the model again with this version of"
            " captioning.preparation"
        )
    manifest.setdefault("family", LEGACY_FAMILY)
    manifest["graphs"] = onnx_graph_files(manifest)
    return manifest


class OnnxCaptioner:
    """A family's exported graphs in ONNX Runtime sessions; `caption` runs all images of a call together."""

    runtime = "onnx"

    def __init__(
        self,
        family: FamilyRuntime,
        tokenizer: Tokenizer,
        manifest: dict,
        generation_config: dict,
        *,
        model_id: str,
        num_beams: int | None,
        max_length: int | None,
        prompt: str | None = None,
    ) -> None:
        self.family, self.tokenizer, self.manifest = family, tokenizer, manifest
        self.sessions = family.sessions
        self.precision = manifest["precision"]
        self.model_id = model_id
        self.prompt = _resolved_prompt(family, prompt)
        self.decoder_prompt = family.decoder_prompt(self.prompt, tokenizer)
        if max_length is not None and not family.max_length_counts_prompt:
            max_length += len(self.decoder_prompt)
        self.generation = generation_from_config(
            generation_config,
            num_beams=num_beams,
            max_length=max_length,
            decoder_start_token_id=manifest["decoder_start_token_id"],
            max_position_embeddings=manifest.get("max_position_embeddings"),
        )
        self.num_beams = self.generation.num_beams
        self.max_length = self.generation.max_length_for(len(self.decoder_prompt))
        """The most tokens in a row, the decoder's start/prompt tokens included (as transformers')."""
        self.clean_up_tokenization_spaces = bool(manifest["clean_up_tokenization_spaces"])

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str],
        *,
        num_beams: int | None = None,
        max_length: int | None = None,
        precision: str = "fp32",
        num_threads: int | None = None,
        model_id: str | None = None,
        prompt: str | None = None,
    ) -> OnnxCaptioner:
        """Open the directory's graphs. prompt: None takes the family's default; "" means none."""
        path = Path(model_dir)
        manifest = read_manifest(path)
        built = manifest["precision"]
        problem = precision_problem("onnx", precision)
        if problem is not None:
            raise ValueError(f"{problem}; {path} holds {built} graphs")
        if precision != built:
            logger.warning(
                "precision %s requested but %s holds %s graphs (ONNX precision is fixed when the model is"
                " prepared); using %s",
                precision,
                path,
                built,
                built,
            )
        family_class = runtime_class(manifest["family"])
        if prompt and not family_class.takes_prompt:
            raise ValueError(_prompt_refusal(prompt, manifest["family"], path))
        graphs = {role: manifest["graphs"][role] for role in family_class.graph_roles}
        sessions = load_sessions(path, graphs, num_threads=num_threads or available_cpus())
        return cls(
            family_class(manifest, sessions),
            Tokenizer.from_file(str(path / ONNX_TOKENIZER)),
            manifest,
            read_generation_config(path),
            model_id=model_id or path.resolve().name,
            num_beams=num_beams,
            max_length=max_length,
            prompt=prompt,
        )

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, in order: the per-image work once, then one step pass per token for all."""
        if not images:
            return []
        return self.captions(self.token_ids(images))

    def pixels(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The family's pixel values for `images` (its processor, reproduced)."""
        return self.family.pixel_values(images)

    def encode(self, images: Sequence[Image.Image]) -> Encoded:
        return self.family.encode(self.pixels(images), self.prompt, self.tokenizer)

    def token_ids(self, images: Sequence[Image.Image]) -> list[list[int]]:
        """Each image's generated ids as transformers' `generate` returns them (start/prompt tokens
        first, up to and including eos)."""
        return self.token_ids_from(self.encode(images))

    def token_ids_from(self, encoded: Encoded) -> list[list[int]]:
        family = self.family
        state: dict[str, object] = {"past": None, "length": encoded.past_length}

        def step(tokens: np.ndarray, parents: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
            tokens = np.asarray(tokens, dtype=np.int64)
            if tokens.ndim == 1:
                tokens = tokens[:, None]
            past = state["past"]
            if past is None:  # the first call: the whole decoder prompt in one step (its last column given)
                tokens = np.tile(np.asarray(self.decoder_prompt, dtype=np.int64), (len(tokens), 1))
                if encoded.past is not None:
                    past = family.expand_past(encoded.past, len(tokens))
            elif parents is not None:
                past = family.reorder_past(past, parents)
            output = family.step(encoded, tokens, past, state["length"])
            state["past"], state["length"] = output.past, state["length"] + tokens.shape[1]
            return output.logits, output.log_probs

        prompt = np.tile(np.asarray(self.decoder_prompt, dtype=np.int64), (encoded.images, 1))
        return generate(step, encoded.images, self.generation, prompt=prompt)

    def teacher_forced_log_probs(self, encoded: Encoded, rows: np.ndarray) -> np.ndarray:
        """(rows, length, vocab) log-probabilities of the graphs fed `rows` (rows, length) one token at a
        time, row i continuing image i // (rows / images): what verification compares with torch's."""
        family = self.family
        past = None if encoded.past is None else family.expand_past(encoded.past, len(rows))
        length = encoded.past_length
        outputs = []
        for position in range(rows.shape[1]):
            output = family.step(encoded, rows[:, position : position + 1], past, length)
            past, length = output.past, length + 1
            outputs.append(output.log_probs)
        return np.stack(outputs, axis=1)

    def captions(self, token_ids: list[list[int]]) -> list[str]:
        """The captions of generated rows: the echoed start/prompt tokens cut, the rest decoded."""
        echoed = self.family.echoed(self.decoder_prompt)
        return self.decode([ids[echoed:] for ids in token_ids])

    def decode(self, token_ids: list[list[int]]) -> list[str]:
        """What transformers' batch_decode(skip_special_tokens=True) gives, stripped."""
        texts = self.tokenizer.decode_batch(token_ids, skip_special_tokens=True)
        if self.clean_up_tokenization_spaces:
            texts = [clean_up_tokenization(text) for text in texts]
        return [text.strip() for text in texts]


def _prompt_refusal(prompt: str, family: str, path: Path) -> str:
    return (
        f"prompt {prompt!r} is not supported by {path}: {family} models caption without a prompt;"
        " leave prompt unset"
    )


def _resolved_prompt(family: FamilyRuntime, prompt: str | None) -> str | None:
    if prompt is None:
        return family.default_prompt
    return prompt or None
