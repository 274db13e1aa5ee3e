"""GIT on ONNX Runtime: its image processor, prompt and graphs without torch or transformers.

- `ClipPixels`: CLIPImageProcessor's PIL path (the one transformers runs without torchvision, and so
  the torch runtime here): resize (shortest edge to `size`, the long edge `int(size * long / short)`,
  or to a fixed height x width) with the processor's resample filter, center crop (zero padding when
  the image is smaller than the crop), rescale in float64 then float32, normalise in float32. Images
  that are not RGB are converted with Pillow's `convert("RGB")` first, as the torch captioner does.
  Florence-2's processor is the same class with other settings.
- `GitRuntime`: the prompt as the torch runtime builds it (GIT's [CLS], then the prompt tokenized without
  special tokens; the captions cut it off again), the encoder graph once per image (every layer's keys
  and values of the image tokens, which never attend to the text) and the decoder step over the text
  (captioning/preparation/export_git.py writes both graphs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from captioning.function.onnx_family import Encoded, FamilyRuntime, StepOutput
from captioning.function.onnx_vit_gpt2 import empty_past, encode_in_chunks
from captioning.function.pixels import UnsupportedProcessor


@dataclass(frozen=True)
class ClipPixels:
    """CLIPImageProcessor's resize -> center crop -> rescale -> normalise, in numpy and Pillow."""

    resample: int
    shortest_edge: int | None = None
    """Resize so the short side is this (aspect ratio kept); else to `height` x `width`."""
    height: int | None = None
    width: int | None = None
    crop: tuple[int, int] | None = None
    """(height, width) of the center crop, None for no crop."""
    scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, object]) -> ClipPixels:
        """From the dict `to_settings` writes (the model's onnx manifest); refuses what it cannot do."""
        resize = settings.get("resize")
        if not isinstance(resize, Mapping) or not (
            set(resize) == {"shortest_edge"} or set(resize) == {"height", "width"}
        ):
            raise UnsupportedProcessor(
                f"image resize {resize!r} not supported (a shortest edge, or a fixed height and width)"
            )
        crop = settings.get("crop")
        mean, std = settings.get("mean"), settings.get("std")
        if (mean is None) != (std is None) or (
            mean is not None and len(mean) != 3 or std is not None and len(std) != 3
        ):
            raise UnsupportedProcessor(f"image_mean={mean!r}, image_std={std!r} (three values each, or none)")
        return cls(
            resample=int(settings["resample"]),
            shortest_edge=resize.get("shortest_edge"),
            height=resize.get("height"),
            width=resize.get("width"),
            crop=None if crop is None else (int(crop["height"]), int(crop["width"])),
            scale=None if settings.get("rescale_factor") is None else float(settings["rescale_factor"]),
            mean=None if mean is None else tuple(float(value) for value in mean),
            std=None if std is None else tuple(float(value) for value in std),
        )

    def to_settings(self) -> dict[str, object]:
        if self.shortest_edge is not None:
            resize: dict[str, int] = {"shortest_edge": self.shortest_edge}
        else:
            resize = {"height": self.height, "width": self.width}
        return {
            "resize": resize,
            "resample": self.resample,
            "crop": None if self.crop is None else {"height": self.crop[0], "width": self.crop[1]},
            "rescale_factor": self.scale,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
        }

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after the resize, with transformers' rounding."""
        if self.shortest_edge is None:
            return self.width, self.height
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        return (new_short, new_long) if width <= height else (new_long, new_short)

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(images, 3, height, width) float32 pixel values."""
        return np.stack([self.one(image) for image in images])

    def one(self, image: Image.Image) -> np.ndarray:
        if image.mode != "RGB":
            image = image.convert("RGB")
        pixels = np.asarray(image.resize(self.resized_size(*image.size), resample=self.resample))
        if self.crop is not None:
            pixels = _center_crop(pixels, *self.crop)
        pixels = pixels.transpose(2, 0, 1)
        if self.scale is not None:
            pixels = (pixels.astype(np.float64) * self.scale).astype(np.float32)
        else:
            pixels = pixels.astype(np.float32)
        if self.mean is not None:
            mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
            std = np.asarray(self.std, dtype=np.float32)[:, None, None]
            pixels = (pixels - mean) / std
        return pixels


def _center_crop(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """transformers' center_crop of an (H, W, C) array: the middle, zero-padded where it is too small."""
    original_height, original_width = pixels.shape[:2]
    top, left = (original_height - height) // 2, (original_width - width) // 2
    if top >= 0 and left >= 0:
        return pixels[top : top + height, left : left + width]
    padded_height, padded_width = max(height, original_height), max(width, original_width)
    padded = np.zeros((padded_height, padded_width, pixels.shape[2]), dtype=pixels.dtype)
    top_pad = math.ceil((padded_height - original_height) / 2)
    left_pad = math.ceil((padded_width - original_width) / 2)
    padded[top_pad : top_pad + original_height, left_pad : left_pad + original_width] = pixels
    top, left = top + top_pad, left + left_pad
    return padded[
        max(0, top) : min(padded_height, top + height), max(0, left) : min(padded_width, left + width)
    ]


class GitRuntime(FamilyRuntime):
    family = "git"
    takes_prompt = True

    def __init__(self, manifest, sessions) -> None:
        super().__init__(manifest, sessions)
        self.pixels = ClipPixels.from_settings(manifest["pixels"])

    def pixel_values(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.pixels(images)

    def decoder_prompt(self, prompt: str | None, tokenizer: object) -> list[int]:
        start = [int(self.manifest["decoder_start_token_id"])]
        if not prompt:
            return start
        return start + list(tokenizer.encode(prompt, add_special_tokens=False).ids)

    def encode(self, pixel_values: np.ndarray, prompt: str | None, tokenizer: object) -> Encoded:
        image_kv = encode_in_chunks(self.sessions["encoder"], pixel_values)
        return Encoded(images=len(pixel_values), image_state={"image_kv": image_kv})

    def step(self, encoded: Encoded, tokens: np.ndarray, past, past_length: int) -> StepOutput:
        inputs = {
            "input_ids": tokens,
            "position": np.array([past_length], dtype=np.int64),
            "past": empty_past(self.manifest, len(tokens)) if past is None else past["past"],
            "image_kv": encoded.image_state["image_kv"],
        }
        logits, log_probs, present = self.sessions["decoder"].run(None, inputs)
        return StepOutput(logits, log_probs, {"past": present})


RUNTIMES = {"git": GitRuntime}
