"""Permanent problems: a failed item for each object nothing can caption, the invocation succeeds."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from unittest import mock

import pytest
from PIL import Image

from captioning.function.processing import CaptionHandler
from tests.conftest import make_image_bytes
from tests.function.conftest import (
    BUCKET,
    Deployment,
    FakeContext,
    direct_event,
    noise_png,
)

# --- permanent problems: a failed item, the invocation succeeds -----------------------------------------


@pytest.mark.parametrize("shape", ["direct", "sqs"])
def test_each_rejection_kind_writes_a_failed_item(
    aws: Deployment, function: CaptionHandler, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    monkeypatch.setattr(function, "settings", replace(function.settings, max_object_bytes=20_000))
    objects = {
        "notes.jpg": (b"shopping list: eggs, milk\n", "not an image"),
        "truncated.jpg": (
            make_image_bytes((300, 200), image_format="JPEG")[:500],
            "corrupt or truncated image",
        ),
        "huge.bmp": (
            make_image_bytes((200, 200), image_format="BMP"),
            "object too large: 120054 bytes, limit 20000",
        ),
        "empty.png": (b"", "not an image: the object is empty"),
        "vanished.png": (noise_png(3), "object not found"),
        "good.png": (noise_png(4), None),
    }
    messages = [aws.upload(key, data) for key, (data, _) in objects.items()]
    aws.s3.delete_object(Bucket=BUCKET, Key="vanished.png")

    event = direct_event(*messages) if shape == "direct" else aws.sqs_event(*messages)
    result = function.handler(event, FakeContext())

    if shape == "direct":
        assert result == {"captioned": 1, "failed": 5, "duplicate": 0}
    else:
        assert result == {"batchItemFailures": []}
    for key, (_, reason) in objects.items():
        item = aws.item(key)
        if reason is None:
            assert item["status"] == "captioned"
        else:
            assert item["status"] == "failed", key
            assert item["error"].startswith(reason), item["error"]
            assert "caption" not in item


def test_object_over_the_cap_is_refused_from_the_event_size_without_a_get(
    aws: Deployment, function: CaptionHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(function, "settings", replace(function.settings, max_object_bytes=100))
    message = aws.upload("big.png", noise_png(5))
    with mock.patch.object(function.s3_client, "get_object") as get_object:
        function.handler(direct_event(message), FakeContext())
    get_object.assert_not_called()
    assert aws.item("big.png")["error"].startswith("object too large")


def test_object_over_the_cap_is_refused_before_its_body_is_read(
    aws: Deployment, function: CaptionHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(function, "settings", replace(function.settings, max_object_bytes=100))
    message = aws.upload("grown.png", noise_png(5))
    event = direct_event(message)
    del event["Records"][0]["s3"]["object"]["size"]  # only GetObject's Content-Length can tell
    real_get_object = function.s3_client.get_object
    bodies = []

    def get_object(**kwargs: Any) -> dict[str, Any]:
        response = real_get_object(**kwargs)
        response["Body"] = mock.Mock(wraps=response["Body"])
        bodies.append(response["Body"])
        return response

    with mock.patch.object(function.s3_client, "get_object", side_effect=get_object):
        function.handler(event, FakeContext())
    assert aws.item("grown.png")["error"].startswith("object too large")
    bodies[0].read.assert_not_called()
    bodies[0].close.assert_called_once()


def test_a_batch_the_model_cannot_take_falls_back_to_one_by_one(
    aws: Deployment, function: CaptionHandler
) -> None:
    poison_size = (33, 33)
    messages = [
        aws.upload(f"p{seed}.png", noise_png(seed, size=poison_size if seed == 1 else (48, 40)))
        for seed in range(3)
    ]
    real_caption = function.captioner.caption

    def caption(images: list[Image.Image]) -> list[str]:
        if any(image.size == poison_size for image in images):
            raise RuntimeError("the model cannot take this image")
        return real_caption(images)

    with mock.patch.object(function.captioner, "caption", side_effect=caption):
        assert function.handler(aws.sqs_event(*messages), FakeContext()) == {"batchItemFailures": []}
    assert [aws.item(f"p{seed}.png")["status"] for seed in range(3)] == ["captioned", "failed", "captioned"]
    assert "the model cannot take this image" in aws.item("p1.png")["error"]
