"""Idefics3 / SmolVLM on ONNX Runtime: its image processor, chat prompt and graphs without torch or
transformers.

- `Idefics3Pixels`: Idefics3ImageProcessorPil (the processor transformers runs without torchvision, and so
  the torch runtime here): the longest edge resized to `size` (its even-height/width and 4096 rules), then,
  with image splitting, to multiples of the tile size and cut into tiles row by row, followed by the whole
  image resized to one tile (the global image); without splitting, the image resized to one tile. Every
  resize is Pillow's on uint8 with the processor's filter (LANCZOS by default); then rescale in float64 ->
  float32 and normalise in float32. The images of a call are padded with all-zero tiles to the same count,
  as the processor pads them; `pixel_attention_mask` is its mask (1 on every real tile's pixels).
- `Idefics3Prompt`: the text Idefics3Processor tokenizes: the chat template's user turn (read from the
  template at build time: the text before the image, then the prompt, then what closes the turn and opens
  the assistant's) with `<image>` expanded as `Idefics3Processor.replace_image_token` expands it
  (`<fake_token_around_image><row_r_col_c>` + image_seq_len `<image>` per tile, a newline after each row of
  tiles, then `\\n<fake_token_around_image><global-img>` + image_seq_len `<image><fake_token_around_image>`),
  tokenized with `tokenizers` from the model's tokenizer.json.
- `Idefics3Runtime`: per image, the vision graph (vision tower + pixel shuffle connector) on its real tiles
  and the text graph over the prompt up to the image block's last token, the image features put where the
  `<image>` tokens are (Idefics3Model.inputs_merger): every layer's key/value cache of that prefix. The
  rest of the prompt (the user's text and "Assistant:", the same for every image) is the decoder prompt,
  the first step's input. Prefixes of different lengths (images with different tile counts) are
  left-padded and masked, positions counted from each row's first real token, as generate does with the
  processor's left-padded batch. captioning/preparation/export_idefics3.py writes both graphs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from captioning.function.onnx_family import Encoded, FamilyRuntime, StepOutput

MAX_IMAGE_SIZE = 4096
"""Idefics3's absolute limit on a resized side (image_processing_pil_idefics3.MAX_IMAGE_SIZE)."""
VISION_CHUNK = 8
"""Tiles per run of the vision graph (bounds its activation memory on many-tile batches)."""


class TiledPixels(np.ndarray):
    """(images, tiles, 3, tile, tile) float32 pixel values that know each image's tile grid."""

    grids: list[tuple[int, int]]
    """(rows, cols) of tiles per image; (0, 0): the image is one tile and has no global image."""

    def __array_finalize__(self, obj: object) -> None:
        self.grids = getattr(obj, "grids", [])

    @property
    def tile_counts(self) -> list[int]:
        return [rows * cols + 1 if rows else 1 for rows, cols in self.grids]


def _rescale_to_max_len(height: int, width: int, max_len: int) -> tuple[int, int]:
    aspect_ratio = width / height
    if width >= height:
        width = max_len
        height = int(width / aspect_ratio)
        if height % 2 != 0:
            height += 1
    else:
        height = max_len
        width = int(height * aspect_ratio)
        if width % 2 != 0:
            width += 1
    return max(height, 1), max(width, 1)


def _scale_below_upper_bound(height: int, width: int, max_len: int) -> tuple[int, int]:
    aspect_ratio = width / height
    if width >= height and width > max_len:
        width = max_len
        height = int(width / aspect_ratio)
    elif height > width and height > max_len:
        height = max_len
        width = int(height * aspect_ratio)
    return max(height, 1), max(width, 1)


def _multiples_of(height: int, width: int, tile: int) -> tuple[int, int]:
    """resize_for_vision_encoder's size: both sides rounded up to multiples of the tile."""
    aspect_ratio = width / height
    if width >= height:
        width = math.ceil(width / tile) * tile
        height = math.ceil(int(width / aspect_ratio) / tile) * tile
    else:
        height = math.ceil(height / tile) * tile
        width = math.ceil(int(height * aspect_ratio) / tile) * tile
    return height, width


