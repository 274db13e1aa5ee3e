"""Florence-2 on ONNX Runtime: a tiny random Florence2ForConditionalGeneration (tests/tiny_families.py)
with Florence-2-base's kind of generation config (3 beams, no_repeat_ngram_size 3, forced eos), exported
with captioning/preparation/export_florence2.py and captioned by captioning/function/onnx_florence2.py.

The graphs equal the model's own forward (teacher forced); ONNX float32 captions equal the torch
runtime's on images of varied sizes and modes, batched and one at a time, greedy and beam search, for
<CAPTION>, <DETAILED_CAPTION> and <MORE_DETAILED_CAPTION>; the defaults are those of `generate()`; a
fresh interpreter where torch and transformers cannot be imported captions the same; int8 quantises the
decoder only; a prompt Florence2Processor refuses is refused at load.
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
from transformers import AutoProcessor, Florence2ForConditionalGeneration
from transformers.generation.utils import GenerationMixin

from captioning.contract.model_files import ONNX_DECODER, ONNX_ENCODER, ONNX_MANIFEST
from captioning.function.captioner import Captioner
from captioning.function.onnx_florence2 import InvalidTaskPrompt
from captioning.preparation import family_export
from captioning.preparation.export import export_onnx
from tests import tiny_families
from tests.function.test_onnx_bert_decoder import varied_images

REPO_ROOT = Path(__file__).resolve().parents[2]
TASKS = ("<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>")
GENERATION = {"num_beams": 3, "no_repeat_ngram_size": 3, "early_stopping": False}


@pytest.fixture(scope="module", autouse=True)
def florence2_exportable():
    """Until captioning/contract/model_files.py lists florence2 in ONNX_MODEL_TYPES (requested)."""
    types = family_export.ONNX_MODEL_TYPES
    if "florence2" in types:
        yield
        return
    with mock.patch.object(family_export, "ONNX_MODEL_TYPES", (*types, "florence2")):
        yield


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, florence2_exportable) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("florence2")
    source = tiny_families.build_florence2(root / "florence2", generation=GENERATION)
    export_onnx(source, root / "florence2-onnx", precision="fp32")
    return source, root / "florence2-onnx"


def test_the_graphs_equal_the_models_forward(exported) -> None:
    source, onnx_dir = exported
    model = Florence2ForConditionalGeneration.from_pretrained(source).eval()
    processor = AutoProcessor.from_pretrained(source)
    images = varied_images(3)
    inputs = processor(images=[i.convert("RGB") for i in images], text=["<CAPTION>"] * 3, return_tensors="pt")
    rows = torch.tensor([[2, 0, 60, 310, 358, 350, 369]] * 3)
    with torch.inference_mode():
        expected = torch.log_softmax(model(**inputs, decoder_input_ids=rows).logits, dim=-1).numpy()
    encoder = onnxruntime.InferenceSession(str(onnx_dir / ONNX_ENCODER))
    decoder = onnxruntime.InferenceSession(str(onnx_dir / ONNX_DECODER))
    text_ids = inputs["input_ids"][:, 17:].numpy()  # after the image tokens
    (cross_kv,) = encoder.run(None, {"pixel_values": inputs["pixel_values"].numpy(), "input_ids": text_ids})
    past, length = np.zeros((1, 2, 3, 2, 0, 16), np.float32), 0
    for new in (2, 1, 3, 1):
        feed = {"input_ids": rows[:, length : length + new].numpy(), "position": np.array([length])}
        _, log_probs, past = decoder.run(None, feed | {"past": past, "cross_kv": cross_kv})
        length += new
        np.testing.assert_allclose(log_probs, expected[:, length - 1], rtol=1e-4, atol=1e-4)
    # two beams per image read the image's cross keys/values, stored once
    feed = {"input_ids": np.repeat(rows[:, -1:].numpy(), 2, axis=0), "position": np.array([length - 1])}
    _, log_probs, _ = decoder.run(
        None, feed | {"past": np.repeat(past[:, :, :, :, :-1], 2, axis=2), "cross_kv": cross_kv}
    )
    np.testing.assert_allclose(log_probs, np.repeat(expected[:, -1], 2, axis=0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("num_beams", "prompt"), [(None, None), (1, None), (None, TASKS[1]), (4, TASKS[2]), (1, TASKS[1])]
)
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
    assert len(set(expected)) > 1


def test_the_task_changes_the_caption(exported) -> None:
    _, onnx_dir = exported
    images = varied_images(4)
    captions = [Captioner.load(onnx_dir, prompt=task).caption(images) for task in TASKS]
    assert captions[0] == Captioner.load(onnx_dir).caption(images)  # <CAPTION> is the default
    assert len({tuple(caption) for caption in captions}) == len(TASKS)


def test_the_defaults_are_those_of_the_models_own_generate(exported, monkeypatch) -> None:
    settled: list[tuple[int, int]] = []
    settle = GenerationMixin._prepare_generated_length

    def recorded(self, generation_config, *args, **kwargs):
        result = settle(self, generation_config, *args, **kwargs)
        settled.append((result.num_beams, result.max_length))
        return result

    monkeypatch.setattr(GenerationMixin, "_prepare_generated_length", recorded)
    source, onnx_dir = exported
    Captioner.load(source).caption(varied_images(2))
    onnx_captioner = Captioner.load(onnx_dir)
    assert {(onnx_captioner.num_beams, onnx_captioner.max_length)} == set(settled)
    assert onnx_captioner.num_beams == GENERATION["num_beams"]


def test_a_fresh_interpreter_without_torch_or_transformers_captions_the_same(
    exported, tmp_path: Path
) -> None:
    source, onnx_dir = exported
    images = varied_images(6, seed=9)
    (tmp_path / "images.pickle").write_bytes(pickle.dumps(images))
    expected = {task: Captioner.load(source, prompt=task).caption(images) for task in TASKS[:2]}
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
captions = {{task: Captioner.load(sys.argv[1], prompt=task).caption(images) for task in {list(TASKS[:2])!r}}}
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


def test_int8_quantises_the_decoder_and_keeps_the_encoder_float32(exported, tmp_path: Path) -> None:
    source, _ = exported
    output = tmp_path / "florence2-int8"
    export_onnx(source, output, precision="int8")
    manifest = json.loads((output / ONNX_MANIFEST).read_text())
    assert manifest["int8_graphs"] == [ONNX_DECODER]
    decoder = onnx.load(str(output / ONNX_DECODER)).graph
    encoder = onnx.load(str(output / ONNX_ENCODER)).graph
    assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in decoder.node)
    assert not any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in encoder.node)
    assert len(Captioner.load(output).caption(varied_images(3))) == 3


def test_a_prompt_the_processor_refuses_is_refused_at_load(exported) -> None:
    _, onnx_dir = exported
    with pytest.raises(InvalidTaskPrompt, match="<CAPTION> must be the whole prompt"):
        Captioner.load(onnx_dir, prompt="<CAPTION> a dog")
