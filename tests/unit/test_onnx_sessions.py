"""captioning/function/onnx_sessions.py: which graphs count as optimised at build, the options each session
gets, and parallel creation; on small hand-written graphs (MatMul + Add with weights in `<graph>.data`)."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from captioning.function import onnx_sessions
from captioning.function.onnx_sessions import (
    OPTIMISED_INDEX,
    OPTIMISED_INDEX_FORMAT,
    create_sessions,
    file_sha256,
    graph_files,
    load_sessions,
    session_options,
)

LEVELS = onnxruntime.GraphOptimizationLevel


def write_graph(path: Path, seed: int, name: str = "affine") -> tuple[np.ndarray, np.ndarray]:
    """y = x @ W + b (W 64x64) with its weights in `<path>.data`; returns W and b."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((64, 64)).astype(np.float32)
    bias = rng.standard_normal(64).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", 64])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data", size_threshold=64)
    return weight, bias


def write_index(directory: Path, names: list[str], *, version: str = onnxruntime.__version__) -> None:
    graphs = {name: {"sha256": file_sha256(directory / name)} for name in names}
    index = {"format": OPTIMISED_INDEX_FORMAT, "onnxruntime": version, "graphs": graphs}
    (directory / OPTIMISED_INDEX).write_text(json.dumps(index))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    write_graph(tmp_path / "encoder.onnx", 1)
    write_graph(tmp_path / "decoder.onnx", 2)
    return tmp_path


GRAPHS = {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}


def test_session_options_turn_optimisation_off_only_for_graphs_optimised_at_build() -> None:
    assert session_options(2).graph_optimization_level == LEVELS.ORT_ENABLE_ALL
    options = session_options(3, optimised_at_build=True)
    assert options.graph_optimization_level == LEVELS.ORT_DISABLE_ALL
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 1
    assert options.enable_mem_pattern is False


def test_without_an_index_no_graph_counts_as_optimised(model_dir: Path) -> None:
    files = graph_files(model_dir, GRAPHS)
    assert {role: file.optimised_at_build for role, file in files.items()} == {
        "encoder": False,
        "decoder": False,
    }
    assert files["encoder"].path == model_dir / "encoder.onnx"


def test_graphs_the_index_lists_unchanged_count_as_optimised(model_dir: Path) -> None:
    write_index(model_dir, ["encoder.onnx"])
    files = graph_files(model_dir, GRAPHS)
    assert files["encoder"].optimised_at_build is True
    assert files["decoder"].optimised_at_build is False


def test_a_graph_replaced_since_the_build_is_optimised_at_load(
    model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_index(model_dir, ["encoder.onnx", "decoder.onnx"])
    write_graph(model_dir / "encoder.onnx", 3, name="another")
    with caplog.at_level(logging.WARNING, logger=onnx_sessions.__name__):
        files = graph_files(model_dir, GRAPHS)
    assert files["encoder"].optimised_at_build is False
    assert files["decoder"].optimised_at_build is True
    assert "encoder.onnx changed since it was optimised at build" in caplog.text


def test_an_index_from_another_onnxruntime_version_is_not_trusted(model_dir: Path) -> None:
    write_index(model_dir, ["encoder.onnx", "decoder.onnx"], version="0.0.1")
    assert not any(file.optimised_at_build for file in graph_files(model_dir, GRAPHS).values())


@pytest.mark.parametrize("content", ["not json", json.dumps({"format": 99, "graphs": {}}), "[]"])
def test_an_unreadable_index_is_ignored_with_a_warning(
    model_dir: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    (model_dir / OPTIMISED_INDEX).write_text(content)
    with caplog.at_level(logging.WARNING, logger=onnx_sessions.__name__):
        files = graph_files(model_dir, GRAPHS)
    assert not any(file.optimised_at_build for file in files.values())
    assert OPTIMISED_INDEX in caplog.text


def test_load_sessions_opens_optimised_graphs_without_optimisation_and_computes_the_same(
    model_dir: Path,
) -> None:
    weight, bias = write_graph(model_dir / "encoder.onnx", 4)
    write_index(model_dir, ["encoder.onnx"])
    sessions = load_sessions(model_dir, GRAPHS, num_threads=1)
    assert set(sessions) == {"encoder", "decoder"}
    levels = {
        role: session.get_session_options().graph_optimization_level for role, session in sessions.items()
    }
    assert levels == {"encoder": LEVELS.ORT_DISABLE_ALL, "decoder": LEVELS.ORT_ENABLE_ALL}
    assert sessions["encoder"].get_session_options().intra_op_num_threads == 1
    x = np.ones((2, 64), dtype=np.float32)
    (y,) = sessions["encoder"].run(None, {"x": x})
    np.testing.assert_allclose(y, x @ weight + bias, rtol=1e-5, atol=1e-4)


def test_sessions_are_created_in_parallel_threads(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    barrier = threading.Barrier(2, timeout=30)
    created_in = {}
    real_session = onnxruntime.InferenceSession

    def session(path: str, *args, **kwargs):  # each waits for the other: only parallel creation returns
        created_in[Path(path).name] = threading.get_ident()
        barrier.wait()
        return real_session(path, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    sessions = load_sessions(model_dir, GRAPHS, num_threads=1)
    assert set(sessions) == {"encoder", "decoder"}
    assert len(set(created_in.values())) == 2
    assert threading.get_ident() not in created_in.values()


def test_a_failing_session_is_raised(model_dir: Path) -> None:
    (model_dir / "decoder.onnx").write_bytes(b"not a graph")
    plans = {role: (model_dir / name, session_options(1)) for role, name in GRAPHS.items()}
    with pytest.raises(Exception, match="decoder.onnx"):
        create_sessions(plans)
