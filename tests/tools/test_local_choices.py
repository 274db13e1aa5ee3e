"""The local pipeline gives the function a model directory's own runtime and precision, as an image built
from that directory would have them (the quiet happy path end to end: tests/e2e/test_local_quiet.py)."""

from __future__ import annotations

import json
from pathlib import Path

from captioning.contract.model_files import ONNX_MANIFEST
from captioning.function.captioner import directory_precision, directory_runtime
from local.lambda_runtime import directory_choices
from models import DEMO_MODEL_DIR


def test_the_demo_model_is_run_with_its_own_runtime() -> None:
    assert directory_runtime(DEMO_MODEL_DIR) == "torch"
    assert directory_precision(DEMO_MODEL_DIR) is None
    assert directory_choices(DEMO_MODEL_DIR) == {"RUNTIME": "torch", "PRECISION": "fp32"}


def test_onnx_graphs_are_run_with_the_precision_they_were_built_with(tmp_path: Path) -> None:
    (tmp_path / ONNX_MANIFEST).write_text(json.dumps({"format": 1, "precision": "int8"}))
    assert directory_choices(tmp_path) == {"RUNTIME": "onnx", "PRECISION": "int8"}
