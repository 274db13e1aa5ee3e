"""GIT on ONNX Runtime: a tiny random GitForCausalLM (tests/tiny_families.py) exported with
`python -m captioning.preparation`'s exporter (captioning/preparation/export_git.py), captioned by
captioning/function/onnx_git.py.

The exported graphs equal the torch modules they were traced from and the model's own forward (teacher
forced, image prefix included); ONNX float32 captions equal the torch runtime's (the model's own
`generate`) on images of varied sizes and modes, batched and one at a time, greedy and beam search, with
and without a prompt (never echoed); the vision tower runs once per image, not once per beam; the
defaults are those of `generate()` with no arguments; a fresh interpreter where torch and transformers
cannot be imported captions the same; a prompt built unlike the torch runtime's fails the build.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from transformers import GitForCausalLM
from transformers.generation.utils import GenerationMixin

from captioning.contract.model_files import ONNX_DECODER, ONNX_ENCODER, ONNX_MANIFEST
from captioning.function.captioner import Captioner
from captioning.function.onnx_git import GitRuntime
from captioning.preparation import family_export
from captioning.preparation.errors import PreparationRefused
from captioning.preparation.export import export_onnx
from captioning.preparation.export_git import GitDecoderStep, GitImageKeysValues, image_token_count
from tests import tiny_families
from tests.function.test_onnx_bert_decoder import varied_images

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMPT = "a picture of"


@pytest.fixture(scope="module", autouse=True)
def git_exportable():
    """Until captioning/contract/model_files.py lists git in ONNX_MODEL_TYPES (requested)."""
    types = family_export.ONNX_MODEL_TYPES
    if "git" in types:
        yield
        return
    with mock.patch.object(family_export, "ONNX_MODEL_TYPES", (*types, "git")):
        yield


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, git_exportable) -> tuple[Path, Path]:
    """(torch source, its fp32 ONNX export)."""
    root = tmp_path_factory.mktemp("git")
    source = tiny_families.build_git(root / "git")
    export_onnx(source, root / "git-onnx", precision="fp32")
    return source, root / "git-onnx"


def test_the_graphs_equal_the_torch_modules_and_the_models_forward(exported) -> None:
    source, onnx_dir = exported
    model = GitForCausalLM.from_pretrained(source).eval()
    encoder = onnxruntime.InferenceSession(str(onnx_dir / ONNX_ENCODER))
    decoder = onnxruntime.InferenceSession(str(onnx_dir / ONNX_DECODER))
    pixel_values = torch.from_numpy(np.random.default_rng(1).normal(size=(3, 3, 32, 32)).astype(np.float32))
    ids = torch.tensor([[2, 7, 9, 11, 13, 8, 6]] * 3)
    with torch.inference_mode():
        forward = torch.log_softmax(model(pixel_values=pixel_values, input_ids=ids).logits, dim=-1)
        forward = forward[:, image_token_count(model.config) :].numpy()
        image_kv_torch = GitImageKeysValues(model)(pixel_values).numpy()
        step = GitDecoderStep(model)
    (image_kv,) = encoder.run(None, {"pixel_values": pixel_values.numpy()})
    np.testing.assert_allclose(image_kv, image_kv_torch, rtol=1e-4, atol=1e-4)

    # a 3-token prompt in one step, then one token at a time: every position's log-probs as forward's
    past = np.zeros((2, 2, 3, 2, 0, 16), np.float32)
    length = 0
    for new in (3, 1, 2):
        tokens = ids[:, length : length + new]
        inputs = {
            "input_ids": tokens.numpy(),
            "position": np.array([length]),
            "past": past,
            "image_kv": image_kv,
        }
        logits, log_probs, past = decoder.run(None, inputs)
        with torch.inference_mode():
            expected = step(
                tokens, torch.tensor([length]), torch.from_numpy(inputs["past"]), torch.from_numpy(image_kv)
            )
        length += new
        np.testing.assert_allclose(logits, expected[0].numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(log_probs, forward[:, length - 1], rtol=1e-4, atol=1e-4)
        assert past.shape[4] == length

    # beams: 2 rows per image attend to their image's keys/values, stored once
    rows_past = np.repeat(past, 2, axis=2)
    inputs = {"input_ids": ids[:, length:].repeat_interleave(2, 0).numpy(), "position": np.array([length])}
    _, log_probs, _ = decoder.run(None, inputs | {"past": rows_past, "image_kv": image_kv})
    np.testing.assert_allclose(log_probs, np.repeat(forward[:, -1], 2, axis=0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("num_beams", "prompt"), [(None, None), (3, None), (None, PROMPT), (4, PROMPT)])
def test_onnx_captions_equal_the_torch_runtimes(exported, num_beams, prompt) -> None:
    source, onnx_dir = exported
    images = varied_images()
    onnx_captioner = Captioner.load(onnx_dir, num_beams=num_beams, prompt=prompt)
    torch_captioner = Captioner.load(source, num_beams=num_beams, prompt=prompt)

    assert onnx_captioner.runtime == "onnx" and torch_captioner.runtime == "torch"
    assert onnx_captioner.num_beams == torch_captioner.num_beams
    expected = torch_captioner.caption(images)
    assert onnx_captioner.caption(images) == expected
    assert [onnx_captioner.caption([image])[0] for image in images] == expected
    assert len(set(expected)) > 1  # the images give different captions: the check can tell them apart


def test_a_prompt_conditions_the_caption_and_is_not_repeated(exported) -> None:
    _, onnx_dir = exported
    images = varied_images(4)
    plain = Captioner.load(onnx_dir).caption(images)
    prompted = Captioner.load(onnx_dir, prompt=PROMPT).caption(images)

    assert prompted != plain
    assert not any(caption.startswith(PROMPT) for caption in prompted)


def test_the_vision_tower_runs_once_per_image_not_per_beam(exported) -> None:
    _, onnx_dir = exported
    captioner = Captioner.load(onnx_dir, num_beams=3, prompt=PROMPT)
    family = captioner.backend.family
    encoder = family.sessions["encoder"]
    images_seen = []

    class Counting:
        def run(self, names, inputs):
            images_seen.append(len(inputs["pixel_values"]))
            return encoder.run(names, inputs)

    with mock.patch.dict(family.sessions, {"encoder": Counting()}):
        captioner.caption(varied_images(5))
    assert sum(images_seen) == 5


def test_the_defaults_are_those_of_the_models_own_generate(exported, monkeypatch) -> None:
    settled: list[tuple[int, int]] = []
    settle = GenerationMixin._prepare_generated_length

    def recorded(self, generation_config, *args, **kwargs):
        result = settle(self, generation_config, *args, **kwargs)
        settled.append((result.num_beams, result.max_length))
        return result

    monkeypatch.setattr(GenerationMixin, "_prepare_generated_length", recorded)
    source, onnx_dir = exported
    for prompt in (None, PROMPT):
        settled.clear()
        Captioner.load(source, prompt=prompt).caption(varied_images(2))  # generate() given no settings
        onnx_captioner = Captioner.load(onnx_dir, prompt=prompt)
        assert {(onnx_captioner.num_beams, onnx_captioner.max_length)} == set(settled), prompt


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


def test_the_exporter_writes_the_family_and_its_graphs(exported) -> None:
    _, onnx_dir = exported
    manifest = json.loads((onnx_dir / ONNX_MANIFEST).read_text())
    assert (manifest["format"], manifest["family"], manifest["image_tokens"]) == (2, "git", 17)
    assert manifest["graphs"] == {"encoder": ONNX_ENCODER, "decoder": ONNX_DECODER}
    names = {path.name for path in onnx_dir.iterdir()}
    assert {f"{ONNX_ENCODER}.data", f"{ONNX_DECODER}.data", "tokenizer.json"} <= names
    assert not any(name.endswith(".safetensors") for name in names)


def test_int8_quantises_the_weight_matmuls_and_still_captions(exported, tmp_path: Path) -> None:
    source, _ = exported
    output = tmp_path / "git-int8"
    export_onnx(source, output, precision="int8")
    for name in (ONNX_ENCODER, ONNX_DECODER):
        graph = onnx.load(str(output / name)).graph
        weights = {tensor.name for tensor in graph.initializer}
        assert not [n.name for n in graph.node if n.op_type == "MatMul" and set(n.input) & weights], name
        assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node), name
    captioner = Captioner.load(output, prompt=PROMPT)
    assert captioner.precision == "int8"
    assert len(captioner.caption(varied_images(3))) == 3


def test_verification_catches_a_prompt_built_unlike_the_torch_runtimes(
    exported, tmp_path: Path, monkeypatch
) -> None:
    source, _ = exported
    # the prompt without GIT's leading [CLS]
    monkeypatch.setattr(
        GitRuntime,
        "decoder_prompt",
        lambda self, prompt, tokenizer: (
            list(tokenizer.encode(prompt, add_special_tokens=False).ids)
            if prompt
            else [int(self.manifest["decoder_start_token_id"])]
        ),
    )
    with pytest.raises(PreparationRefused, match="prompt='a picture of'") as refused:
        export_onnx(source, tmp_path / "out", precision="fp32")
    assert "Set runtime to torch" in str(refused.value)
    assert not (tmp_path / "out" / ONNX_MANIFEST).exists()


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ({"hidden_act": "silu"}, "hidden_act='silu'"),
        ({"num_image_with_embedding": 6}, "num_image_with_embedding=6"),
        ({"vision_config": {"hidden_act": "silu"}}, "vision_config.hidden_act='silu'"),
    ],
)
def test_models_the_graphs_cannot_reproduce_are_refused(
    exported, tmp_path: Path, edit: dict, named: str
) -> None:
    source = tmp_path / "source"
    shutil.copytree(exported[0], source)
    config = json.loads((source / "config.json").read_text())
    for key, value in edit.items():
        if isinstance(value, dict):
            config[key].update(value)
        else:
            config[key] = value
    (source / "config.json").write_text(json.dumps(config))
    with pytest.raises(PreparationRefused, match="Set runtime to torch") as refused:
        export_onnx(source, tmp_path / "o", precision="fp32")
    assert named in str(refused.value)
