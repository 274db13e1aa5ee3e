"""The BERT-style decoder families on ONNX Runtime: vision-encoder-decoder with a BERT decoder (vit-bert)
and BLIP, tiny random models (tests/tiny_families.py) exported with `python -m captioning.preparation`'s
exporter.

ONNX float32 captions must equal the torch runtime's (the model's own `generate`, through
captioning/function/generic_captioner.py) on images of varied sizes and modes, batched and one at a
time, for several beam widths, with and without a BLIP prompt; the default generation settings are those
of the model's own `generate()`; a fresh interpreter where torch and transformers cannot be imported
captions an exported directory the same; unsupported models are refused naming what, suggesting torch.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image, ImageDraw
from transformers.generation.utils import GenerationMixin

from captioning.contract.model_files import ONNX_DECODER, ONNX_ENCODER, ONNX_MANIFEST
from captioning.function.captioner import Captioner
from captioning.function.onnx_bert_decoder import BlipRuntime
from captioning.preparation.errors import PreparationRefused
from captioning.preparation.export import export_onnx
from tests import tiny_families

REPO_ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ("vit-bert", "blip")
BLIP_PROMPT = "a picture of"


def varied_images(count: int = 8, seed: int = 3) -> list[Image.Image]:
    """Noise and drawn shapes of different sizes and aspect ratios, in RGB, L, RGBA, P and CMYK."""
    rng = np.random.default_rng(seed)
    modes = ("RGB", "L", "RGBA", "P", "CMYK", "RGB")
    images = []
    for index in range(count):
        width, height = int(rng.integers(6, 260)), int(rng.integers(6, 260))
        if index % 2 == 0:
            image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        else:
            image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
            ImageDraw.Draw(image).ellipse((1, 1, width // 2 + 1, height // 2 + 1), fill=(20, 200, 30))
        images.append(image.convert(modes[index % len(modes)]))
    return images


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """family -> (torch source, its fp32 ONNX export); vit-bert's generation config asks for 3 beams."""
    root = tmp_path_factory.mktemp("bert-decoders")
    dirs = {}
    for family in FAMILIES:
        generation = {"num_beams": 3, "max_length": 12} if family == "vit-bert" else None
        source = tiny_families.BUILDERS[family](root / family, generation=generation)
        export_onnx(source, root / f"{family}-onnx", precision="fp32")
        dirs[family] = (source, root / f"{family}-onnx")
    return dirs


def _cases():
    for family in FAMILIES:
        for num_beams in (None, 1, 4):
            yield family, num_beams, None
    for num_beams in (None, 3):
        yield "blip", num_beams, BLIP_PROMPT


@pytest.mark.parametrize(("family", "num_beams", "prompt"), list(_cases()))
def test_onnx_captions_equal_the_torch_runtimes(exported, family: str, num_beams, prompt) -> None:
    source, onnx_dir = exported[family]
    images = varied_images()
    onnx_captioner = Captioner.load(onnx_dir, num_beams=num_beams, prompt=prompt)
    torch_captioner = Captioner.load(source, num_beams=num_beams, prompt=prompt)

    assert onnx_captioner.runtime == "onnx" and torch_captioner.runtime == "torch"
    assert onnx_captioner.num_beams == torch_captioner.num_beams
    expected = torch_captioner.caption(images)
    assert onnx_captioner.caption(images) == expected
    assert [onnx_captioner.caption([image])[0] for image in images] == expected
    assert len(set(expected)) > 1  # the images give different captions: the check can tell them apart


def test_a_blip_prompt_conditions_the_caption_and_is_not_repeated(exported) -> None:
    _, onnx_dir = exported["blip"]
    images = varied_images(4)
    plain = Captioner.load(onnx_dir).caption(images)
    prompted = Captioner.load(onnx_dir, prompt=BLIP_PROMPT).caption(images)

    assert prompted != plain
    assert not any(caption.startswith(BLIP_PROMPT) for caption in prompted)


def test_the_defaults_are_those_of_the_models_own_generate(exported, monkeypatch) -> None:
    settled: list[tuple[int, int]] = []
    settle = GenerationMixin._prepare_generated_length

    def recorded(self, generation_config, *args, **kwargs):
        result = settle(self, generation_config, *args, **kwargs)
        settled.append((result.num_beams, result.max_length))
        return result

    monkeypatch.setattr(GenerationMixin, "_prepare_generated_length", recorded)
    for family, prompt in (("vit-bert", None), ("blip", None), ("blip", BLIP_PROMPT)):
        source, onnx_dir = exported[family]
        settled.clear()
        Captioner.load(source, prompt=prompt).caption(varied_images(2))  # generate() given no settings
        onnx_captioner = Captioner.load(onnx_dir, prompt=prompt)
        assert {(onnx_captioner.num_beams, onnx_captioner.max_length)} == set(settled), (family, prompt)