@dataclass(frozen=True)
class Idefics3Pixels:
    """Idefics3ImageProcessorPil's resize -> split -> rescale -> normalise -> pad, in numpy and Pillow."""

    resample: int
    longest_edge: int
    """size["longest_edge"]: the first resize."""
    tile: int
    """max_image_size["longest_edge"]: the side of every tile (the vision tower's input)."""
    split: bool
    scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, object]) -> Idefics3Pixels:
        mean, std = settings.get("mean"), settings.get("std")
        return cls(
            resample=int(settings["resample"]),
            longest_edge=int(settings["longest_edge"]),
            tile=int(settings["tile"]),
            split=bool(settings["split"]),
            scale=None if settings.get("rescale_factor") is None else float(settings["rescale_factor"]),
            mean=None if mean is None else tuple(float(value) for value in mean),
            std=None if std is None else tuple(float(value) for value in std),
        )

    def to_settings(self) -> dict[str, object]:
        return {
            "resample": self.resample,
            "longest_edge": self.longest_edge,
            "tile": self.tile,
            "split": self.split,
            "rescale_factor": self.scale,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
        }

    def _resize(self, image: Image.Image, height: int, width: int) -> Image.Image:
        return image.resize((width, height), resample=self.resample)

    def frames(self, image: Image.Image) -> tuple[list[Image.Image], tuple[int, int]]:
        """The tiles of one RGB image (row by row, then the global image) and their (rows, cols)."""
        height, width = _rescale_to_max_len(image.height, image.width, self.longest_edge)
        height, width = _scale_below_upper_bound(height, width, MAX_IMAGE_SIZE)
        image = self._resize(image, height, width)
        tile = self.tile
        if not self.split:
            return [self._resize(image, tile, tile)], (0, 0)
        image = self._resize(image, *_multiples_of(image.height, image.width, tile))
        if image.height <= tile and image.width <= tile:
            return [image], (0, 0)
        rows, cols = (image.height - tile) // tile + 1, (image.width - tile) // tile + 1
        tiles = [
            image.crop((col * tile, row * tile, (col + 1) * tile, (row + 1) * tile))
            for row in range(rows)
            for col in range(cols)
        ]
        return [*tiles, self._resize(image, tile, tile)], (rows, cols)

    def normalised(self, frame: Image.Image) -> np.ndarray:
        pixels = np.asarray(frame).transpose(2, 0, 1)
        if self.scale is not None:
            pixels = (pixels.astype(np.float64) * self.scale).astype(np.float32)
        else:
            pixels = pixels.astype(np.float32)
        if self.mean is not None:
            mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
            std = np.asarray(self.std, dtype=np.float32)[:, None, None]
            pixels = (pixels - mean) / std
        return pixels

    def __call__(self, images: Sequence[Image.Image]) -> TiledPixels:
        """(images, most tiles, 3, tile, tile) float32, images with fewer tiles padded with zero tiles."""
        per_image, grids = [], []
        for image in images:
            if image.mode != "RGB":
                image = image.convert("RGB")
            frames, grid = self.frames(image)
            per_image.append([self.normalised(frame) for frame in frames])
            grids.append(grid)
        most = max(len(frames) for frames in per_image)
        pixels = np.zeros((len(images), most, 3, self.tile, self.tile), dtype=np.float32).view(TiledPixels)
        for index, frames in enumerate(per_image):
            pixels[index, : len(frames)] = np.stack(frames)
        pixels.grids = grids
        return pixels

    @staticmethod
    def pixel_attention_mask(pixels: TiledPixels) -> np.ndarray:
        """The processor's pixel_attention_mask (images, tiles, tile, tile) int64: 1 on real tiles."""
        mask = np.zeros((*pixels.shape[:2], *pixels.shape[3:]), dtype=np.int64)
        for index, count in enumerate(pixels.tile_counts):
            mask[index, :count] = 1
        return mask


@dataclass(frozen=True)
class Idefics3Prompt:
    """The chat text Idefics3Processor tokenizes, with the image expanded into its tiles' tokens."""

    before_image: str
    """The chat template's text before `<image>` in the user's turn."""
    after_prompt: str
    """The template's text after the user's prompt (the end of the turn, the assistant's start)."""
    image_seq_len: int
    fake_image_token: str
    image_token: str
    global_image_tag: str

    @classmethod
    def from_settings(cls, settings: Mapping[str, object]) -> Idefics3Prompt:
        return cls(
            before_image=str(settings["before_image"]),
            after_prompt=str(settings["after_prompt"]),
            image_seq_len=int(settings["image_seq_len"]),
            fake_image_token=str(settings["fake_image_token"]),
            image_token=str(settings["image_token"]),
            global_image_tag=str(settings["global_image_tag"]),
        )

    def to_settings(self) -> dict[str, object]:
        return {
            "before_image": self.before_image,
            "after_prompt": self.after_prompt,
            "image_seq_len": self.image_seq_len,
            "fake_image_token": self.fake_image_token,
            "image_token": self.image_token,
            "global_image_tag": self.global_image_tag,
        }

    def image_text(self, grid: tuple[int, int]) -> str:
        """Idefics3Processor.replace_image_token for an image of (rows, cols) tiles."""
        fake, image_tokens = self.fake_image_token, self.image_token * self.image_seq_len
        global_image = f"{fake}{self.global_image_tag}{image_tokens}{fake}"
        rows, cols = grid
        if rows == 0 and cols == 0:
            return global_image
        text = ""
        for row in range(rows):
            for col in range(cols):
                text += f"{fake}<row_{row + 1}_col_{col + 1}>{image_tokens}"
            text += "\n"
        return f"{text}\n{global_image}"

    def text(self, prompt: str, grid: tuple[int, int]) -> str:
        return f"{self.before_image}{self.image_text(grid)}{prompt}{self.after_prompt}"


