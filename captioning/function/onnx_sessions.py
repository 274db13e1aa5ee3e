"""ONNX Runtime sessions for a prepared model's graphs: their options, and opening them quickly.

Creating a session is mostly ONNX Runtime's graph optimisation and the pre-packing of MatMul weights
(bench/onnx_load.py profiles it). So the build optimises each graph once
(captioning/preparation/optimise.py): at ORT_ENABLE_EXTENDED, the highest level whose output does not depend
on the build machine's CPU (ORT_ENABLE_ALL writes CPU-specific NCHWc layouts), rewritten in place, and listed
in `optimised_graphs.json` with the ONNX Runtime version that wrote it and each graph file's SHA-256. A graph
listed there, unchanged since, under the same ONNX Runtime version, is opened with the optimisers off; any
other graph (an older build, a file replaced since, another ONNX Runtime) is optimised at load as before,
which is slower but gives the same results. The sessions of a model are created in parallel threads (ONNX
Runtime releases the GIL while it initialises a session). Pre-packing stays on: without it a session opens
in milliseconds but every caption is slower (docs/performance.md has the figures).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import onnxruntime

OPTIMISED_INDEX = "optimised_graphs.json"
"""Written by captioning/preparation/optimise.py beside the graphs it optimised."""
OPTIMISED_INDEX_FORMAT = 1
BUILD_OPTIMISATION_LEVEL = "ORT_ENABLE_EXTENDED"
"""The level the build optimises at (a GraphOptimizationLevel name): not ALL, whose output is CPU-specific."""
LOAD_OPTIMISATION_LEVEL = "ORT_ENABLE_ALL"
"""The level a graph that was not optimised at build is opened with (ONNX Runtime's default)."""
OPTIMISED_LOAD_LEVEL = "ORT_DISABLE_ALL"
"""The level a graph optimised at build is opened with: everything up to EXTENDED is done; ALL's one
addition (NCHWc layouts for convolutions: ViT's patch embedding) changed no caption, and its load and
caption times differed from this level's only within the shared machine's noise (bench/onnx_load.py)."""
PROVIDERS = ("CPUExecutionProvider",)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphFile:
    """A graph to open: its path, and whether the build optimised it (and it is unchanged since)."""

    path: Path
    optimised_at_build: bool


def session_options(num_threads: int, *, optimised_at_build: bool = False) -> onnxruntime.SessionOptions:
    """Options for one session; `optimised_at_build`: the graph needs no optimisation at load."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only in the function's logs
    # Shapes change every step (the cache grows): planned memory patterns never fit, and the arena kept
    # growing with them (measured: 1.97 -> 2.54 GB peak over two batches of 10; 1.94 GB stable without).
    options.enable_mem_pattern = False
    level = OPTIMISED_LOAD_LEVEL if optimised_at_build else LOAD_OPTIMISATION_LEVEL
    options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, level)
    return options


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_optimised_index(model_dir: str | os.PathLike[str]) -> dict[str, str]:
    """{graph file name: SHA-256} of the graphs the build optimised, when this ONNX Runtime wrote them;
    empty when there is no index, it is unreadable, or another ONNX Runtime version wrote it."""
    path = Path(model_dir) / OPTIMISED_INDEX
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as problem:
        logger.warning("%s unreadable (%s): optimising the graphs at load instead", path, problem)
        return {}
    if not isinstance(index, dict) or index.get("format") != OPTIMISED_INDEX_FORMAT:
        index = {}
    graphs = index.get("graphs")
    if not isinstance(graphs, dict):
        logger.warning("%s: not an index this runtime reads; optimising the graphs at load instead", path)
        return {}
    if index.get("onnxruntime") != onnxruntime.__version__:
        logger.info(
            "%s: graphs optimised by onnxruntime %s, this is %s; optimising them again at load",
            path,
            index.get("onnxruntime"),
            onnxruntime.__version__,
        )
        return {}
    return {name: entry.get("sha256") for name, entry in graphs.items() if isinstance(entry, dict)}


def graph_files(model_dir: str | os.PathLike[str], graphs: Mapping[str, str]) -> dict[str, GraphFile]:
    """{role: GraphFile} for {role: graph file name}: each file marked optimised when the index lists
    it with the file's current SHA-256 (the graph files without their weights: small, hashed quickly)."""
    directory = Path(model_dir)
    index = read_optimised_index(directory)
    files = {}
    for role, name in graphs.items():
        path = directory / name
        optimised = name in index and file_sha256(path) == index[name]
        if name in index and not optimised:
            logger.warning("%s changed since it was optimised at build; optimising it at load", path)
        files[role] = GraphFile(path, optimised)
    return files


def create_sessions(
    plans: Mapping[str, tuple[Path, onnxruntime.SessionOptions]], *, parallel: bool = True
) -> dict[str, onnxruntime.InferenceSession]:
    """{role: session} for {role: (graph path, options)}, created in parallel threads unless not
    `parallel`; the first failure is raised once all have finished."""

    def create(plan: tuple[Path, onnxruntime.SessionOptions]) -> onnxruntime.InferenceSession:
        path, options = plan
        return onnxruntime.InferenceSession(str(path), options, providers=list(PROVIDERS))

    if not parallel or len(plans) < 2:
        return {role: create(plan) for role, plan in plans.items()}
    with ThreadPoolExecutor(max_workers=len(plans), thread_name_prefix="onnx-session") as pool:
        futures = {role: pool.submit(create, plan) for role, plan in plans.items()}
        return {role: future.result() for role, future in futures.items()}


def load_sessions(
    model_dir: str | os.PathLike[str], graphs: Mapping[str, str], *, num_threads: int
) -> dict[str, onnxruntime.InferenceSession]:
    """{role: session} for a prepared model's {role: graph file name}: build-time optimised graphs opened
    without optimisation, all sessions created in parallel, each running on `num_threads` threads."""
    files = graph_files(model_dir, graphs)
    plans = {
        role: (file.path, session_options(num_threads, optimised_at_build=file.optimised_at_build))
        for role, file in files.items()
    }
    return create_sessions(plans)
