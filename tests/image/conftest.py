"""Fixtures of the image tests (`make image-test`): the built function image(s), a moto server on 127.0.0.1,
the function container under the RIE, and the report the summary is printed from.

Images: $CAPTIONING_IMAGE_TAGS (comma-separated; default captioning-function:local), the default model's;
$CAPTIONING_FAMILY_IMAGES (JSON, imagebuild.image_test.FAMILY_IMAGES_VARIABLE), the images of non-default
families' tiny models, each with its family and model directory (tests/image/test_family_image.py; no
such image, those tests are skipped as an empty parameter set). Report: a JSON file at
$CAPTIONING_IMAGE_REPORT, one object per image tag (nothing is written when unset). An image of another
architecture than this machine's (arm64) runs under QEMU user emulation, as the CPU Lambda runs it on
(QEMU_CPU, imagebuild.emulation.LAMBDA_CPUS).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from imagebuild.emulation import LAMBDA_CPUS
from imagebuild.image_test import FAMILY_IMAGES_VARIABLE
from local.function_container import FunctionContainer, docker_cli, free_port
from ops.aws import MOTO_CREDENTIALS, MOTO_REGION

DEFAULT_TAG = "captioning-function:local"
REGION = MOTO_REGION
BUCKET = "captioning-images"
TABLE = "captions"
CREDENTIALS = {
    **MOTO_CREDENTIALS,
    "AWS_SESSION_TOKEN": "testing",
}


def image_tags() -> list[str]:
    return [
        tag.strip() for tag in os.environ.get("CAPTIONING_IMAGE_TAGS", DEFAULT_TAG).split(",") if tag.strip()
    ]


@dataclass(frozen=True)
class FamilyImage:
    """The image of a non-default family's tiny model and the model directory it was built from."""

    tag: str
    family: str
    source: Path


def family_images() -> list[FamilyImage]:
    named = json.loads(os.environ.get(FAMILY_IMAGES_VARIABLE) or "{}")
    return [FamilyImage(tag, entry["family"], Path(entry["source"])) for tag, entry in named.items()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "image_tag" in metafunc.fixturenames:
        metafunc.parametrize("image_tag", image_tags(), scope="module")
    if "family_image" in metafunc.fixturenames:
        images = family_images()
        metafunc.parametrize("family_image", images, ids=[image.tag for image in images], scope="module")


def image_architecture(tag: str) -> str:
    """Lambda's name for the image's architecture (x86_64 or arm64), from its config."""
    result = subprocess.run(  # noqa: S603  the docker CLI, fixed arguments
        [docker_cli(), "image", "inspect", "--format", "{{.Architecture}}", tag],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"image {tag} is not built: `make image` (or `make image-test`, which builds it)")
    return {"amd64": "x86_64"}.get(result.stdout.strip(), result.stdout.strip())


def emulation_environment(tag: str) -> dict[str, str]:
    """QEMU_CPU for an image QEMU runs (arm64 on this x86 machine); nothing for a native one."""
    cpu = LAMBDA_CPUS.get(image_architecture(tag))
    return {"QEMU_CPU": cpu} if cpu else {}


def record(tag: str, **values: Any) -> None:
    """Add measurements of `tag` to the report file (read by `python -m imagebuild image-test`)."""
    path = os.environ.get("CAPTIONING_IMAGE_REPORT")
    if not path:
        return
    report_file = Path(path)
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    report.setdefault(tag, {}).update(values)
    report_file.write_text(json.dumps(report, indent=2, sort_keys=True))


@pytest.fixture(scope="session", autouse=True)
def docker_engine() -> None:
    """These tests need the Docker engine: fail (not skip) with what to do when it is not there."""
    try:
        answered = subprocess.run(  # noqa: S603  the docker CLI, fixed arguments
            [docker_cli(), "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except Exception as error:  # noqa: BLE001  any reason the CLI cannot run is the same failure
        pytest.fail(f"no Docker engine ({error}): run `make image-test`, which starts one")
    if answered.returncode != 0:
        pytest.fail("the Docker engine does not answer `docker info`: run `make image-test`, which starts it")


@pytest.fixture(scope="module")
def image_present(image_tag: str) -> str:
    result = subprocess.run(  # noqa: S603
        [docker_cli(), "image", "inspect", image_tag], capture_output=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"image {image_tag} is not built: `make image` (or `make image-test`, which builds it)")
    return image_tag


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1 (the container shares the host's network and reaches it there), reset to
    an empty account; yields its endpoint."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its state per process, not per server: each image starts from an empty account.
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310  loopback
    urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310
    try:
        yield endpoint
    finally:
        server.stop()


def aws_clients(endpoint: str) -> dict[str, Any]:
    """Clients of the moto server at `endpoint`, with the bucket and the captions table made."""
    session = boto3.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    s3 = session.client("s3", endpoint_url=endpoint)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    s3.create_bucket(Bucket=BUCKET)
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return {"s3": s3, "dynamodb": dynamodb, "endpoint_url": endpoint}


@pytest.fixture(scope="module")
def moto_endpoint(image_tag: str) -> Iterator[str]:
    """One moto server per image, so each image's tests start from an empty account."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def aws(moto_endpoint: str) -> dict[str, Any]:
    return aws_clients(moto_endpoint)


def function_environment(endpoint_url: str, table: str = TABLE) -> dict[str, str]:
    """The deployed function's environment, pointed at the moto server (model settings from the image)."""
    return {
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": "captioning-image-test",
        "TABLE_NAME": table,
        "MODEL_ID": "demo-shapes",
        "POWERTOOLS_SERVICE_NAME": "captioning",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "false",
    }


@pytest.fixture(scope="module")
def function(image_present: str, aws: dict[str, Any]) -> Iterator[FunctionContainer]:
    environment = {**function_environment(aws["endpoint_url"]), **emulation_environment(image_present)}
    container = FunctionContainer(image_present, environment, memory_mb=3008)
    with container:
        yield container
    logs = container.logs()
    if os.environ.get("CAPTIONING_IMAGE_LOGS"):
        Path(os.environ["CAPTIONING_IMAGE_LOGS"]).joinpath(
            image_present.replace(":", "_").replace("/", "_") + ".log"
        ).write_text(logs)
