"""The published demo-image spec as code: random spec images, their captions, and user conversions.

Spec (the demo model must caption fresh draws from it):
- canvas width 96-768 px, height = width x a ratio between 3:4 and 4:3, kept within 96-768 px;
  background white (255,255,255) or gray (128,128,128);
- one filled shape, circle, square (axis-aligned) or triangle (upright: apex at top centre, base
  at the bottom), whose bounding square is 25-60 % of the canvas's shorter side, fully inside;
- colours red, green, blue, yellow, purple, pink, black (RGB values in COLOURS);
- saved as PNG, or JPEG at quality 75-95;
- caption exactly ``a {colour} {shape} on a {background} background``.

Every random choice goes through a caller-supplied ``random.Random`` so draws are reproducible.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from PIL import Image, ImageDraw

MIN_SIDE = 96
MAX_SIDE = 768
MIN_RATIO = 3 / 4
MAX_RATIO = 4 / 3
MIN_SHAPE_FRACTION = 0.25
MAX_SHAPE_FRACTION = 0.60
MIN_JPEG_QUALITY = 75
MAX_JPEG_QUALITY = 95

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 20, 20),
    "green": (20, 160, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 210, 20),
    "purple": (130, 40, 170),
    "pink": (250, 120, 190),
    "black": (10, 10, 10),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
FORMATS: tuple[str, ...] = ("PNG", "JPEG")
CAPTION_TEMPLATE = "a {colour} {shape} on a {background} background"
CAPTION_WORDS: tuple[str, ...] = ("a", "on", "background", *COLOURS, *SHAPES, *BACKGROUNDS)

# EXIF orientation -> the transpose that stores an upright image so that exif_transpose restores it
# (the inverse of what ImageOps.exif_transpose applies for that tag).
_STORED_TRANSPOSE_FOR_ORIENTATION: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
CAMERA_ORIENTATIONS: tuple[int, ...] = (3, 6, 8)
EXIF_ORIENTATION_TAG = 0x0112


def caption_for(colour: str, shape: str, background: str) -> str:
    """The spec caption, after checking each word is one the spec allows."""
    _check_choice("colour", colour, tuple(COLOURS))
    _check_choice("shape", shape, SHAPES)
    _check_choice("background", background, tuple(BACKGROUNDS))
    return CAPTION_TEMPLATE.format(colour=colour, shape=shape, background=background)


@dataclass(frozen=True)
class ShapeSpec:
    """One spec image before encoding: canvas, shape and where its bounding square sits."""

    width: int
    height: int
    background: str
    colour: str
    shape: str
    left: int
    top: int
    side: int

    def __post_init__(self) -> None:
        _check_range("width", self.width, MIN_SIDE, MAX_SIDE)
        _check_range("height", self.height, MIN_SIDE, MAX_SIDE)
        if not MIN_RATIO <= self.height / self.width <= MAX_RATIO:
            raise ValueError(f"height/width is {self.height}/{self.width}; allowed ratio is 3:4 to 4:3")
        caption_for(self.colour, self.shape, self.background)
        shorter = min(self.width, self.height)
        if not MIN_SHAPE_FRACTION * shorter <= self.side <= MAX_SHAPE_FRACTION * shorter:
            raise ValueError(
                f"shape side is {self.side} px; allowed is 25-60 % of the shorter side ({shorter} px)"
            )
        if (
            self.left < 0
            or self.top < 0
            or self.left + self.side > self.width
            or self.top + self.side > self.height
        ):
            raise ValueError(
                f"shape box ({self.left}, {self.top}, side {self.side}) is not fully inside "
                f"the {self.width}x{self.height} canvas"
            )

    @property
    def caption(self) -> str:
        return caption_for(self.colour, self.shape, self.background)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Bounding square as (left, top, right, bottom), right/bottom exclusive."""
        return (self.left, self.top, self.left + self.side, self.top + self.side)


@dataclass(frozen=True)
class DemoImage:
    """A spec image as a user would upload it: encoded bytes, its format and the expected caption."""

    spec: ShapeSpec
    format: str
    quality: int | None
    data: bytes

    @property
    def caption(self) -> str:
        return self.spec.caption

    @property
    def extension(self) -> str:
        return ".png" if self.format == "PNG" else ".jpg"


def random_spec(rng: random.Random) -> ShapeSpec:
    """Draw canvas, colours, shape and placement uniformly from the spec."""
    width = rng.randint(MIN_SIDE, MAX_SIDE)
    # Integer heights whose ratio to width is exactly within 3:4..4:3 and within the side limits.
    lowest = max(MIN_SIDE, math.ceil(width * MIN_RATIO))
    highest = min(MAX_SIDE, math.floor(width * MAX_RATIO))
    height = rng.randint(lowest, highest)
    shorter = min(width, height)
    side = rng.randint(math.ceil(MIN_SHAPE_FRACTION * shorter), math.floor(MAX_SHAPE_FRACTION * shorter))
    return ShapeSpec(
        width=width,
        height=height,
        background=rng.choice(tuple(BACKGROUNDS)),
        colour=rng.choice(tuple(COLOURS)),
        shape=rng.choice(SHAPES),
        left=rng.randint(0, width - side),
        top=rng.randint(0, height - side),
        side=side,
    )


