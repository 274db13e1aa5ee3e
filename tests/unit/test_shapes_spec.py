"""The demo-image generator obeys the published spec (models/shapes.py)."""

from __future__ import annotations

import io
import random
import re

import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat

from models import shapes

CAPTION_PATTERN = re.compile(
    r"^a (red|green|blue|yellow|purple|pink|black) (circle|square|triangle) on a (white|gray) background$"
)
SPEC_COLOURS = {
    "red": (220, 20, 20),
    "green": (20, 160, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 210, 20),
    "purple": (130, 40, 170),
    "pink": (250, 120, 190),
    "black": (10, 10, 10),
}
SPEC_BACKGROUNDS = {"white": (255, 255, 255), "gray": (128, 128, 128)}


@pytest.fixture(scope="module")
def drawn() -> list[shapes.DemoImage]:
    return list(shapes.demo_images(seed=31337, count=150))


def _decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def _shape_bbox(image: Image.Image, background: tuple[int, int, int]) -> tuple[int, int, int, int] | None:
    return ImageChops.difference(image, Image.new("RGB", image.size, background)).getbbox()


def test_spec_colours_and_backgrounds_are_the_published_values() -> None:
    assert shapes.COLOURS == SPEC_COLOURS
    assert shapes.BACKGROUNDS == SPEC_BACKGROUNDS
    assert shapes.SHAPES == ("circle", "square", "triangle")


def test_canvas_sizes_and_ratio_stay_within_the_spec(drawn: list[shapes.DemoImage]) -> None:
    for image in drawn:
        spec = image.spec
        assert 96 <= spec.width <= 768 and 96 <= spec.height <= 768, spec
        assert 3 / 4 <= spec.height / spec.width <= 4 / 3, spec
        assert _decoded(image.data).size == (spec.width, spec.height)
    widths = [image.spec.width for image in drawn]
    ratios = [image.spec.height / image.spec.width for image in drawn]
    # The draw covers the range, not one corner of it.
    assert min(widths) < 150 and max(widths) > 700
    assert min(ratios) < 0.8 and max(ratios) > 1.25


def test_shape_is_fully_inside_with_bounding_square_25_to_60_percent(drawn: list[shapes.DemoImage]) -> None:
    fractions = []
    for image in drawn:
        spec = image.spec
        shorter = min(spec.width, spec.height)
        fractions.append(spec.side / shorter)
        assert 0.25 <= spec.side / shorter <= 0.60, spec
        assert spec.left >= 0 and spec.top >= 0, spec
        assert spec.left + spec.side <= spec.width and spec.top + spec.side <= spec.height, spec
    assert min(fractions) < 0.27 and max(fractions) > 0.58


def test_drawn_pixels_are_background_plus_one_shape_inside_its_box(drawn: list[shapes.DemoImage]) -> None:
    for image in drawn[:80]:
        spec = image.spec
        pixels = shapes.draw(spec)
        assert {colour for _, colour in pixels.getcolors()} == {
            SPEC_BACKGROUNDS[spec.background],
            SPEC_COLOURS[spec.colour],
        }, spec
        left, top, right, bottom = _shape_bbox(pixels, SPEC_BACKGROUNDS[spec.background])
        # The filled shape spans its bounding square (to within a pixel of rasterisation).
        assert abs(left - spec.left) <= 1 and abs(top - spec.top) <= 1, spec
        assert abs(right - (spec.left + spec.side)) <= 1 and abs(bottom - (spec.top + spec.side)) <= 1, spec


def _filled(image: Image.Image, xy: tuple[float, float], background: tuple[int, int, int]) -> bool:
    return image.getpixel((round(xy[0]), round(xy[1]))) != background


@pytest.mark.parametrize("shape", shapes.SHAPES)
def test_each_shape_has_its_geometry(shape: str) -> None:
    spec = shapes.ShapeSpec(
        width=400, height=300, background="white", colour="red", shape=shape, left=100, top=50, side=160
    )
    image = shapes.draw(spec)
    white = SPEC_BACKGROUNDS["white"]
    left, top, last = spec.left, spec.top, spec.side - 1
    corner_top_left = (left + 2, top + 2)
    corner_bottom_left = (left + 2, top + last - 2)
    apex = (left + last / 2, top + 1)
    assert _filled(image, (left + last / 2, top + last / 2), white)
    if shape == "circle":
        assert not _filled(image, corner_top_left, white) and not _filled(image, corner_bottom_left, white)
    elif shape == "square":
        assert _filled(image, corner_top_left, white) and _filled(image, corner_bottom_left, white)
    else:
        # Upright: apex at the top centre, base along the bottom edge.
        assert _filled(image, apex, white) and _filled(image, corner_bottom_left, white)
        assert not _filled(image, corner_top_left, white)
        assert not _filled(image, (left + 2, top + last / 2 - 10), white)


