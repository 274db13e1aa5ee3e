"""A quiet happy path: `python -m local caption` prints no warning unless something is wrong.

The local command line chooses neither a runtime nor a precision, so the function it runs is given the model
directory's own (as an image built from that directory would be): the demo model (torch) and an int8 ONNX
directory caption without a word of warning. The deployed function still warns when its RUNTIME and its model
directory really disagree. (Which runtime and precision the local pipeline gives a directory:
tests/tools/test_local_choices.py.)
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from models import DEMO_MODEL_DIR
from ops.aws import MOTO_CREDENTIALS, MOTO_REGION
from tests.conftest import run_local

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO_ROOT / "samples" / "images"
WARNING = re.compile(r"warn", re.IGNORECASE)
"""A JSON log line at WARNING, a logging record printed as `WARNING:...`, a Python `...Warning:`."""


def warnings_in(output: str) -> list[str]:
    return [line for line in output.splitlines() if WARNING.search(line)]


def test_the_demo_prints_no_warning() -> None:
    """What `make demo` runs."""
    result = run_local("caption", str(SAMPLES_DIR))
    assert result.returncode == 0, result.stderr[-3000:]
    assert warnings_in(result.stderr) == []
    assert warnings_in(result.stdout) == []


@pytest.fixture(scope="module")
def int8_onnx_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from captioning.preparation.export import export_onnx

    output = tmp_path_factory.mktemp("quiet") / "tiny-onnx-int8"
    export_onnx(tiny_model_dir, output, precision="int8")
    return output


def test_an_int8_onnx_model_directory_captions_without_a_precision_warning(int8_onnx_dir: Path) -> None:
    result = run_local(
        "caption", str(SAMPLES_DIR / "red circle.png"), "--model", str(int8_onnx_dir), "--json"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [row["status"] for row in json.loads(result.stdout)] == ["captioned"]
    assert warnings_in(result.stderr) == []


def _function_init(model_dir: Path, runtime: str) -> str:
    """The deployed function's INIT (import captioning.function.main) with this RUNTIME; its log lines."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "RUNTIME", "PRECISION"))
    }
    environment.update(
        TABLE_NAME="captions",
        MODEL_DIR=str(model_dir),
        RUNTIME=runtime,
        AWS_DEFAULT_REGION=MOTO_REGION,
        **MOTO_CREDENTIALS,
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_TRACE_DISABLED="true",
    )
    result = subprocess.run(  # noqa: S603  this interpreter, fixed arguments
        [sys.executable, "-c", "import captioning.function.main"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_the_deployed_function_still_warns_when_runtime_and_directory_disagree() -> None:
    disagreeing = warnings_in(_function_init(DEMO_MODEL_DIR, "onnx"))
    assert len(disagreeing) == 1, disagreeing
    line = json.loads(disagreeing[0])
    assert line["level"] == "WARNING" and "the model directory and RUNTIME disagree" in line["message"]
    assert (line["model_runtime"], line["configured_runtime"]) == ("torch", "onnx")
    assert warnings_in(_function_init(DEMO_MODEL_DIR, "torch")) == []


def test_loading_onnx_graphs_without_a_precision_uses_theirs_without_a_warning(
    int8_onnx_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What models/evaluate.py and models/samples.py do with --model DIR."""
    from captioning.function.captioner import Captioner

    with caplog.at_level(logging.WARNING):
        captioner = Captioner.load(int8_onnx_dir)
    assert captioner.precision == "int8"
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
