"""Image preparation with Pillow and numpy: resize to a fixed size -> rescale -> normalize.

The same operations in the same order and dtypes as transformers' PIL image-processor backend for
ViT-style processors, so the pixel values are identical to the processor's (tested), without its
numpy -> PIL -> numpy round trip of every full-size image and without transformers at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image


class UnsupportedProcessor(ValueError):
    """An image-processor setting this module does not reproduce."""


@dataclass(frozen=True)
class Pixels:
    height: int
    width: int
    resample: int
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_settings(cls, settings: Mapping[str, object]) -> Pixels:
        """From a preprocessor_config.json-style dict; refuses what is not resize + rescale + normalize."""
        size = settings.get("size")
        problems = [
            f"{name}={settings.get(name)!r}"
            for name in ("do_resize", "do_rescale", "do_normalize")
            if not settings.get(name)
        ]
        problems += [f"{name}=True" for name in ("do_center_crop", "do_pad") if settings.get(name)]
        if not (isinstance(size, Mapping) and size.get("height") and size.get("width")):
            problems.append(f"size={size!r} (a fixed height and width is supported)")
        mean, std = settings.get("image_mean"), settings.get("image_std")
        if not (isinstance(mean, Sequence) and isinstance(std, Sequence) and len(mean) == len(std) == 3):
            problems.append(f"image_mean={mean!r}, image_std={std!r} (three values each are supported)")
        if problems:
            raise UnsupportedProcessor("image processor settings not supported: " + ", ".join(problems))
        resample = settings.get("resample")
        return cls(
            height=int(size["height"]),
            width=int(size["width"]),
            resample=int(resample if resample is not None else Image.Resampling.BILINEAR),
            scale=float(settings.get("rescale_factor", 1 / 255)),
            mean=tuple(float(value) for value in mean),
            std=tuple(float(value) for value in std),
        )

    def to_settings(self) -> dict[str, object]:
        """The dict `from_settings` reads back."""
        return {
            "do_resize": True,
            "do_rescale": True,
            "do_normalize": True,
            "size": {"height": self.height, "width": self.width},
            "resample": self.resample,
            "rescale_factor": self.scale,
            "image_mean": list(self.mean),
            "image_std": list(self.std),
        }

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, 3, height, width) float32 pixel values; images that are not RGB are converted first."""
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        batch = np.empty((len(images), 3, self.height, self.width), dtype=np.float32)
        for index, image in enumerate(images):
            if image.mode != "RGB":
                image = image.convert("RGB")
            resized = np.asarray(image.resize((self.width, self.height), resample=self.resample))
            rescaled = (resized.astype(np.float64) * self.scale).astype(np.float32)
            batch[index] = ((rescaled - mean) / std).transpose(2, 0, 1)
        return batch
