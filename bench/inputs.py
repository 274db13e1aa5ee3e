"""Deterministic benchmark inputs: one 12-megapixel JPEG and ten 800×600 JPEGs.

Photos are made of smooth gradients, shapes and noise so the JPEG encoder does real work
(a flat image would decode unrealistically fast).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

LARGE_SIZE = (4000, 3000)
SMALL_SIZE = (800, 600)
BATCH_SIZE = 10
JPEG_QUALITY = 90
INPUT_SEED = 7


@dataclass(frozen=True)
class BenchInputs:
    large_jpeg: Path
    batch_jpegs: tuple[Path, ...]


def synthetic_photo_jpeg(size: tuple[int, int], seed: int) -> bytes:
    import numpy as np
    from PIL import Image, ImageDraw

    width, height = size
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0), rng.uniform(0, 6.28)
        wave = np.sin(xs / width * fx * 6.28 + phase) * np.cos(ys / height * fy * 6.28)
        channels.append(127 + 100 * wave)
    pixels = np.stack(channels, axis=-1) + rng.normal(0, 12, (height, width, 3)).astype(np.float32)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width - 10)), int(rng.integers(0, height - 10))
        x1 = min(width - 1, x0 + int(rng.integers(width // 20, width // 3)))
        y1 = min(height - 1, y0 + int(rng.integers(height // 20, height // 3)))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=color)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=color)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def ensure_inputs(cache_dir: Path) -> BenchInputs:
    """Write the inputs once (same bytes every time); later runs reuse them."""
    inputs_dir = cache_dir / "inputs"
    inputs_dir.mkdir(parents=True, exist_ok=True)
    large = inputs_dir / "large-12mp.jpg"
    batch = tuple(inputs_dir / f"batch-{index:02d}-800x600.jpg" for index in range(BATCH_SIZE))
    if not large.exists():
        large.write_bytes(synthetic_photo_jpeg(LARGE_SIZE, INPUT_SEED))
    for index, path in enumerate(batch):
        if not path.exists():
            path.write_bytes(synthetic_photo_jpeg(SMALL_SIZE, INPUT_SEED + 1 + index))
    return BenchInputs(large, batch)
