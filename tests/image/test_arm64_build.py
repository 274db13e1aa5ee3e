"""What `make image ARCH=arm64` decides before it builds (no Docker needed; run with the image tests): the
architectures it knows, the wheels it fetches for arm64, the runtimes it refuses there, and where the
Dockerfile's model stage runs."""
# ruff: noqa: S101

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from captioning.contract import constants
from imagebuild import wheelhouse
from imagebuild.architectures import ARCHITECTURES, architecture, host
from imagebuild.function_image import ImageOptions

REPO_ROOT = Path(__file__).resolve().parents[2]
ARM64 = ARCHITECTURES["arm64"]


def test_each_architecture_builds_one_platform_with_its_own_rie_and_wheels() -> None:
    assert {name: arch.platform for name, arch in ARCHITECTURES.items()} == {
        "x86_64": "linux/amd64",
        "arm64": "linux/arm64",
    }
    assert tuple(ARCHITECTURES) == constants.ARCHITECTURES  # one build recipe per architecture Lambda has
    assert all(ARCHITECTURES[name].platform == constants.PLATFORMS[name] for name in constants.ARCHITECTURES)
    assert ARM64.rie.endswith("aws-lambda-rie-arm64") and ARM64.debian == "arm64"
    assert all(tag.endswith("_aarch64") for tag in ARM64.wheel_platforms)
    with pytest.raises(ValueError, match="ARCH must be one of x86_64, arm64; got 'sparc'"):
        architecture("sparc")


def test_the_arm64_wheelhouse_holds_the_onnx_runtime_only_in_aarch64_wheels() -> None:
    if host() == ARM64:
        pytest.skip("on an arm64 machine arm64 is the native architecture")
    options = wheelhouse._platform_options("3.11", ARM64)
    platforms = [options[i + 1] for i, option in enumerate(options) if option == "--platform"]
    assert platforms == list(ARM64.wheel_platforms)
    assert "--only-binary=:all:" in options and "--extra-index-url" not in options  # no torch index
    names = [path.name for path in wheelhouse.requirement_files(ARM64)]
    assert names == ["requirements-onnx.txt", "requirements.txt"]  # the runtime's and awslambdaric
    assert wheelhouse.wheelhouse_dir("3.11", ARM64).name == "wheelhouse-py3.11-arm64"


def test_torch_on_arm64_is_refused_saying_why() -> None:
    problems = ImageOptions(runtime="torch", architecture="arm64").problems()
    assert len(problems) == 1 and "RUNTIME=torch with ARCH=arm64 is not built here" in problems[0]
    assert "onnx" in problems[0]
    assert ImageOptions(runtime="onnx", architecture="arm64").problems() == []


def test_make_image_refuses_an_unknown_architecture_without_a_traceback() -> None:
    result = subprocess.run(  # noqa: S603  this interpreter, fixed arguments
        [sys.executable, "-m", "imagebuild", "image", "--architecture", "riscv64"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "ARCH must be one of x86_64, arm64; got 'riscv64'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_model_stage_runs_on_the_build_platform_from_its_own_base() -> None:
    """The prepared model is platform-neutral: the arm64 image's model is prepared natively (no arm64 torch),
    and by default (BuildKit, AWS's multi-platform base) on the build machine's platform."""
    text = (REPO_ROOT / "captioning/function/Dockerfile").read_text()
    assert "ARG MODEL_STAGE_BASE_IMAGE=${BASE_IMAGE}" in text
    assert "ARG MODEL_STAGE_PLATFORM=${BUILDPLATFORM:-linux/amd64}" in text
    stages = re.findall(r"^FROM (.+)$", text, re.MULTILINE)
    assert stages == [
        "--platform=${MODEL_STAGE_PLATFORM} ${MODEL_STAGE_BASE_IMAGE} AS model",
        "${BASE_IMAGE} AS libraries",
        "${BASE_IMAGE} AS function",
    ]
