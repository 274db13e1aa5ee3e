"""The build-time graph optimisation (captioning/preparation/optimise.py) on the demo model, fp32 and int8:
captions equal to the graphs as exported, CPU-independent graphs, the same bytes on disk, sessions opened
without optimisation, and the exported graphs kept when the captions would change."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import onnx
import onnxruntime
import pytest
from PIL import Image
from tokenizers import Tokenizer

from captioning.contract.model_files import ONNX_TOKENIZER
from captioning.function.generation import read_generation_config
from captioning.function.onnx_captioner import OnnxCaptioner, read_manifest
from captioning.function.onnx_family import runtime_class
from captioning.function.onnx_sessions import OPTIMISED_INDEX, file_sha256, load_sessions
from captioning.preparation import optimise
from captioning.preparation.export import export_onnx
from captioning.preparation.optimise import data_file, optimise_graphs
from captioning.preparation.verify import verification_images
from models import DEMO_MODEL_DIR
from models.samples import SAMPLES, sample_bytes


def captioner_over_load_sessions(model_dir: Path) -> OnnxCaptioner:
    """The captioner on the sessions the function opens (onnx_sessions.load_sessions)."""
    manifest = read_manifest(model_dir)
    family_class = runtime_class(manifest["family"])
    graphs = {role: manifest["graphs"][role] for role in family_class.graph_roles}
    return OnnxCaptioner(
        family_class(manifest, load_sessions(model_dir, graphs, num_threads=1)),
        Tokenizer.from_file(str(model_dir / ONNX_TOKENIZER)),
        manifest,
        read_generation_config(model_dir),
        model_id="demo",
        num_beams=None,
        max_length=None,
    )


def graph_names(model_dir: Path) -> list[str]:
    return sorted(set(read_manifest(model_dir)["graphs"].values()))


def images() -> list:
    """Noise and shapes of varied sizes, and the demo's own sample pictures (which it captions)."""
    samples = [Image.open(io.BytesIO(sample_bytes(sample))).convert("RGB") for sample in SAMPLES[:4]]
    return verification_images(6) + samples


@pytest.fixture(scope="module", params=["fp32", "int8"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp(f"demo-{request.param}") / "exported"
    with pytest.MonkeyPatch.context() as patch:  # the graphs as exported, whether export optimises or not
        patch.setattr(optimise, "optimise_graphs", lambda *args, **kwargs: False)
        export_onnx(DEMO_MODEL_DIR, directory, precision=request.param, check_images=2)
    assert not (directory / OPTIMISED_INDEX).exists()
    return directory


@pytest.fixture(scope="module")
def optimised(exported: Path) -> Path:
    directory = exported.with_name("optimised")
    shutil.copytree(exported, directory)
    pictures = images()
    assert optimise_graphs(
        directory, graph_names(directory), lambda d: OnnxCaptioner.load(d).token_ids(pictures)
    )
    return directory


def test_the_index_lists_every_graph_with_its_new_digest(exported: Path, optimised: Path) -> None:
    index = json.loads((optimised / OPTIMISED_INDEX).read_text())
    assert index["onnxruntime"] == onnxruntime.__version__
    assert index["level"] == "ORT_ENABLE_EXTENDED"
    assert set(index["graphs"]) == set(graph_names(optimised))
    for name, entry in index["graphs"].items():
        assert entry["sha256"] == file_sha256(optimised / name)
        assert entry["sha256"] != file_sha256(exported / name)  # rewritten, not just listed


def test_captions_equal_the_exported_graphs_through_the_functions_sessions(
    exported: Path, optimised: Path
) -> None:
    pictures = images()
    reference = OnnxCaptioner.load(exported, num_threads=1)
    candidate = captioner_over_load_sessions(optimised)
    assert candidate.token_ids(pictures) == reference.token_ids(pictures)
    assert candidate.caption(pictures) == reference.caption(pictures)
    for picture in pictures[:3]:  # one at a time as well as batched
        assert candidate.token_ids([picture]) == reference.token_ids([picture])


def test_the_function_opens_the_optimised_graphs_without_optimising_them(optimised: Path) -> None:
    captioner = captioner_over_load_sessions(optimised)
    levels = {
        role: session.get_session_options().graph_optimization_level
        for role, session in captioner.sessions.items()
    }
    assert levels and set(levels.values()) == {onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL}


def test_the_optimised_graphs_are_not_tied_to_the_build_machines_cpu(optimised: Path) -> None:
    domains = set()
    for name in graph_names(optimised):
        graph = onnx.load(str(optimised / name), load_external_data=False).graph
        domains |= {node.domain for node in graph.node}
    assert "com.microsoft" in domains  # ONNX Runtime's fused operators: the graphs were optimised
    assert "com.microsoft.nchwc" not in domains  # ORT_ENABLE_ALL's CPU-specific layouts


def test_the_optimised_graphs_take_no_more_bytes(exported: Path, optimised: Path) -> None:
    def size(directory: Path) -> int:
        return sum(
            path.stat().st_size
            for name in graph_names(directory)
            for path in (directory / name, data_file(directory / name))
        )

    assert size(optimised) <= 1.01 * size(exported)  # same weights; the exporter pads tensors more
    assert not list(optimised.glob(".optimise-*"))  # no work files left behind
    assert all(
        path.stat().st_mode & 0o044 == 0o044 for path in optimised.iterdir()
    )  # Lambda's user reads them


def test_changed_captions_keep_the_exported_graphs(exported: Path, tmp_path: Path) -> None:
    directory = tmp_path / "model"
    shutil.copytree(exported, directory)
    before = {path.name: file_sha256(path) for path in directory.iterdir()}
    answers = iter([["a cat"], ["a dog"]])
    assert optimise_graphs(directory, graph_names(directory), lambda _: next(answers)) is False
    assert {path.name: file_sha256(path) for path in directory.iterdir()} == before
    assert not (directory / OPTIMISED_INDEX).exists()


def test_the_build_optimises_and_captioner_load_opens_the_graphs_as_optimised(
    exported: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "prepared"
    export_onnx(DEMO_MODEL_DIR, directory, precision=read_manifest(exported)["precision"], check_images=2)
    assert (directory / OPTIMISED_INDEX).is_file()
    captioner = OnnxCaptioner.load(directory, num_threads=1)
    levels = {
        session.get_session_options().graph_optimization_level for session in captioner.sessions.values()
    }
    assert levels == {onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL}
    pictures = images()
    assert captioner.token_ids(pictures) == OnnxCaptioner.load(exported, num_threads=1).token_ids(pictures)
