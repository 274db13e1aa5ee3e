"""captioning/contract/model_files.py: the one rule for what a model directory holds (modelDir, prepare_model
--source, `python -m local --model`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from captioning.contract import model_files
from captioning.contract.model_files import (
    missing_model_files,
    model_directory_problem,
    prepared_onnx_precision,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = "weights (model.safetensors or pytorch_model.bin, or their model-*-of-* shards)"


def _make(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


@pytest.mark.parametrize(
    ("files", "missing"),
    [
        ({}, ["config.json", WEIGHTS]),
        ({"cat.jpg": "jpeg", "notes.txt": "x"}, ["config.json", WEIGHTS]),
        ({"config.json": "{}"}, [WEIGHTS]),
        ({"config.json": "{}", "tokenizer.json": "{}", "model.onnx": "graph"}, [WEIGHTS]),
        ({"model.safetensors": ""}, ["config.json"]),
        ({"config.json": "{}", "model.safetensors": ""}, []),
        ({"config.json": "{}", "pytorch_model.bin": ""}, []),
        ({"config.json": "{}", "model-00001-of-00002.safetensors": ""}, []),
        ({"config.json": "{}", "model.safetensors.index.json": '{"weight_map": {}}'}, [WEIGHTS]),
        (
            {
                "config.json": "{}",
                "model-00001-of-00002.safetensors": "",
                "model.safetensors.index.json": json.dumps(
                    {
                        "weight_map": {
                            "a": "model-00001-of-00002.safetensors",
                            "b": "model-00002-of-00002.safetensors",
                        }
                    }
                ),
            },
            ["model-00002-of-00002.safetensors (named in model.safetensors.index.json)"],
        ),
        (
            {"config.json": "{}", "pytorch_model.bin": "", "pytorch_model.bin.index.json": "not json"},
            ["a readable pytorch_model.bin.index.json (a JSON object with a weight_map)"],
        ),
        ({"onnx_model.json": "{}", "encoder.onnx": ""}, ["decoder_step.onnx", "tokenizer.json"]),
        ({"onnx_model.json": "{}", "encoder.onnx": "", "decoder_step.onnx": "", "tokenizer.json": "{}"}, []),
    ],
)
def test_what_is_missing_from_a_model_directory(
    files: dict[str, str], missing: list[str], tmp_path: Path
) -> None:
    assert missing_model_files(_make(tmp_path / "model", files)) == missing


def test_the_repository_s_directories_that_are_not_models_are_told_apart() -> None:
    assert missing_model_files(REPO_ROOT / "models" / "demo-shapes") == []
    assert model_directory_problem(REPO_ROOT / "models" / "demo-shapes") is None
    for not_a_model in ("samples", "captioning/preparation/hub_model", "models"):
        assert missing_model_files(REPO_ROOT / not_a_model), not_a_model


def test_the_problem_names_the_directory_what_is_missing_and_what_a_model_holds(tmp_path: Path) -> None:
    problem = model_directory_problem(_make(tmp_path / "only-config", {"config.json": "{}"}))
    assert problem is not None
    assert problem.startswith(f"no model in {tmp_path / 'only-config'}: missing weights (")
    assert "config.json" not in problem.split(";")[0]
    assert model_files.WHAT_A_MODEL_DIRECTORY_HOLDS in problem
    assert "onnx_model.json with encoder.onnx, decoder_step.onnx, tokenizer.json" in problem
    assert model_directory_problem(tmp_path / "nowhere") == (
        f"no model directory at {tmp_path / 'nowhere'} (it does not exist); "
        + model_files.WHAT_A_MODEL_DIRECTORY_HOLDS
    )
    (tmp_path / "a-file").write_text("x")
    assert "(it is a file)" in str(model_directory_problem(tmp_path / "a-file"))


def test_a_prepared_onnx_model_s_precision_comes_from_its_manifest(tmp_path: Path) -> None:
    assert (
        prepared_onnx_precision(_make(tmp_path / "a", {"onnx_model.json": '{"precision": "int8"}'})) == "int8"
    )
    assert prepared_onnx_precision(_make(tmp_path / "b", {"onnx_model.json": "[]"})) is None
    assert prepared_onnx_precision(tmp_path / "none") is None


def test_the_module_needs_only_the_standard_library() -> None:
    import ast

    tree = ast.parse(Path(model_files.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"__future__", "fnmatch", "json", "pathlib"}
