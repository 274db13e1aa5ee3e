"""Shared fixtures: a tiny captioning model on disk, a loaded Captioner, moto-backed AWS."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.tiny_model import build_tiny_model

AWS_TEST_REGION = "us-east-1"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ViT + GPT-2 VisionEncoderDecoderModel directory, as save_pretrained writes it."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-vit-gpt2")


@pytest.fixture(scope="session")
def tiny_captioner(tiny_model_dir: Path):
    """The tiny model loaded through Captioner.load with the project defaults (fp32)."""
    from handler.captioner import Captioner

    return Captioner.load(tiny_model_dir, num_beams=3, max_length=12)


def make_image_bytes(
    size: tuple[int, int] = (64, 48),
    *,
    image_format: str = "PNG",
    mode: str = "RGB",
    color: object = (200, 30, 40),
    **save_options: object,
) -> bytes:
    """An encoded image of one colour with a contrasting square, so different inputs look different."""
    image = Image.new(mode, size, color)
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **save_options)
    return buffer.getvalue()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a region so boto3 never looks for real ones."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_TEST_REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def mocked_aws(aws_credentials: None) -> Iterator[None]:
    """moto's in-process AWS (S3, DynamoDB, SQS) for the duration of one test."""
    from moto import mock_aws

    with mock_aws():
        yield
