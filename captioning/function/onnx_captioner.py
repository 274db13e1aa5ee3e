"""The ONNX runtime: exported ViT + GPT-2 graphs -> captions, with onnxruntime, numpy, Pillow and tokenizers.

No torch, no transformers. The directory (written by `python -m captioning.preparation --runtime onnx`) holds:
- encoder.onnx: pixel_values (images, 3, H, W) -> cross_kv (layers, 2, images, heads, positions, head_dim),
  every decoder layer's cross-attention keys and values, computed once per image (not per beam);
- decoder_step.onnx: input_ids (rows,), position (1,), past (layers, 2, rows, heads, past, head_dim),
  cross_kv -> logits (rows, vocab), log_probs (rows, vocab), present (past + 1 positions);
  rows = images x beams, each image's beams attending together to its cross keys/values;
  (each graph's weights are in `<graph>.data` beside it, ONNX external data);
- onnx_model.json (this module's manifest: shapes, precision, pixel settings, text decoding),
  generation_config.json (generation settings), tokenizer.json, config.json (for reference).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image
from tokenizers import Tokenizer

from captioning.contract.model_files import ONNX_DECODER, ONNX_ENCODER, ONNX_MANIFEST, ONNX_TOKENIZER
from captioning.contract.runtimes import precision_problem
from captioning.function.beam_search import generate
from captioning.function.cpus import available_cpus
from captioning.function.generation import generation_from_config, read_generation_config
from captioning.function.pixels import Pixels

MANIFEST_FORMAT = 1
ENCODER_CHUNK = 2
"""Images per encoder run. GPT-2 size, 10 images: encoder 5.6 s in runs of 2, 5.2 s all at once, 6.3 s one
by one; peak RSS 1.81 GB, 1.95 GB, 1.75 GB (a whole batch holds about three times its result in flight)."""

logger = logging.getLogger(__name__)

# transformers' clean_up_tokenization (tokenization_utils_base.py), applied when the tokenizer asks for it.
_CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"))
_CLEAN_UP += ((" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def clean_up_tokenization(text: str) -> str:
    for old, new in _CLEAN_UP:
        text = text.replace(old, new)
    return text


def read_manifest(model_dir: str | os.PathLike[str]) -> dict:
    manifest = json.loads((Path(model_dir) / ONNX_MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(
            f"{Path(model_dir) / ONNX_MANIFEST}: format {manifest.get('format')!r}, this runtime reads"
            f" {MANIFEST_FORMAT}; prepare the model again with this version of captioning.preparation"
        )
    return manifest


def session_options(num_threads: int) -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only in the function's logs
    # Shapes change every step (the cache grows): planned memory patterns never fit, and the arena kept
    # growing with them (measured: 1.97 -> 2.54 GB peak over two batches of 10; 1.94 GB stable without).
    options.enable_mem_pattern = False
    return options


class OnnxCaptioner:
    """Exported graphs loaded into ONNX Runtime sessions; `caption` runs all images of a call together."""

    runtime = "onnx"

    def __init__(
        self,
        encoder: onnxruntime.InferenceSession,
        decoder: onnxruntime.InferenceSession,
        tokenizer: Tokenizer,
        manifest: dict,
        generation_config: dict,
        *,
        model_id: str,
        num_beams: int | None,
        max_length: int | None,
    ) -> None:
        self.encoder, self.decoder, self.tokenizer = encoder, decoder, tokenizer
        self.manifest = manifest
        self.precision = manifest["precision"]
        self.model_id = model_id
        self.generation = generation_from_config(
            generation_config,
            num_beams=num_beams,
            max_length=max_length,
            decoder_start_token_id=manifest["decoder_start_token_id"],
        )
        self.num_beams, self.max_length = self.generation.num_beams, self.generation.max_length
        self.pixels = Pixels.from_settings(manifest["pixels"])
        self.clean_up_tokenization_spaces = bool(manifest["clean_up_tokenization_spaces"])
        self.empty_past_shape = (manifest["layers"], 2, 0, manifest["heads"], 0, manifest["head_dim"])

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
    ) -> OnnxCaptioner:
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
        options = session_options(num_threads or available_cpus())
        providers = ["CPUExecutionProvider"]
        encoder = onnxruntime.InferenceSession(str(path / ONNX_ENCODER), options, providers=providers)
        decoder = onnxruntime.InferenceSession(str(path / ONNX_DECODER), options, providers=providers)
        return cls(
            encoder,
            decoder,
            Tokenizer.from_file(str(path / ONNX_TOKENIZER)),
            manifest,
            read_generation_config(path),
            model_id=model_id or path.resolve().name,
            num_beams=num_beams,
            max_length=max_length,
        )

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, in order: the encoder in chunks, then one decoder pass per token for all."""
        if not images:
            return []
        return self.decode(self.token_ids(images))

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Cross-attention keys/values (layers, 2, images, heads, positions, head_dim)."""
        return self.encode_pixels(self.pixels(images))

    def encode_pixels(self, pixel_values: np.ndarray) -> np.ndarray:
        """The encoder over ENCODER_CHUNK images at a time, into one array."""
        cross_kv: np.ndarray | None = None
        for start in range(0, len(pixel_values), ENCODER_CHUNK):
            (part,) = self.encoder.run(None, {"pixel_values": pixel_values[start : start + ENCODER_CHUNK]})
            if cross_kv is None:
                shape = (*part.shape[:2], len(pixel_values), *part.shape[3:])
                cross_kv = np.empty(shape, dtype=np.float32)
            cross_kv[:, :, start : start + part.shape[2]] = part
        return cross_kv

    def token_ids(self, images: Sequence[Image.Image]) -> list[list[int]]:
        cross_kv = self.encode(images)
        cache: dict[str, np.ndarray] = {}

        def step(tokens: np.ndarray, parents: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
            past = cache.get("past")
            if past is None:
                shape = list(self.empty_past_shape)
                shape[2] = len(tokens)
                past = np.zeros(shape, dtype=np.float32)
            elif parents is not None:
                past = past[:, :, parents]
            inputs = {
                "input_ids": tokens.astype(np.int64),
                "position": np.array([past.shape[4]], dtype=np.int64),
                "past": past,
                "cross_kv": cross_kv,
            }
            logits, log_probs, cache["past"] = self.decoder.run(None, inputs)
            return logits, log_probs

        return generate(step, len(images), self.generation)

    def decode(self, token_ids: list[list[int]]) -> list[str]:
        """What transformers' batch_decode(skip_special_tokens=True) gives, stripped."""
        texts = self.tokenizer.decode_batch(token_ids, skip_special_tokens=True)
        if self.clean_up_tokenization_spaces:
            texts = [clean_up_tokenization(text) for text in texts]
        return [text.strip() for text in texts]
