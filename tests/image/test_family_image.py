"""A non-default family's onnx image under the Lambda Runtime Interface Emulator, against moto.

`make image-test` builds one image per family in its --families (imagebuild/image_test.py) from a tiny random
model of that family (tests/tiny_families.py), as `pulumi up` builds one from a `modelDir`: the model
stage exports the model to ONNX and verifies the graphs against transformers' generate. Here the
container captions the same kinds of events as the default model's image (a direct S3 notification with
URL-encoded keys, an SQS batch with a malformed message, every image format), and every caption must be
what transformers' generate gives on the tiny model itself, in this process, for the same bytes (the
torch-backed generic path of Captioner.load on the source directory, not the ONNX graphs). The image
holds no torch, transformers or torchvision and runs the family's exported graphs.
"""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from captioning.aws_events import s3_notification_event, sqs_record
from captioning.function.captioner import Captioner
from captioning.function.images import load_image
from imagebuild.function_image import image_size, layer_groups
from local.function_container import FunctionContainer
from tests.formats import format_files
from tests.image.conftest import (
    FamilyImage,
    aws_clients,
    emulation_environment,
    function_environment,
    moto_server,
    record,
)
from tests.image.test_built_image import run_in_image
from tests.image.test_function_in_container import EXPECTED, QUEUE_ARN, SAMPLES, item, sample_keys, upload

pytestmark = [pytest.mark.image, pytest.mark.slow]

BUILD_TIME_ONLY = ("torch", "transformers", "torchvision")


@pytest.fixture(scope="module")
def family_aws(family_image: FamilyImage) -> Iterator[dict[str, Any]]:
    with moto_server() as endpoint:
        yield aws_clients(endpoint)


@pytest.fixture(scope="module")
def family_function(family_image: FamilyImage, family_aws: dict[str, Any]) -> Iterator[FunctionContainer]:
    environment = {
        **function_environment(family_aws["endpoint_url"]),
        "MODEL_ID": f"tiny-{family_image.family}",
        **emulation_environment(family_image.tag),
    }
    with FunctionContainer(family_image.tag, environment, memory_mb=3008) as container:
        yield container


@pytest.fixture(scope="module")
def reference(family_image: FamilyImage) -> Captioner:
    """The tiny model's own generate, in this process (the generic path needs torch and transformers)."""
    captioner = Captioner.load(family_image.source)
    assert captioner.runtime != "onnx", captioner.runtime
    return captioner


def expected_captions(reference: Captioner, files: dict[str, bytes]) -> dict[str, str]:
    """key -> generate's caption of the image the function decodes from those bytes, one image at a time."""
    return {key: reference.caption([load_image(data)])[0] for key, data in files.items()}


def stored_captions(aws: dict[str, Any], keys: Any) -> dict[str, str | None]:
    return {key: (item(aws, key) or {}).get("caption") for key in keys}


@pytest.fixture(scope="module")
def first_invocation(
    family_image: FamilyImage, family_function: FunctionContainer, family_aws: dict[str, Any]
) -> dict[str, Any]:
    """Every sample in one direct S3 notification, invoked first (its latency includes the INIT)."""
    keys = sample_keys()
    files = {key: (SAMPLES / "images" / name).read_bytes() for key, name in keys.items()}
    event = s3_notification_event([upload(family_aws, key, data) for key, data in files.items()])
    started = time.monotonic()
    result = family_function.invoke(event)
    record(
        family_image.tag,
        init_duration_ms=family_function.init_duration_ms,
        first_invocation_s=round(time.monotonic() - started, 3),
        first_invocation_images=len(keys),
    )
    return {"result": result, "files": files}


def test_the_image_runs_the_familys_exported_graphs_without_torch_or_transformers(
    family_image: FamilyImage,
) -> None:
    manifest = json.loads(run_in_image(family_image.tag, "cat /opt/ml/model/onnx_model.json"))
    assert manifest["family"] == family_image.family, manifest
    found = run_in_image(
        family_image.tag,
        'cd "$LAMBDA_TASK_ROOT" && ls -d ' + " ".join(BUILD_TIME_ONLY) + " 2>/dev/null;"
        ' python -c "import importlib.util as u;'
        f' print(*[name for name in {BUILD_TIME_ONLY!r} if u.find_spec(name)])"',
    )
    assert found.strip() == "", f"build-time libraries in {family_image.tag}:\n{found}"
    groups = layer_groups(family_image.tag)
    assert groups["model"] > 0 and groups["libraries"] > groups["code"] > 0, groups
    record(family_image.tag, image_bytes=image_size(family_image.tag), layer_bytes=groups)


def test_direct_notification_captions_as_the_models_own_generate(
    first_invocation: dict[str, Any], family_aws: dict[str, Any], reference: Captioner
) -> None:
    files = first_invocation["files"]
    assert first_invocation["result"] == {"captioned": len(files), "failed": 0, "duplicate": 0}
    expected = expected_captions(reference, files)
    assert all(expected.values()), f"the tiny model captions nothing: {expected}"
    assert stored_captions(family_aws, files) == expected


def test_init_report_gives_the_init_duration(
    first_invocation: dict[str, Any], family_function: FunctionContainer
) -> None:
    assert family_function.init_duration_ms is not None, (
        f"no INIT REPORT line in the logs:\n{family_function.logs()[-3000:]}"
    )
    assert family_function.init_duration_ms > 0


def test_sqs_batch_names_exactly_the_malformed_message(
    first_invocation: dict[str, Any],
    family_function: FunctionContainer,
    family_aws: dict[str, Any],
    reference: Captioner,
) -> None:
    files = {
        f"queued/{position} {name}": (SAMPLES / "images" / name).read_bytes()
        for position, name in enumerate(sorted(EXPECTED)[:3])
    }
    records = [
        sqs_record(
            json.dumps(s3_notification_event([upload(family_aws, key, data)])),
            message_id=str(uuid.uuid4()),
            receipt_handle=f"receipt-{position}",
            queue_arn=QUEUE_ARN,
        )
        for position, (key, data) in enumerate(files.items())
    ]
    malformed_id = str(uuid.uuid4())
    records.insert(
        1, sqs_record("{not json", message_id=malformed_id, receipt_handle="receipt-bad", queue_arn=QUEUE_ARN)
    )
    assert family_function.invoke({"Records": records}) == {
        "batchItemFailures": [{"itemIdentifier": malformed_id}]
    }
    assert stored_captions(family_aws, files) == expected_captions(reference, files)


def test_every_format_is_captioned_as_the_models_own_generate(
    first_invocation: dict[str, Any],
    family_function: FunctionContainer,
    family_aws: dict[str, Any],
    reference: Captioner,
) -> None:
    """JPEG, PNG, GIF, WEBP, BMP, TIFF, HEIC/HEIF and AVIF (tests/formats.py)."""
    files = {f"formats/{name}": data for name, data in format_files().items()}
    event = s3_notification_event([upload(family_aws, key, data) for key, data in files.items()])
    assert family_function.invoke(event) == {"captioned": len(files), "failed": 0, "duplicate": 0}
    assert stored_captions(family_aws, files) == expected_captions(reference, files)
