"""Every format the function decodes is delivered by the default key suffixes, and decodes.

The suffixes (captioning/component/settings.py IMAGE_EXTENSIONS) and the decoded formats
(captioning/function/images.py ALLOWED_FORMATS) live apart, as the component cannot import Pillow: these
tests keep them in step. tests/e2e/test_formats.py captions one file per default suffix through the local
pipeline; tests/image/test_function_in_container.py sends the same files to the built image.
"""

from __future__ import annotations

import pytest
from PIL import features

from captioning.component.settings import DEFAULT_IMAGE_SUFFIXES, IMAGE_EXTENSIONS
from captioning.function.images import ALLOWED_FORMATS, load_image
from tests.formats import HEIC_FIXTURE, SUFFIXES, encoded, format_of


def test_every_default_suffix_is_a_format_the_function_decodes() -> None:
    assert {
        suffix: format_of(suffix) in ALLOWED_FORMATS for suffix in DEFAULT_IMAGE_SUFFIXES
    } == dict.fromkeys(DEFAULT_IMAGE_SUFFIXES, True)


def test_every_decoded_format_has_a_default_suffix_in_both_cases() -> None:
    assert {format_of(extension) for extension in IMAGE_EXTENSIONS} == set(ALLOWED_FORMATS)
    assert set(DEFAULT_IMAGE_SUFFIXES) == set(IMAGE_EXTENSIONS) | {e.upper() for e in IMAGE_EXTENSIONS}


@pytest.mark.parametrize("suffix", [*SUFFIXES, *(suffix.upper() for suffix in SUFFIXES)])
def test_gif_bmp_tiff_heic_and_avif_are_delivered_by_default_in_both_cases(suffix: str) -> None:
    assert suffix in DEFAULT_IMAGE_SUFFIXES


def test_pillow_decodes_avif_itself() -> None:
    assert features.check("avif"), "Pillow was built without AVIF: captioning/function/images.py relies on it"


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF", "AVIF"])
def test_each_format_decodes_to_the_source_picture(image_format: str) -> None:
    image = load_image(encoded(image_format))
    assert (image.mode, image.size) == ("RGB", (320, 240))
    red, green, blue = image.getpixel((160, 120))  # the circle's centre
    assert red > 200 and green < 40 and blue < 40, (image_format, (red, green, blue))
    assert image.getpixel((5, 5)) == pytest.approx((255, 255, 255), abs=3)  # the white background


def test_the_heic_fixture_is_heic() -> None:
    data = HEIC_FIXTURE.read_bytes()
    assert data[4:12] == b"ftypheic"