class Idefics3Runtime(FamilyRuntime):
    family = "idefics3"
    graph_roles = ("encoder", "decoder")
    takes_prompt = True
    max_length_counts_prompt = False

    def __init__(self, manifest, sessions) -> None:
        super().__init__(manifest, sessions)
        self.pixels = Idefics3Pixels.from_settings(manifest["pixels"])
        self.chat = Idefics3Prompt.from_settings(manifest["chat"])
        self.default_prompt = str(manifest["default_prompt"])
        self.fake_image_token_id = int(manifest["fake_image_token_id"])
        self.image_token_id = int(manifest["image_token_id"])

    def pixel_values(self, images: Sequence[Image.Image]) -> TiledPixels:
        return self.pixels(images)

    def prompt_ids(self, prompt: str, grid: tuple[int, int], tokenizer: object) -> list[int]:
        """The processor's input_ids for one image of `grid` tiles (before any batch padding)."""
        return list(tokenizer.encode(self.chat.text(prompt, grid), add_special_tokens=True).ids)

    def split(self, ids: list[int]) -> tuple[list[int], list[int]]:
        """(prefix up to the image block's last token, the rest: the decoder prompt)."""
        last = len(ids) - 1 - ids[::-1].index(self.fake_image_token_id)
        return ids[: last + 1], ids[last + 1 :]

    def decoder_prompt(self, prompt: str | None, tokenizer: object) -> list[int]:
        if not prompt or not prompt.strip():
            raise ValueError("prompt='' is not allowed: a chat-style model needs an instruction; unset it")
        _, rest = self.split(self.prompt_ids(prompt, (0, 0), tokenizer))
        if not rest:
            raise ValueError(
                "the chat template puts nothing after the image: no decoder prompt to start from"
            )
        return rest

    def echoed(self, decoder_prompt: Sequence[int]) -> int:
        return len(decoder_prompt)

    def image_features(self, tiles: np.ndarray) -> np.ndarray:
        """(tiles x image_seq_len, hidden) features of one image's real tiles, in the prompt's order."""
        session = self.sessions["encoder"]
        parts = [
            session.run(None, {"pixel_values": tiles[start : start + VISION_CHUNK]})[0]
            for start in range(0, len(tiles), VISION_CHUNK)
        ]
        features = np.concatenate(parts)
        return features.reshape(-1, features.shape[-1])

    def encode(self, pixel_values: TiledPixels, prompt: str | None, tokenizer: object) -> Encoded:
        caches, lengths = [], []
        for index, (grid, count) in enumerate(zip(pixel_values.grids, pixel_values.tile_counts, strict=True)):
            prefix, _ = self.split(self.prompt_ids(prompt, grid, tokenizer))
            features = self.image_features(np.asarray(pixel_values[index, :count]))
            length = len(prefix)
            _, _, present = self.sessions["decoder"].run(
                None,
                {
                    "input_ids": np.asarray([prefix], dtype=np.int64),
                    "image_features": features,
                    "position_ids": np.arange(length, dtype=np.int64)[None],
                    "attention_mask": np.ones((1, length), dtype=np.int64),
                    "past": self.empty_past(1),
                },
            )
            caches.append(present)
            lengths.append(length)
        longest = max(lengths)
        layers, _, _, heads, _, head_dim = caches[0].shape
        past = np.zeros((layers, 2, len(caches), heads, longest, head_dim), dtype=np.float32)
        for index, (cache, length) in enumerate(zip(caches, lengths, strict=True)):
            past[:, :, index, :, longest - length :] = cache[:, :, 0]
        padding = np.asarray([longest - length for length in lengths], dtype=np.int64)
        hidden = int(self.manifest["hidden_size"])
        return Encoded(
            images=len(caches),
            image_state={},
            past={"past": past},
            past_length=longest,
            extra={"padding": padding, "no_features": np.zeros((0, hidden), dtype=np.float32)},
        )

    def empty_past(self, rows: int) -> np.ndarray:
        manifest = self.manifest
        shape = (manifest["layers"], 2, rows, manifest["kv_heads"], 0, manifest["head_dim"])
        return np.zeros(shape, dtype=np.float32)

    def step(self, encoded: Encoded, tokens: np.ndarray, past, past_length: int) -> StepOutput:
        rows, new = tokens.shape
        padding = np.repeat(encoded.extra["padding"], rows // encoded.images)
        if past is None:
            past = self.expand_past(encoded.past, rows)
        keys = np.arange(past_length + new)[None, :]
        inputs = {
            "input_ids": tokens,
            "image_features": encoded.extra["no_features"],
            "position_ids": (past_length - padding)[:, None] + np.arange(new)[None, :],
            "attention_mask": (keys >= padding[:, None]).astype(np.int64),
            "past": past["past"],
        }
        logits, log_probs, present = self.sessions["decoder"].run(None, inputs)
        return StepOutput(logits, log_probs, {"past": present})


RUNTIMES = {"idefics3": Idefics3Runtime}
