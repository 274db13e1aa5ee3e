"""The last build step of `--runtime onnx`: each graph rewritten as ONNX Runtime's optimisation of it.

ONNX Runtime optimises every graph each time a session opens it (fusions, constant folding: about a
second per GPT-2-size graph here). Done once at build and saved, at BUILD_OPTIMISATION_LEVEL
(ORT_ENABLE_EXTENDED: its output runs on any CPU; ALL's would be tied to the build machine's), and listed
in the index (captioning/function/onnx_sessions.py), the function opens these graphs with the optimisers
off. The graphs are rewritten in place, weights in `<graph>.data` beside them as before, so the model
directory and the image stay the same size. The captions must not change: they are taken before and after,
and on any difference the original graphs are put back and the build goes on without optimised graphs.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from captioning.function.onnx_sessions import (
    BUILD_OPTIMISATION_LEVEL,
    OPTIMISED_INDEX,
    OPTIMISED_INDEX_FORMAT,
    file_sha256,
)

EXTERNAL_DATA_MIN_BYTES = 1024
"""Initialisers from this size on go to `<graph>.data` (as the exporter stores them)."""

logger = logging.getLogger(__name__)


def data_file(graph: Path) -> Path:
    return graph.with_name(graph.name + ".data")


def write_optimised_graph(source: Path, target: Path) -> None:
    """ONNX Runtime's BUILD_OPTIMISATION_LEVEL optimisation of `source` saved as `target` (+ its .data)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, BUILD_OPTIMISATION_LEVEL)
    options.optimized_model_filepath = str(target)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", data_file(target).name
    )
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", str(EXTERNAL_DATA_MIN_BYTES)
    )
    options.add_session_config_entry("session.disable_prepacking", "1")  # not saved; only slows this down
    options.log_severity_level = 3
    onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def optimise_graphs(directory: Path, names: Iterable[str], captions: Callable[[Path], object]) -> bool:
    """Rewrite the graphs `names` in `directory` optimised and list them in the index, if
    `captions(directory)` (e.g. the captions or token ids of a few images) stays equal; True when done,
    False (a warning, the original graphs kept) when the captions changed."""
    import onnxruntime

    names = list(names)
    index_path = directory / OPTIMISED_INDEX
    index_path.unlink(missing_ok=True)  # a stale index must not mark the new graphs optimised
    before = captions(directory)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".optimise-") as work:
        optimised, originals = Path(work) / "optimised", Path(work) / "originals"
        optimised.mkdir()
        originals.mkdir()
        for name in names:
            write_optimised_graph(directory / name, optimised / name)
        for name in names:
            for path in (directory / name, data_file(directory / name)):
                if path.exists():
                    path.replace(originals / path.name)
            for path in (optimised / name, data_file(optimised / name)):
                if path.exists():
                    path.chmod(0o644)  # Lambda runs the function as a non-root user
                    path.replace(directory / path.name)
        entries = {name: {"sha256": file_sha256(directory / name)} for name in names}
        index = {
            "format": OPTIMISED_INDEX_FORMAT,
            "onnxruntime": onnxruntime.__version__,
            "level": BUILD_OPTIMISATION_LEVEL,
            "graphs": entries,
        }
        index_path.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        index_path.chmod(0o644)
        after = captions(directory)
        if after == before:
            return True
        logger.warning(
            "the optimised graphs caption differently (%r, the graphs as exported %r): keeping the exported"
            " graphs, which ONNX Runtime optimises at each load",
            after,
            before,
        )
        index_path.unlink()
        for name in names:
            for path in (directory / name, data_file(directory / name)):
                path.unlink(missing_ok=True)
            for path in (originals / name, data_file(originals / name)):
                if path.exists():
                    path.replace(directory / path.name)
        return False
