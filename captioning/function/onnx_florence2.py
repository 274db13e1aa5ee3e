"""Florence-2 on ONNX Runtime: its processor, task prompts and graphs without torch or transformers.

- pixels: Florence-2's image processor is CLIPImageProcessor resizing to a fixed size without a crop
  (`captioning.function.onnx_git.ClipPixels`, from the settings the exporter wrote);
- the prompt: a task token becomes its text exactly as Florence2Processor does it (`<CAPTION>` -> "What
  does the image describe?"; tasks with an input format it in; anything else is the text itself), laid
  out as `<s> text </s>` after the image tokens and tokenized without special tokens; the image tokens
  are the vision tower's output, which the encoder graph puts in front itself;
- the graphs (captioning/preparation/export_florence2.py): the encoder once per image (vision tower,
  projection, BART's text encoder, every decoder layer's cross-attention keys/values), then the decoder
  step from the decoder start token; captions are batch_decode(skip_special_tokens=True) + strip, as the
  torch runtime returns them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from captioning.function.onnx_family import Encoded, FamilyRuntime, StepOutput
from captioning.function.onnx_git import ClipPixels
from captioning.function.onnx_vit_gpt2 import ENCODER_CHUNK, empty_past

DEFAULT_TASK = "<CAPTION>"


class InvalidTaskPrompt(ValueError):
    """A prompt Florence2Processor refuses (a task token that takes no input, with more text)."""


def task_text(prompt: str, manifest: Mapping[str, object]) -> str:
    """Florence2Processor._construct_prompts for one prompt."""
    for token, text in manifest["task_prompts_without_inputs"].items():
        if token in prompt:
            if prompt != token:
                raise InvalidTaskPrompt(
                    f"prompt {prompt!r}: the task token {token} must be the whole prompt"
                    f" (tasks: {', '.join(manifest['task_prompts_without_inputs'])})"
                )
            prompt = text
            break
    for token, text in manifest["task_prompts_with_input"].items():
        if token in prompt:
            prompt = text.format(input=prompt.replace(token, "").strip())
            break
    return prompt


class Florence2Runtime(FamilyRuntime):
    family = "florence2"
    takes_prompt = True
    default_prompt = DEFAULT_TASK

    def __init__(self, manifest, sessions) -> None:
        super().__init__(manifest, sessions)
        self.pixels = ClipPixels.from_settings(manifest["pixels"])

    def pixel_values(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.pixels(images)

    def decoder_prompt(self, prompt: str | None, tokenizer: object) -> list[int]:
        task_text(prompt or "", self.manifest)  # a prompt the processor would refuse fails at load
        return super().decoder_prompt(prompt, tokenizer)

    def prompt_ids(self, prompt: str | None, tokenizer: object) -> list[int]:
        """The text encoder's tokens after the image tokens, as the processor makes them."""
        text = task_text(prompt or "", self.manifest)
        laid_out = f"{self.manifest['bos_token']}{text}{self.manifest['eos_token']}"
        return list(tokenizer.encode(laid_out, add_special_tokens=False).ids)

    def encode(self, pixel_values: np.ndarray, prompt: str | None, tokenizer: object) -> Encoded:
        ids = np.asarray(self.prompt_ids(prompt, tokenizer), dtype=np.int64)
        parts = []
        for start in range(0, len(pixel_values), ENCODER_CHUNK):
            chunk = pixel_values[start : start + ENCODER_CHUNK]
            inputs = {"pixel_values": chunk, "input_ids": np.tile(ids, (len(chunk), 1))}
            parts.append(self.sessions["encoder"].run(None, inputs)[0])
        return Encoded(images=len(pixel_values), image_state={"cross_kv": np.concatenate(parts, axis=2)})

    def step(self, encoded: Encoded, tokens: np.ndarray, past, past_length: int) -> StepOutput:
        inputs = {
            "input_ids": tokens,
            "position": np.array([past_length], dtype=np.int64),
            "past": empty_past(self.manifest, len(tokens)) if past is None else past["past"],
            "cross_kv": encoded.image_state["cross_kv"],
        }
        logits, log_probs, present = self.sessions["decoder"].run(None, inputs)
        return StepOutput(logits, log_probs, {"past": present})


RUNTIMES = {"florence2": Florence2Runtime}