def test_a_fresh_interpreter_without_torch_or_transformers_captions_the_same(
    exported, tmp_path: Path
) -> None:
    images = varied_images(6, seed=9)
    (tmp_path / "images.pickle").write_bytes(pickle.dumps(images))
    expected = {family: Captioner.load(exported[family][0]).caption(images) for family in FAMILIES} | {
        "blip-prompt": Captioner.load(exported["blip"][0], prompt=BLIP_PROMPT).caption(images)
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
captions = {{family: Captioner.load(path, prompt=prompt).caption(images)
            for family, path, prompt in json.loads(sys.argv[1])}}
assert not any(name.split(".")[0] in ("torch", "transformers") for name in sys.modules)
print(json.dumps(captions))
"""
    runs = [[family, str(exported[family][1]), None] for family in FAMILIES]
    runs.append(["blip-prompt", str(exported["blip"][1]), BLIP_PROMPT])
    result = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "-c", script, json.dumps(runs), str(tmp_path / "images.pickle")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected


def test_the_exporter_writes_the_family_and_its_graphs(exported) -> None:
    for family in FAMILIES:
        _, onnx_dir = exported[family]
        manifest = json.loads((onnx_dir / ONNX_MANIFEST).read_text())
        assert (manifest["format"], manifest["family"]) == (2, family)
        assert manifest["graphs"] == {"encoder": ONNX_ENCODER, "decoder": ONNX_DECODER}
        names = {path.name for path in onnx_dir.iterdir()}
        assert {f"{ONNX_ENCODER}.data", f"{ONNX_DECODER}.data", "tokenizer.json"} <= names
        assert not any(name.endswith(".safetensors") for name in names)


def test_the_tied_embedding_is_stored_once(exported) -> None:
    _, onnx_dir = exported["blip"]
    source_config = json.loads((onnx_dir / "config.json").read_text())["text_config"]
    vocab, hidden = source_config["vocab_size"], source_config["hidden_size"]
    shapes = [tuple(t.dims) for t in onnx.load(str(onnx_dir / ONNX_DECODER)).graph.initializer]
    assert sum(shape in {(vocab, hidden), (hidden, vocab)} for shape in shapes) == 1


def test_the_command_prepares_int8_graphs_whose_weight_matmuls_are_quantised(
    exported, tmp_path: Path
) -> None:
    source, _ = exported["blip"]
    output = tmp_path / "blip-int8"
    command = ["--runtime", "onnx", "--source", str(source), "--output", str(output), "--precision", "int8"]
    result = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "-m", "captioning.preparation", *command],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "(runtime onnx, int8;" in result.stdout
    for name in (ONNX_ENCODER, ONNX_DECODER):
        graph = onnx.load(str(output / name)).graph
        weights = {tensor.name for tensor in graph.initializer}
        assert not [n.name for n in graph.node if n.op_type == "MatMul" and set(n.input) & weights], name
        assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node), name
    decoder_weights = {t.name for t in onnx.load(str(output / ONNX_DECODER)).graph.initializer}
    assert "vocabulary_t_quantized" in decoder_weights and "vocabulary_t" not in decoder_weights
    captioner = Captioner.load(output, prompt=BLIP_PROMPT)
    assert captioner.precision == "int8"
    assert len(captioner.caption(varied_images(3))) == 3


def test_verification_catches_a_prompt_built_unlike_blips(exported, tmp_path: Path, monkeypatch) -> None:
    source, _ = exported["blip"]
    # keeping [SEP] at the end of the prompt, which BLIP's generate drops
    monkeypatch.setattr(
        BlipRuntime,
        "decoder_prompt",
        lambda self, prompt, tokenizer: (
            [int(self.manifest["decoder_start_token_id"])]
            + (list(tokenizer.encode(prompt).ids[1:]) if prompt else [])
        ),
    )
    with pytest.raises(PreparationRefused, match="first tokens for prompt='a picture of'") as refused:
        export_onnx(source, tmp_path / "out", precision="fp32")
    assert "Set runtime to torch" in str(refused.value)
    assert not (tmp_path / "out" / ONNX_MANIFEST).exists()


@pytest.mark.parametrize(
    ("family", "edit", "named"),
    [
        ("vit-bert", {"decoder": {"position_embedding_type": "relative_key"}}, "position_embedding_type"),
        ("vit-bert", {"decoder": {"hidden_act": "silu"}}, "activation 'silu'"),
        ("blip", {"text_config": {"hidden_act": "silu"}}, "BLIP text decoder activation 'silu'"),
    ],
)
def test_models_the_graphs_cannot_reproduce_are_refused(
    exported, tmp_path: Path, family: str, edit: dict, named: str
) -> None:
    source = tmp_path / "source"
    shutil.copytree(exported[family][0], source)
    config = json.loads((source / "config.json").read_text())
    for part, values in edit.items():
        config[part].update(values)
    (source / "config.json").write_text(json.dumps(config))

    result = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "captioning.preparation",
            "--source",
            str(source),
            "--output",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 2
    assert named in result.stderr and "Set runtime to torch" in result.stderr
    assert "Traceback" not in result.stderr
