"""Idefics3 / SmolVLM on ONNX Runtime: a tiny random Idefics3ForConditionalGeneration
(tests/tiny_families.py, with and without image splitting) exported with `python -m captioning.preparation`'s
exporter (captioning/preparation/export_idefics3.py), captioned by captioning/function/onnx_idefics3.py.

The vision graph equals the model's get_image_features on any number of tiles; ONNX float32 captions equal
the torch runtime's (the model's own `generate` on the processor's left-padded batch) on images of varied
sizes and modes (so of different tile counts), batched and one at a time, greedy and beam search, the
default instruction and another; the vision tower runs once per tile, not once per beam; the defaults are
those of `generate()` with no arguments; a fresh interpreter where torch and transformers cannot be
imported captions the same; what the graphs cannot reproduce is refused by name.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import transformers
from transformers import Idefics3Config, Idefics3ForConditionalGeneration

from captioning.contract.model_files import ONNX_DECODER, ONNX_ENCODER
from captioning.function import onnx_family
from captioning.function.captioner import Captioner
from captioning.preparation import family_export
from captioning.preparation.errors import PreparationRefused
from captioning.preparation.export import export_onnx
from captioning.preparation.export_idefics3 import Idefics3Exporter, idefics3_config_problems
from models.tiny import widen_weights
from tests import tiny_families
from tests.function.test_onnx_bert_decoder import varied_images

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMPT = "what does the image describe ?"


@pytest.fixture(scope="module", autouse=True)
def idefics3_registered():
    """Until X20 registers the family (requests-Z20.md): the three tables that name it."""
    types = family_export.ONNX_MODEL_TYPES
    with (
        mock.patch.dict(onnx_family.FAMILY_MODULES, {"idefics3": "captioning.function.onnx_idefics3"}),
        mock.patch.dict(
            family_export.EXPORTER_MODULES, {"idefics3": "captioning.preparation.export_idefics3"}
        ),
        mock.patch.object(family_export, "ONNX_MODEL_TYPES", tuple(dict.fromkeys((*types, "idefics3")))),
    ):
        yield


def build_grouped_query(model_dir: Path) -> Path:
    """The tiny model with SmolVLM's kind of text model: more query heads than key/value heads
    (SmolVLM-256M: 9 and 3), a head_dim other than hidden / heads, RoPE theta 100000, a tied LM head."""
    source = tiny_families.build_idefics3(model_dir)
    config = transformers.AutoConfig.from_pretrained(source)
    config.text_config.num_attention_heads = 4
    config.text_config.num_key_value_heads = 2
    config.text_config.head_dim = 16
    config.text_config.rope_parameters = {"rope_type": "default", "rope_theta": 100000.0}
    config.tie_word_embeddings = True  # the LM head is the token embedding: stored once in the graph
    model = Idefics3ForConditionalGeneration(config)
    assert model.lm_head.weight.data_ptr() == model.model.text_model.embed_tokens.weight.data_ptr()
    widen_weights(model, 1)
    model.generation_config = transformers.GenerationConfig.from_pretrained(source)
    model.save_pretrained(source)
    return source


VARIANTS = {
    "splitting": lambda path: tiny_families.build_idefics3(path),
    "no-splitting": lambda path: tiny_families.build_idefics3(path, image_splitting=False),
    "grouped-query": build_grouped_query,
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def exported(request, tmp_path_factory: pytest.TempPathFactory, idefics3_registered) -> tuple[Path, Path]:
    """(torch source, its fp32 ONNX export; the build verified it against generate)."""
    root = tmp_path_factory.mktemp("idefics3")
    source = VARIANTS[request.param](root / "model")
    export_onnx(source, root / "onnx", precision="fp32")
    return source, root / "onnx"


def test_the_vision_graph_equals_the_models_image_features(exported) -> None:
    source, onnx_dir = exported
    model = Idefics3ForConditionalGeneration.from_pretrained(source, dtype=torch.float32).eval()
    session = onnxruntime.InferenceSession(str(onnx_dir / ONNX_ENCODER))
    tile = tiny_families.IMAGE_SIZE
    for tiles in (1, 3, 5):
        pixels = np.random.default_rng(tiles).standard_normal((tiles, 3, tile, tile)).astype(np.float32)
        with torch.inference_mode():
            expected = model.model.get_image_features(torch.from_numpy(pixels)[None]).pooler_output[0]
        (got,) = session.run(None, {"pixel_values": pixels})
        np.testing.assert_allclose(got.reshape(expected.shape), expected.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("num_beams", "prompt"), [(None, None), (3, None), (None, PROMPT), (2, PROMPT)])
def test_onnx_captions_equal_the_torch_runtimes(exported, num_beams, prompt) -> None:
    source, onnx_dir = exported
    images = varied_images(6)
    onnx_captioner = Captioner.load(onnx_dir, num_beams=num_beams, prompt=prompt)
    torch_captioner = Captioner.load(source, num_beams=num_beams, prompt=prompt)

    assert onnx_captioner.runtime == "onnx" and torch_captioner.runtime == "torch"
    assert onnx_captioner.num_beams == torch_captioner.num_beams
    expected = torch_captioner.caption(images)
    assert onnx_captioner.caption(images) == expected
    assert [onnx_captioner.caption([image])[0] for image in images] == expected
    assert len(set(expected)) > 1  # the images give different captions: the check can tell them apart


def test_images_of_a_batch_have_different_tile_counts(exported) -> None:
    _, onnx_dir = exported
    family = Captioner.load(onnx_dir).backend.family
    counts = family.pixel_values(varied_images(6)).tile_counts
    assert len(set(counts)) > 1 if family.pixels.split else set(counts) == {1}


def test_the_vision_tower_runs_once_per_tile_not_per_beam(exported) -> None:
    _, onnx_dir = exported
    captioner = Captioner.load(onnx_dir, num_beams=3)
    family = captioner.backend.family
    encoder = family.sessions["encoder"]
    images = varied_images(5)
    tiles_seen = []

    class Counting:
        def run(self, names, inputs):
            tiles_seen.append(len(inputs["pixel_values"]))
            return encoder.run(names, inputs)

    with mock.patch.dict(family.sessions, {"encoder": Counting()}):
        captioner.caption(images)
    assert sum(tiles_seen) == sum(family.pixel_values(images).tile_counts)


def test_the_defaults_are_those_of_the_models_own_generate(exported) -> None:
    source, onnx_dir = exported
    onnx_captioner = Captioner.load(onnx_dir)
    torch_captioner = Captioner.load(source)
    assert onnx_captioner.num_beams == torch_captioner.num_beams == 1
    new_tokens = onnx_captioner.max_length - len(onnx_captioner.backend.decoder_prompt)
    assert new_tokens == torch_captioner.max_length == 20  # generate's default max_new_tokens
    assert onnx_captioner.backend.prompt == torch_captioner.prompt


def test_a_max_length_counts_new_tokens_as_on_the_torch_runtime(exported) -> None:
    """maxLength on a chat model counts only the caption's tokens on both runtimes (its prompt holds the
    image tokens), so the same setting gives the same captions."""
    source, onnx_dir = exported
    images = varied_images(3, seed=4)
    onnx_captioner = Captioner.load(onnx_dir, max_length=4)
    torch_captioner = Captioner.load(source, max_length=4)
    assert onnx_captioner.max_length - len(onnx_captioner.backend.decoder_prompt) == 4
    assert onnx_captioner.caption(images) == torch_captioner.caption(images)


def test_a_fresh_interpreter_without_torch_or_transformers_captions_the_same(
    exported, tmp_path: Path
) -> None:
    source, onnx_dir = exported
    images = varied_images(6, seed=9)
    (tmp_path / "images.pickle").write_bytes(pickle.dumps(images))
    expected = {
        str(prompt): Captioner.load(source, prompt=prompt).caption(images) for prompt in (None, PROMPT)
    }
    script = f"""