def draw(spec: ShapeSpec, *, supersample: int = 1) -> Image.Image:
    """Render the spec as an RGB image; supersample > 1 draws larger and downsamples (anti-aliased edges)."""
    if supersample < 1:
        raise ValueError(f"supersample is {supersample}; allowed is an integer >= 1")
    scale = supersample
    canvas = Image.new("RGB", (spec.width * scale, spec.height * scale), BACKGROUNDS[spec.background])
    pen = ImageDraw.Draw(canvas)
    fill = COLOURS[spec.colour]
    left, top, side = spec.left * scale, spec.top * scale, spec.side * scale
    right, bottom = left + side - 1, top + side - 1
    if spec.shape == "circle":
        pen.ellipse((left, top, right, bottom), fill=fill)
    elif spec.shape == "square":
        pen.rectangle((left, top, right, bottom), fill=fill)
    else:
        pen.polygon([(left + (side - 1) / 2, top), (right, bottom), (left, bottom)], fill=fill)
    if scale == 1:
        return canvas
    return canvas.resize((spec.width, spec.height), Image.Resampling.BOX)


def encode(
    image: Image.Image,
    image_format: str,
    quality: int | None = None,
    *,
    subsampling: int = -1,
    compress_level: int = 6,
) -> bytes:
    """Save as the spec allows: PNG, or JPEG with quality 75-95 (subsampling -1 = Pillow's default)."""
    _check_choice("format", image_format, FORMATS)
    buffer = io.BytesIO()
    if image_format == "PNG":
        if quality is not None:
            raise ValueError("quality applies to JPEG only; PNG takes none")
        image.save(buffer, format="PNG", compress_level=compress_level)
    else:
        if quality is None:
            raise ValueError("JPEG needs a quality; allowed is 75-95")
        _check_range("JPEG quality", quality, MIN_JPEG_QUALITY, MAX_JPEG_QUALITY)
        image.save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
    return buffer.getvalue()


def random_demo_image(
    rng: random.Random, *, image_format: str | None = None, supersample: int = 1
) -> DemoImage:
    """One fresh spec draw, encoded as PNG or JPEG (random when image_format is None)."""
    spec = random_spec(rng)
    chosen = image_format or rng.choice(FORMATS)
    _check_choice("format", chosen, FORMATS)
    quality = rng.randint(MIN_JPEG_QUALITY, MAX_JPEG_QUALITY) if chosen == "JPEG" else None
    data = encode(draw(spec, supersample=supersample), chosen, quality)
    return DemoImage(spec=spec, format=chosen, quality=quality, data=data)


def demo_images(seed: int, count: int, *, image_format: str | None = None) -> Iterator[DemoImage]:
    """``count`` reproducible spec draws from ``seed``."""
    if count < 0:
        raise ValueError(f"count is {count}; allowed is >= 0")
    rng = random.Random(seed)  # noqa: S311  reproducible draws, not security
    for _ in range(count):
        yield random_demo_image(rng, image_format=image_format)


def _decoded_rgb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def to_cmyk_jpeg(data: bytes, quality: int = 90) -> bytes:
    """Re-save as a CMYK JPEG, as print workflows do."""
    buffer = io.BytesIO()
    _decoded_rgb(data).convert("CMYK").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def to_gif(data: bytes) -> bytes:
    """Re-save as a (palette) GIF."""
    buffer = io.BytesIO()
    _decoded_rgb(data).save(buffer, format="GIF")
    return buffer.getvalue()


def to_webp(data: bytes, quality: int = 80) -> bytes:
    """Re-save as a lossy WebP."""
    buffer = io.BytesIO()
    _decoded_rgb(data).save(buffer, format="WEBP", quality=quality)
    return buffer.getvalue()


def to_exif_rotated_jpeg(data: bytes, orientation: int = 6, quality: int = 90) -> bytes:
    """Store the pixels turned or flipped with an EXIF Orientation tag that exif_transpose undoes."""
    _check_choice("EXIF orientation", orientation, tuple(_STORED_TRANSPOSE_FOR_ORIENTATION))
    stored = _decoded_rgb(data).transpose(_STORED_TRANSPOSE_FOR_ORIENTATION[orientation])
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue()


CONVERSIONS: dict[str, Callable[[bytes], bytes]] = {
    "cmyk-jpeg": to_cmyk_jpeg,
    "gif": to_gif,
    "webp": to_webp,
    "exif-rotated-jpeg": to_exif_rotated_jpeg,
}


def random_conversion(data: bytes, conversion: str, rng: random.Random) -> bytes:
    """Apply a named conversion with the settings a user might pick (quality, camera orientation)."""
    _check_choice("conversion", conversion, tuple(CONVERSIONS))
    if conversion == "cmyk-jpeg":
        return to_cmyk_jpeg(data, quality=rng.randint(MIN_JPEG_QUALITY, MAX_JPEG_QUALITY))
    if conversion == "webp":
        return to_webp(data, quality=rng.randint(70, 95))
    if conversion == "exif-rotated-jpeg":
        return to_exif_rotated_jpeg(
            data,
            orientation=rng.choice(CAMERA_ORIENTATIONS),
            quality=rng.randint(MIN_JPEG_QUALITY, MAX_JPEG_QUALITY),
        )
    return CONVERSIONS[conversion](data)


def _check_choice(what: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{what} is {value!r}; allowed: {', '.join(map(str, allowed))}")


def _check_range(what: str, value: int, lowest: int, highest: int) -> None:
    if not lowest <= value <= highest:
        raise ValueError(f"{what} is {value}; allowed is {lowest}-{highest}")