def test_caption_format_and_words(drawn: list[shapes.DemoImage]) -> None:
    for image in drawn:
        spec = image.spec
        assert image.caption == f"a {spec.colour} {spec.shape} on a {spec.background} background"
        assert CAPTION_PATTERN.match(image.caption)
    assert {image.spec.colour for image in drawn} == set(SPEC_COLOURS)
    assert {image.spec.shape for image in drawn} == {"circle", "square", "triangle"}
    assert {image.spec.background for image in drawn} == set(SPEC_BACKGROUNDS)


def test_formats_are_png_or_jpeg_quality_75_to_95(drawn: list[shapes.DemoImage]) -> None:
    for image in drawn:
        with Image.open(io.BytesIO(image.data)) as decoded:
            assert decoded.format == image.format
        if image.format == "JPEG":
            assert 75 <= image.quality <= 95
        else:
            assert image.quality is None
            assert _decoded(image.data).tobytes() == shapes.draw(image.spec).tobytes()
    assert {image.format for image in drawn} == {"PNG", "JPEG"}
    assert {image.quality for image in drawn if image.format == "JPEG"} >= {75, 95}


def test_draws_are_reproducible_from_the_seed() -> None:
    first = [image.data for image in shapes.demo_images(seed=7, count=5)]
    again = [image.data for image in shapes.demo_images(seed=7, count=5)]
    other = [image.data for image in shapes.demo_images(seed=8, count=5)]
    assert first == again
    assert first != other


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "orange"}, "colour is 'orange'"),
        ({"shape": "star"}, "shape is 'star'"),
        ({"background": "black"}, "background is 'black'"),
        ({"width": 80}, "width is 80; allowed is 96-768"),
        ({"height": 500}, "allowed ratio is 3:4 to 4:3"),
        ({"side": 100}, "25-60 %"),
        ({"left": 250}, "not fully inside"),
    ],
)
def test_spec_outside_the_published_ranges_is_refused(change: dict[str, object], message: str) -> None:
    valid = {
        "width": 300,
        "height": 300,
        "background": "white",
        "colour": "red",
        "shape": "circle",
        "left": 100,
        "top": 100,
        "side": 100,
    }
    if "side" in change:
        valid["width"] = valid["height"] = 120  # 100 px is over 60 % of 120
        valid["left"] = valid["top"] = 0
    with pytest.raises(ValueError, match=re.escape(message)):
        shapes.ShapeSpec(**{**valid, **change})


@pytest.mark.parametrize("quality", [74, 96])
def test_jpeg_quality_outside_75_to_95_is_refused(quality: int) -> None:
    image = shapes.draw(shapes.random_spec(random.Random(1)))  # noqa: S311  reproducible draw, not security
    with pytest.raises(ValueError, match="JPEG quality"):
        shapes.encode(image, "JPEG", quality)


def test_conversions_produce_the_formats_a_user_would_upload() -> None:
    source = next(shapes.demo_images(seed=3, count=1, image_format="PNG"))
    expected = {"cmyk-jpeg": ("JPEG", "CMYK"), "gif": ("GIF", "P"), "webp": ("WEBP", "RGB")}
    for name, (image_format, mode) in expected.items():
        with Image.open(io.BytesIO(shapes.CONVERSIONS[name](source.data))) as converted:
            assert (converted.format, converted.mode) == (image_format, mode)
            difference = ImageStat.Stat(
                ImageChops.difference(converted.convert("RGB"), _decoded(source.data))
            )
            assert max(difference.mean) < 6, name


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_rotated_jpeg_is_restored_by_exif_transpose(orientation: int) -> None:
    spec = shapes.ShapeSpec(
        width=320, height=240, background="gray", colour="yellow", shape="triangle", left=20, top=30, side=120
    )
    source = shapes.encode(shapes.draw(spec), "PNG")
    rotated = shapes.to_exif_rotated_jpeg(source, orientation)
    with Image.open(io.BytesIO(rotated)) as stored:
        assert stored.getexif()[0x0112] == orientation
        if orientation in (5, 6, 7, 8):
            assert stored.size == (240, 320)
        assert stored.convert("RGB").tobytes() != shapes.draw(spec).tobytes()
        upright = ImageOps.exif_transpose(stored).convert("RGB")
    assert upright.size == (320, 240)
    assert max(ImageStat.Stat(ImageChops.difference(upright, shapes.draw(spec))).mean) < 3
