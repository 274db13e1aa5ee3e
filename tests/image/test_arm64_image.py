"""The arm64 image (`make image ARCH=arm64`), built and run on this x86 machine under QEMU user emulation: an
arm64 image of one platform, whose code runs as aarch64 under the arm64 RIE, and which gives the x86_64
image's captions for the same events.

Captions are compared as exact strings. Both images run the same fp32 ONNX graphs, greedy/beam search over
ONNX Runtime's x86 (AVX) and aarch64 (NEON) kernels, whose sums differ in the last bits (~1e-6 relative); a
caption could differ only where two tokens' scores are that close at some step. The demo model is far from
such ties: over the eight samples (448 rows x steps of its 4-beam search, measured on x86 by wrapping the
search's step callback, 2026-12-03) the smallest gap between a row's two most likely next tokens was 0.44
nats, the median 10, against float noise around 1e-5. So any difference is a real one and fails, naming
the key and both captions; no tolerance is applied.
The x86_64 reference is captioning-function:local (`make image`), run beside it on the same events.
"""
# ruff: noqa: S101, S603  (pytest asserts; the docker CLI with fixed arguments)

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from captioning.aws_events import s3_notification_event
from imagebuild.architectures import ARCHITECTURES
from imagebuild.registry import IMAGE_MANIFEST_TYPES, local_registry, manifest, push
from local.function_container import FunctionContainer, docker_cli, free_port
from tests.formats import format_files
from tests.image.conftest import (
    BUCKET,
    CREDENTIALS,
    DEFAULT_TAG,
    REGION,
    emulation_environment,
    function_environment,
    image_architecture,
    image_tags,
)
from tests.image.test_function_in_container import SAMPLES, sample_keys, upload

pytestmark = [pytest.mark.image, pytest.mark.slow]

ARM64 = ARCHITECTURES["arm64"]
TABLES = {"x86_64": "captions-x86-64", "arm64": "captions-arm64"}


def arm64_tags() -> list[str]:
    """The images to test here: tagged for arm64 (`make image-test` tags it captioning-function:arm64), or
    built for it; a tag that says arm64 but is not an arm64 image fails the first test."""
    return [tag for tag in image_tags() if ARM64.name in tag or image_architecture(tag) == ARM64.name]


@pytest.fixture(scope="module")
def arm64_tag() -> str:
    tags = arm64_tags()
    if not tags:
        pytest.skip("no arm64 image among $CAPTIONING_IMAGE_TAGS (`make image-test` builds one)")
    return tags[0]


def run_in_image(tag: str, script: str) -> str:
    result = subprocess.run(
        [docker_cli(), "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh"]
        + [*(f"--env={name}={value}" for name, value in emulation_environment(tag).items())]
        + [tag, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_arm64_image_is_one_arm64_platform_and_a_registry_gets_an_image_manifest(arm64_tag: str) -> None:
    inspected = json.loads(
        subprocess.run(
            [docker_cli(), "image", "inspect", arm64_tag], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    assert (inspected["Os"], inspected["Architecture"]) == ("linux", "arm64")
    with local_registry() as registry:
        reference = push(arm64_tag, registry)
        pushed = manifest(reference)
        repository, _, _ = reference.partition("/")[2].rpartition(":")
        blob = f"http://{registry}/v2/{repository}/blobs/{pushed['config']['digest']}"
        with urllib.request.urlopen(blob, timeout=30) as response:  # noqa: S310  a 127.0.0.1 registry
            config = json.loads(response.read())
    assert pushed["mediaType"] in IMAGE_MANIFEST_TYPES and "manifests" not in pushed, pushed["mediaType"]
    assert (config["os"], config["architecture"]) == ("linux", "arm64"), config.get("architecture")


def test_code_python_and_the_rie_are_aarch64(arm64_tag: str) -> None:
    """ELF e_machine 0xB7 is AArch64: the runtime emulator, Python and ONNX Runtime's extension are arm64
    binaries, and Python reports aarch64 (run under QEMU as the Neoverse N1 of Graviton2)."""
    script = (
        "import glob, platform, onnxruntime\n"
        "def machine(path):\n"
        "    with open(path, 'rb') as f:\n"
        "        return int.from_bytes(f.read(20)[18:20], 'little')\n"
        "ort = glob.glob('/var/task/onnxruntime/capi/onnxruntime_pybind11_state*.so')[0]\n"
        "paths = ['/usr/local/bin/aws-lambda-rie', '/var/lang/bin/python3', ort]\n"
        "print(platform.machine(), *[hex(machine(p)) for p in paths])\n"
    )
    found = run_in_image(arm64_tag, f'cd /var/task && python3 -c "{script}"').split()
    assert found == ["aarch64", "0xb7", "0xb7", "0xb7"], found


@pytest.fixture(scope="module")
def moto() -> Iterator[dict[str, Any]]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310  loopback
    urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310
    session = boto3.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    aws = {
        "s3": session.client("s3", endpoint_url=endpoint),
        "dynamodb": session.client("dynamodb", endpoint_url=endpoint),
        "endpoint_url": endpoint,
    }
    aws["s3"].create_bucket(Bucket=BUCKET)
    for table in TABLES.values():
        aws["dynamodb"].create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    try:
        yield aws
    finally:
        server.stop()


def captions(aws: dict[str, Any], table: str, keys: list[str]) -> dict[str, tuple[str, str]]:
    found = {}
    for key in keys:
        item = aws["dynamodb"].get_item(TableName=table, Key={"key": {"S": key}}, ConsistentRead=True)
        values = {name: next(iter(value.values())) for name, value in item.get("Item", {}).items()}
        found[key] = (values.get("status", "missing"), values.get("caption", ""))
    return found


def test_the_same_events_give_the_x86_image_s_captions(arm64_tag: str, moto: dict[str, Any]) -> None:
    """The events the x86 image's tests send (every sample under URL-encoded prefixes, every format), to
    both images; each writes to its own table, so neither sees the other's items as duplicates."""
    if image_architecture(DEFAULT_TAG) != "x86_64":
        pytest.fail(f"{DEFAULT_TAG} is not the x86_64 image to compare with: `make image`")
    samples = {key: (SAMPLES / "images" / name).read_bytes() for key, name in sample_keys().items()}
    formats = {f"formats/{name}": data for name, data in format_files().items()}
    records = [upload(moto, key, body) for key, body in {**samples, **formats}.items()]
    event = s3_notification_event(records)
    keys = [*samples, *formats]
    results: dict[str, dict[str, tuple[str, str]]] = {}
    for architecture, tag in (("x86_64", DEFAULT_TAG), ("arm64", arm64_tag)):
        environment = {
            **function_environment(moto["endpoint_url"], TABLES[architecture]),
            **emulation_environment(tag),
        }
        with FunctionContainer(tag, environment, memory_mb=3008) as function:
            assert function.invoke(event) == {"captioned": len(keys), "failed": 0, "duplicate": 0}
        results[architecture] = captions(moto, TABLES[architecture], keys)
    different = {
        key: {"x86_64": results["x86_64"][key], "arm64": results["arm64"][key]}
        for key in keys
        if results["x86_64"][key] != results["arm64"][key]
    }
    assert not different, f"arm64 captions differ from x86_64's: {different}"
    assert all(status == "captioned" and caption for status, caption in results["arm64"].values())
