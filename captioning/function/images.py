"""Image preparation: untrusted object bytes -> an RGB PIL image the captioner can use.

Every reason to refuse an object raises `ImageRejected` with a message a person understands.
"""

from __future__ import annotations

import io
import warnings

from pi_heif import register_heif_opener
from PIL import Image, ImageOps, UnidentifiedImageError

from captioning.contract.constants import MAX_OBJECT_BYTES

# HEIC/HEIF (phones' default) through pi-heif, decode only: the primary picture, none of the thumbnails,
# depth maps or auxiliary images a HEIF file may carry. AVIF is Pillow's own (its wheels bundle libavif).
register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "AVIF", "HEIF")
"""Pillow's names of the formats the function decodes, tried in this order (AVIF before HEIF: both are
HEIF containers, and only Pillow's AVIF plugin decodes AV1). captioning/component/settings.py IMAGE_EXTENSIONS
names their file extensions (tests/function/test_formats.py keeps the two in step)."""
# The model input is 224x224; JPEG draft decoding never goes below this on either side.
MODEL_INPUT_SIZE = 224
_WHITE = (255, 255, 255)
# What Pillow raises on bad data inside a file it recognised (truncated streams, broken chunks, bad EXIF).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, ZeroDivisionError)


class ImageRejected(Exception):
    """This object cannot be captioned; the message says why, for a person to read."""


def check_object_size(size: int, limit: int = MAX_OBJECT_BYTES) -> None:
    """Refuse an object before its body is read when it is larger than `limit` bytes."""
    if size > limit:
        raise ImageRejected(f"object too large: {size} bytes, limit {limit} bytes")


def load_image(data: bytes, *, min_size: int = MODEL_INPUT_SIZE) -> Image.Image:
    """Decode `data` into an upright RGB image (first frame of animations), at least `min_size` a side
    where the source is that large (JPEGs are decoded at reduced scale down to that)."""
    if not data:
        raise ImageRejected("not an image: the object is empty (0 bytes)")
    image = _open(data)
    try:
        # Phones often write multi-picture JPEGs, which Pillow opens as "MPO": the same JPEG decoder.
        if image.format in ("JPEG", "MPO"):
            image.draft(None, (min_size, min_size))
        image.seek(0)
        image.load()
        upright = ImageOps.exif_transpose(image)
        return _to_rgb(upright)
    except ImageRejected:
        raise
    except _DECODE_ERRORS as error:
        raise ImageRejected(
            f"corrupt or truncated image: {image.format} data could not be decoded ({str(error).strip()})"
        ) from error
    finally:
        image.close()


def _open(data: bytes) -> Image.ImageFile.ImageFile:
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse from MAX_IMAGE_PIXELS on.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        width, height = _declared_size(data)
        raise ImageRejected(f"image too large: {width}×{height} pixels, limit {limit} pixels") from error
    except UnidentifiedImageError as error:
        recognised = _recognised_format(data)
        if recognised is not None:  # e.g. a HEIC or AVIF upload cut short: its header alone is there
            raise ImageRejected(
                f"corrupt or truncated image: a {recognised} signature, but no image could be read"
            ) from error
        raise ImageRejected(
            f"not an image: the data is not in an accepted format ({', '.join(ALLOWED_FORMATS)})"
        ) from error
    except _DECODE_ERRORS as error:
        raise ImageRejected(f"corrupt or truncated image: the header could not be read ({error})") from error


def _recognised_format(data: bytes) -> str | None:
    """The accepted format whose signature `data` starts with, if any (Pillow refused the rest of it)."""
    for image_format in ALLOWED_FORMATS:
        accept = Image.OPEN[image_format][1]
        if accept is not None and accept(data[:16]):
            return image_format
    return None


def _declared_size(data: bytes) -> tuple[int, int]:
    """Width and height as the header declares them, read without Pillow's pixel limit (which
    already refused this image) so the rejection message can name them."""
    for image_format in ALLOWED_FORMATS:
        factory, accept = Image.OPEN[image_format]
        if accept is None or accept(data[:16]):
            try:
                with factory(io.BytesIO(data), "") as header_only:
                    return header_only.size
            except _DECODE_ERRORS:
                continue
    raise ImageRejected("image too large: over Pillow's decompression-bomb pixel limit")


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P" and "transparency" in image.info:
        return _on_white(image.convert("RGBA"))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _on_white(image.convert("RGBA"))
    if mode.startswith("I") or mode == "F":
        return _to_8_bit(image).convert("RGB")
    return image.convert("RGB")


def _on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _to_8_bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit grayscale to 8-bit: 16-bit by its full range, others by their actual range."""
    if image.mode.startswith("I;16"):
        low, high = 0, 65535
        image = image.convert("I")
    else:
        low, high = image.getextrema()
    scale = 255 / (high - low) if high > low else 0.0
    return image.point(lambda value: (value - low) * scale).convert("L")
