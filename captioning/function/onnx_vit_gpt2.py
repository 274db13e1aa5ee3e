"""The ViT + GPT-2 vision-encoder-decoder family at run time (nlpconnect/vit-gpt2-image-captioning).

Graphs (captioning/preparation/export_vit_gpt2.py):
- encoder: pixel_values (images, 3, H, W) -> cross_kv (layers, 2, images, heads, positions, head_dim);
- decoder: input_ids (rows,), position (1,), past (layers, 2, rows, heads, past, head_dim), cross_kv
  -> logits (rows, vocab), log_probs (rows, vocab), present (past + 1 positions).
No prompt: the decoder starts from its start token.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from captioning.function.onnx_family import Encoded, FamilyRuntime, StepOutput
from captioning.function.pixels import Pixels

ENCODER_CHUNK = 2
"""Images per encoder run. GPT-2 size, 10 images: encoder 5.6 s in runs of 2, 5.2 s all at once, 6.3 s one
by one; peak RSS 1.81 GB, 1.95 GB, 1.75 GB (a whole batch holds about three times its result in flight)."""


def encode_in_chunks(session: object, pixel_values: np.ndarray, *, image_axis: int = 2) -> np.ndarray:
    """A per-image graph with one output over ENCODER_CHUNK images at a time, into one array."""
    result: np.ndarray | None = None
    for start in range(0, len(pixel_values), ENCODER_CHUNK):
        (part,) = session.run(None, {"pixel_values": pixel_values[start : start + ENCODER_CHUNK]})
        if result is None:
            shape = list(part.shape)
            shape[image_axis] = len(pixel_values)
            result = np.empty(shape, dtype=part.dtype)
        index = [slice(None)] * part.ndim
        index[image_axis] = slice(start, start + part.shape[image_axis])
        result[tuple(index)] = part
    return result


def empty_past(manifest: dict, rows: int) -> np.ndarray:
    return np.zeros((manifest["layers"], 2, rows, manifest["heads"], 0, manifest["head_dim"]), np.float32)


class VitGpt2Runtime(FamilyRuntime):
    family = "vit-gpt2"

    def __init__(self, manifest, sessions) -> None:
        super().__init__(manifest, sessions)
        self.pixels = Pixels.from_settings(manifest["pixels"])

    def pixel_values(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.pixels(images)

    def encode(self, pixel_values: np.ndarray, prompt: str | None, tokenizer: object) -> Encoded:
        cross_kv = encode_in_chunks(self.sessions["encoder"], pixel_values)
        return Encoded(images=len(pixel_values), image_state={"cross_kv": cross_kv})

    def step(self, encoded: Encoded, tokens: np.ndarray, past, past_length: int) -> StepOutput:
        cache = empty_past(self.manifest, len(tokens)) if past is None else past["past"]
        decoder = self.sessions["decoder"]
        for column in range(tokens.shape[1]):  # the graph takes one token per row
            inputs = {
                "input_ids": tokens[:, column],
                "position": np.array([past_length + column], dtype=np.int64),
                "past": cache,
                "cross_kv": encoded.image_state["cross_kv"],
            }
            logits, log_probs, cache = decoder.run(None, inputs)
        return StepOutput(logits, log_probs, {"past": cache})


RUNTIMES = {"vit-gpt2": VitGpt2Runtime}
