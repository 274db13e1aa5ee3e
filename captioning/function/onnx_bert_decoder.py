"""The BERT-style decoder families at run time: vision-encoder-decoder with a BERT decoder (vit-bert)
and BLIP (blip), on the graphs of captioning/preparation/graphs_bert_decoder.py:
- encoder: pixel_values (images, 3, H, W) -> cross_kv (layers, 2, images, heads, positions, head_dim);
- decoder: input_ids (rows, new), position (1,), past (layers, 2, rows, heads, past, head_dim), cross_kv
  -> logits and log_probs of the last new token (rows, vocab), present (past + new positions).
BLIP's prompt is what its `generate` makes of the processor's `[CLS] prompt [SEP]`: [CLS] swapped for
the decoder's bos, [SEP] dropped; captions cut it off again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from captioning.function.onnx_family import Encoded, FamilyRuntime, StepOutput
from captioning.function.onnx_vit_gpt2 import empty_past, encode_in_chunks
from captioning.function.pixels import Pixels


class BertDecoderRuntime(FamilyRuntime):
    family = "vit-bert"

    def __init__(self, manifest, sessions) -> None:
        super().__init__(manifest, sessions)
        self.pixels = Pixels.from_settings(manifest["pixels"])

    def pixel_values(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.pixels(images)

    def encode(self, pixel_values: np.ndarray, prompt: str | None, tokenizer: object) -> Encoded:
        cross_kv = encode_in_chunks(self.sessions["encoder"], pixel_values)
        return Encoded(images=len(pixel_values), image_state={"cross_kv": cross_kv})

    def step(self, encoded: Encoded, tokens: np.ndarray, past, past_length: int) -> StepOutput:
        inputs = {
            "input_ids": tokens,
            "position": np.array([past_length], dtype=np.int64),
            "past": empty_past(self.manifest, len(tokens)) if past is None else past["past"],
            "cross_kv": encoded.image_state["cross_kv"],
        }
        logits, log_probs, present = self.sessions["decoder"].run(None, inputs)
        return StepOutput(logits, log_probs, {"past": present})


class BlipRuntime(BertDecoderRuntime):
    family = "blip"
    takes_prompt = True

    def decoder_prompt(self, prompt: str | None, tokenizer: object) -> list[int]:
        start = int(self.manifest["decoder_start_token_id"])
        if not prompt:
            return [start]
        ids = list(tokenizer.encode(prompt).ids)  # [CLS] prompt [SEP], as BlipProcessor tokenizes it
        return [start, *ids[1:-1]]


RUNTIMES = {"vit-bert": BertDecoderRuntime, "blip": BlipRuntime}
