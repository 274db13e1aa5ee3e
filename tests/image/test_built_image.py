"""What is inside the built function image: model -> libraries -> code, and nothing the build alone needs
(model preparation code, compilers, pip caches, the package index the build used)."""
# ruff: noqa: S101, S603  (pytest asserts; the docker CLI with fixed arguments)

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from imagebuild.function_image import history, image_size, layer_groups
from local.function_container import docker_cli
from tests.image.conftest import record

pytestmark = pytest.mark.image

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_in_image(tag: str, script: str) -> str:
    result = subprocess.run(
        [docker_cli(), "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", tag, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def config(tag: str) -> dict:
    result = subprocess.run(
        [docker_cli(), "image", "inspect", tag], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)[0]["Config"]


def test_layers_go_model_then_libraries_then_code(image_present: str) -> None:
    layers = [layer.created_by for layer in history(image_present)]
    model = max(i for i, step in enumerate(layers) if "/opt/ml/model" in step and "COPY" in step)
    libraries = max(
        i
        for i, step in enumerate(layers)
        if "/var/task" in step and "COPY" in step and "captioning" not in step
    )
    code = max(i for i, step in enumerate(layers) if "COPY" in step and "/var/task/captioning" in step)
    assert model < libraries < code, layers
    groups = layer_groups(image_present)
    assert groups["model"] > 0 and groups["libraries"] > groups["code"] > 0, groups
    record(image_present, image_bytes=image_size(image_present), layer_bytes=groups)


def test_no_build_arguments_or_package_index_in_the_history(image_present: str) -> None:
    text = "\n".join(layer.created_by for layer in history(image_present))
    for leaked in ("PIP_INDEX_URL", "TORCH_INDEX_URL", "127.0.0.1", "@", "token", "password"):
        assert leaked not in text, f"{leaked!r} in docker history of {image_present}"
    environment = "\n".join(config(image_present).get("Env") or [])
    assert "INDEX_URL" not in environment and "127.0.0.1" not in environment


def test_no_build_time_code_compilers_or_pip_caches(image_present: str) -> None:
    found = run_in_image(
        image_present,
        'cd "$LAMBDA_TASK_ROOT";'
        " ls -d captioning/preparation imagebuild captioning/function/download_model.py 2>/dev/null;"
        " for tool in gcc cc g++ c++ clang make; do command -v $tool; done;"
        " ls -d /root/.cache/pip /tmp/* /build 2>/dev/null; true",
    )
    assert found.strip() == "", f"in the image but not needed at run time:\n{found}"


def test_code_and_model_are_where_the_function_looks(image_present: str) -> None:
    environment = dict(entry.split("=", 1) for entry in config(image_present).get("Env") or [])
    assert environment["MODEL_DIR"] == "/opt/ml/model"
    assert environment["LAMBDA_TASK_ROOT"] == "/var/task"
    assert config(image_present)["Cmd"] == ["captioning.function.main.handler"]
    listing = run_in_image(image_present, "ls /opt/ml/model /var/task/captioning/function")
    assert "config.json" in listing and "main.py" in listing
    # Exactly the front door, the contract and the function: no component, mocks or build-time code.
    package = run_in_image(image_present, "ls /var/task/captioning").split()
    shipped = sorted(name for name in package if name != "__pycache__")
    assert shipped == ["__init__.py", "contract", "function"], shipped


def test_onnx_image_holds_no_torch(image_present: str) -> None:
    environment = dict(entry.split("=", 1) for entry in config(image_present).get("Env") or [])
    if environment.get("RUNTIME") != "onnx":
        pytest.skip(f"{image_present} runs {environment.get('RUNTIME')}")
    found = run_in_image(
        image_present, 'ls -d "$LAMBDA_TASK_ROOT"/torch "$LAMBDA_TASK_ROOT"/transformers 2>/dev/null; true'
    )
    assert found.strip() == ""


def test_everything_the_function_imports_with_tracing_and_metrics_on_is_there(image_present: str) -> None:
    """Deployed, tracing is on by default: Powertools' Tracer then imports the X-Ray SDK."""
    found = run_in_image(
        image_present,
        'cd "$LAMBDA_TASK_ROOT" && python -c "import aws_xray_sdk.core, boto3, aws_lambda_powertools.metrics;'
        " from aws_lambda_powertools import Tracer; Tracer(service='check', disabled=False); print('ok')\"",
    )
    assert found.strip() == "ok"


def test_a_base_without_lambda_task_root_fails_the_build_clearly(image_present: str, tmp_path) -> None:
    """Not silently copying the code elsewhere: the final stage's first step names the problem.

    BuildKit runs the stages side by side, so the check fails within a second (the classic builder would
    first run the model stage); the base is the built image with LAMBDA_TASK_ROOT emptied.
    """
    base = f"captioning-test-not-lambda:{image_present.replace(':', '-').replace('/', '-')}"
    (tmp_path / "Dockerfile").write_text(f"FROM {image_present}\nENV LAMBDA_TASK_ROOT=\n")
    subprocess.run(
        [docker_cli(), "build", "-q", "-t", base, str(tmp_path)],
        capture_output=True,
        check=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    try:
        unreachable = "http://127.0.0.1:9/simple/"  # nothing may be installed before the check fails
        result = subprocess.run(
            [
                docker_cli(),
                "build",
                "--network",
                "none",
                "--progress",
                "plain",
                "-f",
                "captioning/function/Dockerfile",
            ]
            + ["--build-arg", f"BASE_IMAGE={base}", "--build-arg", f"PIP_INDEX_URL={unreachable}"]
            + ["--build-arg", f"TORCH_INDEX_URL={unreachable}", "."],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO_ROOT,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            check=False,
        )
        if "buildx component is missing" in result.stderr:
            pytest.skip("this docker client has no BuildKit")
        assert result.returncode != 0
        assert "BASE_IMAGE must be a Lambda Python base image: LAMBDA_TASK_ROOT is not set" in result.stderr
    finally:
        subprocess.run([docker_cli(), "rmi", "-f", base], capture_output=True, check=False)
