"""Image preparation: formats, modes, orientation, draft decoding and every rejection kind."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from captioning.contract.constants import MAX_OBJECT_BYTES
from captioning.function.images import ALLOWED_FORMATS, ImageRejected, check_object_size, load_image
from local.soak_objects import png_claiming
from tests.conftest import make_image_bytes
from tests.formats import HEIC_FIXTURE, encoded


def _encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "AVIF"])
def test_each_allowed_format_decodes_to_rgb(image_format: str) -> None:
    image = load_image(make_image_bytes((40, 30), image_format=image_format))
    assert image.mode == "RGB"
    assert image.size == (40, 30)


def test_heic_decodes_to_rgb() -> None:
    image = load_image(HEIC_FIXTURE.read_bytes())  # 320x240, made by tests/fixtures/make_heic.py
    assert (image.mode, image.size) == ("RGB", (320, 240))


def test_transparent_avif_is_put_on_white() -> None:
    image = load_image(make_image_bytes((16, 16), image_format="AVIF", mode="RGBA", color=(10, 20, 30, 0)))
    assert image.getpixel((8, 8)) == pytest.approx((255, 255, 255), abs=2)


@pytest.mark.parametrize("image_format", ["HEIF", "AVIF"])
@pytest.mark.parametrize("kept", [16, 40, 0.5])
def test_a_heic_or_avif_cut_short_is_corrupt_not_unknown(image_format: str, kept: float) -> None:
    data = encoded(image_format)
    with pytest.raises(ImageRejected, match=rf"^corrupt or truncated image: .*{image_format}"):
        load_image(data[: int(kept * len(data)) if kept < 1 else int(kept)])


@pytest.mark.parametrize("image_format", ["HEIF", "AVIF"])
def test_heic_and_avif_over_the_pixel_limit_are_rejected_with_their_dimensions(
    image_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = encoded(image_format)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(ImageRejected, match=r"^image too large: 320×240 pixels, limit 10000 pixels$"):
        load_image(data)


def test_modes_are_converted_to_rgb_with_transparency_on_white() -> None:
    transparent_rgba = load_image(make_image_bytes((8, 8), mode="RGBA", color=(10, 20, 30, 0)))
    assert transparent_rgba.getpixel((0, 0)) == (255, 255, 255)

    grey_with_alpha = load_image(make_image_bytes((8, 8), mode="LA", color=(0, 0)))
    assert grey_with_alpha.getpixel((0, 0)) == (255, 255, 255)

    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    transparent_palette = load_image(_encode(palette, "PNG", transparency=1))
    assert transparent_palette.getpixel((0, 0)) == (255, 255, 255)
    opaque_palette = load_image(_encode(palette, "PNG"))
    assert opaque_palette.getpixel((0, 0)) == (255, 0, 0)

    grey = load_image(make_image_bytes((8, 8), mode="L", color=90))
    assert grey.getpixel((0, 0)) == (90, 90, 90)


def test_cmyk_jpeg_becomes_rgb() -> None:
    image = load_image(make_image_bytes((16, 16), image_format="JPEG", mode="CMYK", color=(0, 255, 255, 0)))
    red, green, blue = image.getpixel((8, 8))
    assert image.mode == "RGB" and red > 200 and green < 60 and blue < 60


def test_16_bit_grayscale_is_scaled_not_clipped() -> None:
    mid_grey = Image.new("I;16", (8, 8), 32768)
    image = load_image(_encode(mid_grey, "PNG"))
    assert image.mode == "RGB"
    red, green, blue = image.getpixel((0, 0))
    assert red == green == blue and abs(red - 128) <= 1


def test_first_frame_of_an_animated_gif() -> None:
    frames = [Image.new("RGB", (10, 10), color) for color in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    image = load_image(buffer.getvalue())
    assert image.mode == "RGB"
    assert image.getpixel((5, 5))[0] > 200


def test_exif_orientation_is_applied() -> None:
    landscape = Image.new("RGB", (60, 20), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise
    image = load_image(_encode(landscape, "JPEG", exif=exif.tobytes()))
    assert image.size == (20, 60)


def test_large_jpeg_is_draft_decoded_but_never_below_the_model_input() -> None:
    photo = make_image_bytes((2000, 1000), image_format="JPEG")
    image = load_image(photo)
    assert image.size == (500, 250)  # 1/4 scale: 1/8 would make the short side 125 < 224
    assert min(load_image(photo, min_size=100).size) >= 100
    assert load_image(make_image_bytes((300, 230), image_format="JPEG")).size == (300, 230)


def test_multi_picture_jpeg_is_draft_decoded_from_its_first_picture() -> None:
    first, second = (Image.new("RGB", (2000, 1000), color) for color in ((200, 30, 40), (0, 0, 255)))
    image = load_image(_encode(first, "MPO", save_all=True, append_images=[second]))
    assert image.size == (500, 250)
    red, green, blue = image.getpixel((5, 5))
    assert red > 180 and blue < 60


def test_large_png_is_not_resized() -> None:
    assert load_image(make_image_bytes((1200, 900))).size == (1200, 900)


@pytest.mark.parametrize(
    ("data", "message_start"),
    [
        (b"", "not an image: the object is empty"),
        (b"hello, this is a text file named photo.jpg\n", "not an image"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "not an image"),
        (make_image_bytes((50, 50), image_format="ICO"), "not an image"),
        (make_image_bytes((400, 300), image_format="JPEG")[:600], "corrupt or truncated image"),
        (make_image_bytes((400, 300), image_format="PNG")[:60], "corrupt or truncated image"),
    ],
    ids=["empty", "text", "pdf", "ico-not-allowed", "truncated-jpeg", "truncated-png"],
)
def test_rejections_say_what_is_wrong(data: bytes, message_start: str) -> None:
    with pytest.raises(ImageRejected) as rejected:
        load_image(data)
    assert str(rejected.value).startswith(message_start)
    if message_start == "not an image" and data:
        assert ", ".join(ALLOWED_FORMATS) in str(rejected.value)


def test_decompression_bomb_is_rejected_with_its_dimensions() -> None:
    with pytest.raises(ImageRejected) as rejected:
        load_image(png_claiming(40000, 40000))
    message = str(rejected.value)
    assert message.startswith("image too large: 40000×40000 pixels, limit ")
    assert str(Image.MAX_IMAGE_PIXELS) in message


def test_image_between_pillows_warning_and_error_limits_is_rejected_too() -> None:
    width = 10000
    height = Image.MAX_IMAGE_PIXELS // width + 10  # over the limit, under twice it
    with pytest.raises(ImageRejected, match=rf"^image too large: {width}×{height} pixels"):
        load_image(png_claiming(width, height))


def test_object_size_cap() -> None:
    check_object_size(MAX_OBJECT_BYTES)
    with pytest.raises(ImageRejected, match=r"^object too large: 1001 bytes, limit 1000 bytes$"):
        check_object_size(1001, 1000)
    with pytest.raises(ImageRejected, match="object too large"):
        check_object_size(MAX_OBJECT_BYTES + 1)