import importlib.abc, json, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "torchvision"):
            raise ImportError(f"{{name}} is blocked in this interpreter")
sys.meta_path.insert(0, Blocked())
sys.path.insert(0, {str(REPO_ROOT)!r})
import pickle
from captioning.function import onnx_family
onnx_family.FAMILY_MODULES.setdefault("idefics3", "captioning.function.onnx_idefics3")  # until registered
from captioning.function.captioner import Captioner
images = pickle.loads(open(sys.argv[2], "rb").read())
assert len({{image.mode for image in images}}) > 3
captions = {{str(prompt): Captioner.load(sys.argv[1], prompt=prompt).caption(images)
            for prompt in (None, {PROMPT!r})}}
assert not any(name.split(".")[0] in ("torch", "transformers") for name in sys.modules)
print(json.dumps(captions))
"""
    result = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "-c", script, str(onnx_dir), str(tmp_path / "images.pickle")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected


def test_an_empty_instruction_is_refused_at_load(exported) -> None:
    _, onnx_dir = exported
    with pytest.raises(ValueError, match="needs an instruction"):
        Captioner.load(onnx_dir, prompt="   ")


def test_models_the_graphs_cannot_reproduce_are_refused(tmp_path: Path) -> None:
    config = Idefics3Config(
        text_config={"model_type": "llama", "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}
    )
    assert any("rope_type='dynamic'" in problem for problem in idefics3_config_problems(config))
    assert idefics3_config_problems(Idefics3Config()) == []
    source = tiny_families.build_idefics3(tmp_path / "model", generation={"repetition_penalty": 1.3})
    with pytest.raises(PreparationRefused, match="repetition_penalty=1.3"):
        export_onnx(source, tmp_path / "onnx", precision="fp32")


def test_a_generated_image_token_is_a_plain_token_as_in_generate(exported) -> None:
    """generate merges image features on its first pass only: an <image> token the model generates later
    keeps its embedding (the graphs' merge is the prefix's alone)."""
    source, onnx_dir = exported
    captioner = Captioner.load(onnx_dir).backend
    exporter = Idefics3Exporter()
    loaded = exporter.load(source)
    images = varied_images(2)
    image_token = captioner.family.image_token_id
    rows = [captioner.decoder_prompt + [image_token, 5, image_token]] * len(images)
    expected = exporter.teacher_forced_log_probs(loaded, images, prompt=captioner.prompt, rows=rows)
    got = captioner.teacher_forced_log_probs(captioner.encode(images), np.array(rows, dtype=np.int64))
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_a_tied_lm_head_is_stored_once(exported) -> None:
    source, onnx_dir = exported
    config = transformers.AutoConfig.from_pretrained(source)
    vocabulary = config.text_config.vocab_size
    graph = onnx.load(str(onnx_dir / ONNX_DECODER)).graph
    tables = [tensor.name for tensor in graph.initializer if vocabulary in tensor.dims]
    assert len(tables) == (1 if config.tie_word_embeddings else 2), tables


@pytest.mark.parametrize("variant", ["splitting", "grouped-query"])
def test_int8_quantises_the_weight_matmuls_and_still_captions(tmp_path: Path, variant: str) -> None:
    source = VARIANTS[variant](tmp_path / "model")
    output = tmp_path / "int8"
    export_onnx(source, output, precision="int8")
    for name in (ONNX_ENCODER, ONNX_DECODER):
        graph = onnx.load(str(output / name)).graph
        weights = {tensor.name for tensor in graph.initializer}
        assert not [n.name for n in graph.node if n.op_type == "MatMul" and set(n.input) & weights], name
        assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node), name
    captioner = Captioner.load(output, prompt=PROMPT)
    assert captioner.precision == "int8"
    captions = captioner.caption(varied_images(3))
    assert len(captions) == 3 and any(captions)  # a random model may end one caption at once
