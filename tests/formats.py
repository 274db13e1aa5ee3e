"""One picture in every format the function decodes, named with every default key suffix.

The picture is the demo sample "red circle.png", which the demo model captions exactly; each format's
file is encoded here with Pillow, except HEIC, which nothing in the project can encode (pi-heif only
decodes): tests/fixtures/red-circle.heic, written once by tests/fixtures/make_heic.py.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

import captioning.function.images  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE = REPO_ROOT / "samples" / "images" / "red circle.png"
CAPTION = "a red circle on a white background"
"""What the demo model says of SOURCE, in every format."""
HEIC_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "red-circle.heic"
SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif")
"""What the tests expect delivered and decoded (JPEG, PNG, GIF, WEBP, BMP, TIFF, HEIC/HEIF, AVIF), written
out here rather than read from the component, so a suffix missing from its defaults fails a test."""


def format_of(suffix: str) -> str:
    """Pillow's format name for a file suffix (".JPG" -> "JPEG"); KeyError when Pillow knows none."""
    Image.init()
    return Image.registered_extensions()[suffix.lower()]


def encoded(image_format: str) -> bytes:
    """SOURCE in `image_format` (Pillow's name)."""
    if image_format == "HEIF":
        return HEIC_FIXTURE.read_bytes()
    with Image.open(SOURCE) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format=image_format)
    return buffer.getvalue()


def format_files() -> dict[str, bytes]:
    """File name -> bytes: SOURCE once per suffix of SUFFIXES in both cases, in that suffix's format."""
    by_format: dict[str, bytes] = {}
    files = {}
    for suffix in (*SUFFIXES, *(suffix.upper() for suffix in SUFFIXES)):
        image_format = format_of(suffix)
        if image_format not in by_format:
            by_format[image_format] = encoded(image_format)
        files[f"red-circle-{suffix[1:]}{suffix}"] = by_format[image_format]  # red-circle-JPG.JPG
    return files
