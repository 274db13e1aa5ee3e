"""The objects the soak uploads: images drawn from the demo model's spec (models/shapes.py) and about
10 % bad objects (empty, text named like a photo, truncated, a decompression bomb, a PDF, junk PNG).

Some keys carry a space, '+' and non-ASCII characters, which S3 URL-encodes in events.
"""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass

BAD_OBJECT_SHARE = 0.1


@dataclass(frozen=True)
class SoakObject:
    key: str
    data: bytes
    expected_caption: str | None  # None: a bad object, expected to fail


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (a decompression bomb, as far as the header goes)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _bad_objects(good_jpeg: bytes) -> list[tuple[str, bytes]]:
    """(file extension, bytes) of objects no captioner should caption."""
    return [
        (".jpg", b""),
        (".jpg", b"This is a text file, named like a photo.\n"),
        (".jpg", good_jpeg[: len(good_jpeg) // 3]),
        (".png", png_claiming(40_000, 40_000)),
        (".pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"),
        (".png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4),
    ]


def soak_objects(count: int, rng: random.Random) -> list[SoakObject]:
    """`count` objects: demo-spec images (see models/shapes.py) and about 10 % bad objects.

    Some keys carry a space, '+' and non-ASCII characters, which S3 URL-encodes in events.
    """
    from models.shapes import random_demo_image

    objects: list[SoakObject] = []
    for index in range(count):
        special = " photo+ü" if index % 7 == 3 else ""
        if rng.random() < BAD_OBJECT_SHARE:
            sample = random_demo_image(rng, image_format="JPEG").data
            extension, data = rng.choice(_bad_objects(sample))
            objects.append(SoakObject(f"soak/{index:04d}{special}-bad{extension}", data, None))
        else:
            image = random_demo_image(rng)
            objects.append(
                SoakObject(f"soak/{index:04d}{special}{image.extension}", image.data, image.caption)
            )
    return objects
