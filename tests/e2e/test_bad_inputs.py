"""Bad-input catalogue: odd and hostile objects and events through the local pipeline, one row each.

Each row names what is uploaded (or sent to the queue) and the outcome a person should see: a caption
(the spec caption where the picture survives the conversion), or `failed` with a readable reason, or
for events that name no object, nothing written and nothing left in the queue. None may crash a
worker, hang, or be retried forever.

The pipeline runs once, in a child process (`python -m tests.e2e.test_bad_inputs OUT.json`), because the
function reads its environment and loads the model at import.
"""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from captioning.contract.constants import ItemStatus
from models import shapes

REPO_ROOT = Path(__file__).resolve().parents[2]
SIZE_CAP_BYTES = 1_000_000
CAPTIONED, FAILED, NO_ITEM = ItemStatus.CAPTIONED.value, ItemStatus.FAILED.value, "no item"
MALFORMED_BODY = '{"Records": [{"s3": oops'
LONG_KEY = "long/" + "very-" * 198 + "x.png"  # 1,000 bytes: S3 allows 1,024


def _spec(seed: int) -> shapes.ShapeSpec:
    return shapes.random_spec(random.Random(seed))  # noqa: S311  test data


def _png(image: Image.Image, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _saved(image: Image.Image, image_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _spec_png(seed: int) -> bytes:
    return shapes.encode(shapes.draw(_spec(seed)), "PNG")


def _spec_jpeg(seed: int) -> bytes:
    return shapes.encode(shapes.draw(_spec(seed)), "JPEG", 90)


def _truncated_jpeg() -> bytes:
    data = _spec_jpeg(3)
    return data[: len(data) // 2]


def _png_header_claiming(width: int, height: int) -> bytes:
    from local.soak_objects import png_claiming

    return png_claiming(width, height)


def _palette_with_transparency(seed: int) -> bytes:
    palette_image = shapes.draw(_spec(seed)).quantize(colors=8)
    return _png(palette_image, transparency=255)  # an index no pixel uses: the picture is unchanged


def _animated_gif(seed: int) -> bytes:
    first = shapes.draw(_spec(seed))
    second = Image.new("RGB", first.size, (30, 60, 220))
    return _saved(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)


def _over_size_cap() -> bytes:
    noise = Image.frombytes("RGB", (700, 700), random.Random(5).randbytes(700 * 700 * 3))  # noqa: S311
    data = _png(noise, compress_level=0)
    assert len(data) > SIZE_CAP_BYTES
    return data


@dataclass(frozen=True)
class Case:
    """One catalogue row: what arrives, what must come out."""

    name: str
    key: str
    make: Callable[[], bytes] | None  # the object's bytes; None for events that name no object
    outcome: str  # captioned | failed | no item
    expect: str | None = None  # exact caption, or a phrase the failure reason must contain
    delivery: str = "upload"  # upload | deleted-before-read | duplicate-event | test-event | malformed-event


CASES: list[Case] = [
    Case("zero bytes", "empty.jpg", lambda: b"", FAILED, "empty"),
    Case("text named .jpg", "notes.jpg", lambda: b"buy milk\nand eggs\n", FAILED, "not an image"),
    Case("truncated JPEG", "truncated.jpg", _truncated_jpeg, FAILED, "truncated"),
    Case(
        "PNG header claiming 40000x40000",
        "bomb.png",
        lambda: _png_header_claiming(40_000, 40_000),
        FAILED,
        "too large",
    ),
    Case("1x1 pixel", "dot.png", lambda: _png(Image.new("RGB", (1, 1), (220, 20, 20))), CAPTIONED),
    Case(
        "20000x60 strip",
        "strip.png",
        lambda: _png(Image.new("RGB", (20_000, 60), (128, 128, 128))),
        CAPTIONED,
    ),
    Case("CMYK JPEG", "cmyk.jpg", lambda: shapes.to_cmyk_jpeg(_spec_png(11)), CAPTIONED, _spec(11).caption),
    Case(
        "16-bit grayscale PNG", "gray16.png", lambda: _png(shapes.draw(_spec(12)).convert("I;16")), CAPTIONED
    ),
    Case(
        "grayscale with alpha",
        "gray-alpha.png",
        lambda: _png(shapes.draw(_spec(13)).convert("LA")),
        CAPTIONED,
    ),
    Case(
        "palette PNG with transparency",
        "palette.png",
        lambda: _palette_with_transparency(14),
        CAPTIONED,
        _spec(14).caption,
    ),
    Case(
        "animated GIF (first frame counts)",
        "animated.gif",
        lambda: _animated_gif(15),
        CAPTIONED,
        _spec(15).caption,
    ),
    Case(
        "EXIF-rotated JPEG",
        "rotated.jpg",
        lambda: shapes.to_exif_rotated_jpeg(_spec_png(16), 6),
        CAPTIONED,
        _spec(16).caption,
    ),
    Case("WebP", "picture.webp", lambda: shapes.to_webp(_spec_png(17), 90), CAPTIONED, _spec(17).caption),
    Case("TIFF", "scan.tiff", lambda: _saved(shapes.draw(_spec(18)), "TIFF"), CAPTIONED, _spec(18).caption),
    Case(
        "a HEIC header with no picture in it",
        "phone.heic",
        lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64),
        FAILED,
        "corrupt or truncated image",
    ),
    Case("object over the size cap", "huge.png", _over_size_cap, FAILED, "too large"),
    Case(
        "object deleted before it is read",
        "gone.png",
        lambda: _spec_png(19),
        FAILED,
        "deleted before it could be read",
        delivery="deleted-before-read",
    ),
    Case("key with spaces", "my holiday photo.png", lambda: _spec_png(20), CAPTIONED, _spec(20).caption),
    Case("key with +", "1+1=2.png", lambda: _spec_png(21), CAPTIONED, _spec(21).caption),
    Case("key with %", "100% sure %2B.png", lambda: _spec_png(22), CAPTIONED, _spec(22).caption),
    Case("key with unicode", "café/日本 ☕.png", lambda: _spec_png(23), CAPTIONED, _spec(23).caption),
    Case("key 1,000 bytes long", LONG_KEY, lambda: _spec_png(24), CAPTIONED, _spec(24).caption),
    Case(
        "duplicate event",
        "twice.png",
        lambda: _spec_png(25),
        CAPTIONED,
        _spec(25).caption,
        delivery="duplicate-event",
    ),
    Case("S3 s3:TestEvent", "(test event)", None, NO_ITEM, delivery="test-event"),
    Case("malformed event body", "(malformed)", None, NO_ITEM, delivery="malformed-event"),
]


# --- the child process: run the catalogue through the local pipeline -----------------------------------


def _drive(output: Path) -> None:
    import os

    os.environ["MAX_OBJECT_BYTES"] = str(SIZE_CAP_BYTES)  # the function reads it at init
    from local.dead_letters import keys_in_notification
    from local.emulated_pipeline import EmulatedPipeline
    from local.settings import LocalSettings

    by_key = {case.key: case for case in CASES}
    late: dict[str, Any] = {}
    lock = threading.Lock()
    duplicated: set[str] = set()

    def on_batch(worker_id: int, messages: Any) -> None:
        for message in messages:
            for key in keys_in_notification(message["Body"])[0]:
                case = by_key.get(key)
                if case is None:
                    continue
                if case.delivery == "deleted-before-read":
                    late["s3"].delete_object(Bucket=late["bucket"], Key=key)
                elif case.delivery == "duplicate-event":
                    with lock:
                        first = key not in duplicated
                        duplicated.add(key)
                    if first:
                        late["sqs"].send_message(QueueUrl=late["queue_url"], MessageBody=message["Body"])

    settings = LocalSettings(
        workers=2,
        batch_size=4,
        visibility_timeout_s=5,
        max_receive_count=2,
        log_level="ERROR",
        all_keys=True,  # the catalogue is about contents, not names: every key reaches the function
    )
    with EmulatedPipeline(settings, on_batch=on_batch) as pipeline:
        deployment = pipeline.resources
        late.update(
            s3=deployment.client("s3"),
            sqs=deployment.client("sqs"),
            bucket=deployment.bucket,
            queue_url=deployment.queue_url,
        )
        # Events first: the malformed one needs every delivery before the DLQ takes it.
        test_event = {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2024-01-01T00:00:00.000Z",
            "Bucket": deployment.bucket,
            "RequestId": "R",
            "HostId": "H",
        }
        late["sqs"].send_message(QueueUrl=deployment.queue_url, MessageBody=json.dumps(test_event))
        late["sqs"].send_message(QueueUrl=deployment.queue_url, MessageBody=MALFORMED_BODY)
        for case in CASES:
            if case.make is not None:
                pipeline.tracker.expect([case.key])
                late["s3"].put_object(Bucket=deployment.bucket, Key=case.key, Body=case.make())
        accounted = pipeline.tracker.wait(stall_timeout_s=90)
        queue_drained = pipeline.tracker.wait_until_queue_drained(timeout_s=60)
        pipeline.mapping.stop()
        items = _scan(deployment.client("dynamodb"), deployment.table)
        dead_letters = _drain(late["sqs"], deployment.dead_letter_queue_url)
        stats = pipeline.mapping.stats
    result = {
        "accounted": accounted,
        "queue_drained": queue_drained,
        "outcomes": {key: outcome.as_json() for key, outcome in pipeline.tracker.results.items()},
        "items_per_key": {key: sum(1 for item in items if item == key) for key in set(items)},
        "dead_letter_bodies": dead_letters,
        "crashes": stats.crashes,
        "function_errors": stats.function_errors,
    }
    output.write_text(json.dumps(result, ensure_ascii=False))


def _scan(dynamodb: Any, table: str) -> list[str]:
    keys = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        keys.extend(item["key"]["S"] for item in page["Items"])
    return keys


def _drain(sqs: Any, queue_url: str) -> list[str]:
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600).get(
            "Messages", []
        )
        if not messages:
            return bodies
        bodies.extend(message["Body"] for message in messages)


# --- the tests ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogue_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("catalogue") / "result.json"
    started = time.monotonic()
    process = subprocess.run(  # noqa: S603  this module, fixed arguments
        [sys.executable, "-m", "tests.e2e.test_bad_inputs", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    result = json.loads(output.read_text())
    result["seconds"] = time.monotonic() - started
    return result


def test_the_catalogue_has_at_least_twenty_rows() -> None:
    assert len(CASES) >= 20
    assert len({case.key for case in CASES}) == len(CASES)
    assert len(LONG_KEY.encode()) == 1000


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_object_gets_its_expected_outcome(case: Case, catalogue_run: dict[str, Any]) -> None:
    outcomes = catalogue_run["outcomes"]
    if case.outcome == NO_ITEM:
        assert case.key not in catalogue_run["items_per_key"]
        return
    row = outcomes[case.key]
    assert row["status"] == case.outcome, row
    assert catalogue_run["items_per_key"].get(case.key) == 1
    if case.outcome == CAPTIONED:
        assert row["caption"].strip(), "an empty caption"
        if case.expect is not None:
            assert row["caption"] == case.expect
    else:
        assert case.expect in row["error"].lower(), row["error"]
        assert "dead-lettered" not in row["error"], "a permanent problem must fail once, not be retried"


def test_nothing_crashes_hangs_or_is_retried_forever(catalogue_run: dict[str, Any]) -> None:
    assert catalogue_run["accounted"], "some uploads were never accounted for"
    assert catalogue_run["queue_drained"], "messages were still being retried"
    assert catalogue_run["crashes"] == 0
    uploaded_keys = {case.key for case in CASES if case.make is not None}
    assert set(catalogue_run["outcomes"]) == uploaded_keys


def test_the_malformed_event_is_dead_lettered_and_nothing_else(catalogue_run: dict[str, Any]) -> None:
    """Retried up to maxReceiveCount, then parked: not dropped, not retried forever."""
    assert catalogue_run["dead_letter_bodies"] == [MALFORMED_BODY]


if __name__ == "__main__":
    _drive(Path(sys.argv[1]))
