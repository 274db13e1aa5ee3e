"""The ONNX runtime on the tiny ViT + GPT-2 model: the exporter, the numpy beam search, runtime selection.

float32 ONNX captions must equal the torch fast path's and plain `generate`'s, token for token.
The fast checks of the parts (no export) are in tests/unit/test_onnx_units.py. An end-to-end module: exporting
the tiny model takes about a minute on 2 busy cores.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image, ImageDraw
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    VisionEncoderDecoderModel,
)
from transformers.generation.utils import GenerationMixin

from captioning.contract.model_files import ONNX_DECODER, ONNX_ENCODER, ONNX_MANIFEST
from captioning.function.captioner import Captioner, backend_for
from captioning.function.generation import UnsupportedGeneration, generation_from_config
from captioning.function.onnx_captioner import OnnxCaptioner, clean_up_tokenization
from captioning.preparation.export import export_onnx
from captioning.preparation.family_export import exporter_for
from models.tiny import build_vit_gpt2

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_LENGTH = 12


@pytest.fixture(scope="module")
def onnx_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("onnx") / "tiny-onnx"
    export_onnx(tiny_model_dir, output, precision="fp32")
    return output


@pytest.fixture(scope="module")
def onnx_int8_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("onnx8") / "tiny-onnx-int8"
    export_onnx(tiny_model_dir, output, precision="int8")
    return output


@pytest.fixture(scope="module")
def reference(tiny_model_dir: Path):
    """The tiny model as transformers loads it: processor, tokenizer, float32 model."""
    processor = AutoImageProcessor.from_pretrained(tiny_model_dir, backend="pil")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = VisionEncoderDecoderModel.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    return processor, tokenizer, model


def onnx_source(reference) -> Path:
    """The directory the reference model was loaded from."""
    return Path(reference[2].name_or_path)


def mixed_images(count: int, seed: int) -> list[Image.Image]:
    """Noise of different sizes, plain colours and drawn shapes: a batch of unlike pictures."""
    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        width, height = int(rng.integers(8, 200)), int(rng.integers(8, 200))
        if index % 3 == 0:
            images.append(Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)))
        elif index % 3 == 1:
            images.append(Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 256, 3))))
        else:
            image = Image.new("RGB", (width, height), (255, 255, 255))
            ImageDraw.Draw(image).ellipse((2, 2, width // 2 + 2, height // 2 + 2), fill=(200, 20, 30))
            images.append(image)
    return images


def plain_generate_ids(reference, images, **generate_kwargs) -> list[list[int]]:
    """transformers' own processor and float32 generate, one image per call, cut after eos."""
    processor, tokenizer, model = reference
    eos = generate_kwargs.get("eos_token_id", model.generation_config.eos_token_id)
    eos = {eos} if isinstance(eos, int) else set(eos)
    rows = []
    with torch.inference_mode():
        for image in images:
            pixel_values = processor(images=image, return_tensors="pt").pixel_values
            row = model.generate(pixel_values, **generate_kwargs)[0].tolist()
            end = next((index for index in range(1, len(row)) if row[index] in eos), len(row) - 1)
            rows.append(row[: end + 1])
    return rows


def plain_generate_captions(reference, images, **generate_kwargs) -> list[str]:
    _, tokenizer, _ = reference
    ids = plain_generate_ids(reference, images, **generate_kwargs)
    return [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]


# --- same captions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_beams", [1, 3, 5])
def test_fp32_onnx_equals_the_torch_path_and_plain_generate(
    onnx_dir: Path, tiny_model_dir: Path, reference, num_beams: int
) -> None:
    images = mixed_images(9, seed=num_beams)
    onnx_captioner = Captioner.load(onnx_dir, num_beams=num_beams, max_length=MAX_LENGTH)
    torch_captioner = Captioner.load(tiny_model_dir, num_beams=num_beams, max_length=MAX_LENGTH)

    expected = plain_generate_captions(reference, images, num_beams=num_beams, max_length=MAX_LENGTH)

    assert onnx_captioner.runtime == "onnx" and torch_captioner.runtime == "torch"
    assert onnx_captioner.caption(images) == expected
    assert torch_captioner.caption(images) == expected
    assert len(set(expected)) > 1, "the tiny model must tell images apart for this test to mean anything"


def test_onnx_token_ids_equal_generate_and_one_batch_equals_one_by_one(onnx_dir: Path, reference) -> None:
    images = mixed_images(7, seed=11)
    captioner = Captioner.load(onnx_dir, num_beams=4, max_length=MAX_LENGTH)

    batched = captioner.token_ids(images)

    assert batched == plain_generate_ids(reference, images, num_beams=4, max_length=MAX_LENGTH)
    assert batched == [captioner.token_ids([image])[0] for image in images]


@pytest.fixture(scope="module")
def frequent_token(reference) -> int:
    """A token the tiny model often generates (not eos): as a second eos id it ends captions early,
    so finished hypotheses compete with running ones (length penalty, early stopping, min length)."""
    _, _, model = reference
    ids = plain_generate_ids(reference, mixed_images(6, seed=5), num_beams=1, max_length=MAX_LENGTH)
    counts = np.bincount(
        [token for row in ids for token in row[1:]], minlength=model.config.decoder.vocab_size
    )
    counts[model.generation_config.eos_token_id] = 0
    return int(counts.argmax())


@pytest.mark.parametrize(
    "settings",
    [
        {"min_length": 9},
        {"second_eos": True},
        {"second_eos": True, "min_length": 6},
        {"second_eos": True, "length_penalty": 0.5},
        {"second_eos": True, "length_penalty": 2.0, "early_stopping": True},
        {"second_eos": True, "length_penalty": -1.0, "early_stopping": "never"},
        {"second_eos": True, "early_stopping": "never"},
        {"second_eos": True, "num_beams": 5, "early_stopping": True},
        {"second_eos": True, "num_beams": 1, "min_length": 4},
    ],
    ids=str,
)
def test_numpy_beam_search_reproduces_generate_settings(
    onnx_dir: Path, reference, frequent_token: int, settings: dict
) -> None:
    settings = dict(settings)
    images = mixed_images(6, seed=5)
    num_beams = settings.pop("num_beams", 3)
    captioner = OnnxCaptioner.load(onnx_dir, num_beams=num_beams, max_length=MAX_LENGTH)
    generate_kwargs = {"num_beams": num_beams, "max_length": MAX_LENGTH, **settings}
    if generate_kwargs.pop("second_eos", False):
        eos_ids = (reference[2].generation_config.eos_token_id, frequent_token)
        generate_kwargs["eos_token_id"] = list(eos_ids)
        captioner.generation = dataclasses.replace(captioner.generation, eos_token_ids=eos_ids)
    overrides = {k: v for k, v in settings.items() if k in ("min_length", "length_penalty", "early_stopping")}
    captioner.generation = dataclasses.replace(captioner.generation, **overrides)

    assert captioner.token_ids(images) == plain_generate_ids(reference, images, **generate_kwargs)


def test_onnx_pixels_are_exactly_the_image_processors(onnx_dir: Path, reference) -> None:
    processor = reference[0]
    images = [
        *mixed_images(5, seed=2),
        Image.new("RGB", (640, 480), (10, 200, 30)),
        Image.new("RGB", (7, 300)),
    ]
    captioner = OnnxCaptioner.load(onnx_dir)

    assert np.array_equal(
        captioner.pixels(images), processor(images=images, return_tensors="np").pixel_values
    )


def test_decoding_honours_clean_up_tokenization_spaces(onnx_dir: Path, reference) -> None:
    tokenizer = reference[1]
    text = "a dog , isn't it ? they 're here ! it 's one ."
    assert clean_up_tokenization(text) == tokenizer.clean_up_tokenization(text)
    captioner = OnnxCaptioner.load(onnx_dir)
    ids = [tokenizer(" a red circle . a blue square ", add_special_tokens=False)["input_ids"]]
    # transformers 5 skips the clean-up for byte-level BPE tokenizers even when it is configured.
    assert captioner.clean_up_tokenization_spaces is False
    assert captioner.decode(ids) == [tokenizer.decode(ids[0], skip_special_tokens=True).strip()]
    captioner.clean_up_tokenization_spaces = True
    assert captioner.decode(ids) == ["a red circle. a blue square"]


# --- what the exporter writes ---------------------------------------------------------------------------


def _initializer_shapes(path: Path) -> list[tuple[int, ...]]:
    return [tuple(tensor.dims) for tensor in onnx.load(str(path)).graph.initializer]


def test_the_tied_token_embedding_is_stored_once(onnx_dir: Path, reference) -> None:
    config = reference[2].config.decoder
    shapes = _initializer_shapes(onnx_dir / ONNX_DECODER)
    embedding_shapes = {(config.vocab_size, config.n_embd), (config.n_embd, config.vocab_size)}
    assert sum(shape in embedding_shapes for shape in shapes) == 1


def test_int8_quantises_every_weight_matmul_vocabulary_projection_included(onnx_int8_dir: Path) -> None:
    for name in (ONNX_ENCODER, ONNX_DECODER):
        graph = onnx.load(str(onnx_int8_dir / name)).graph
        weights = {tensor.name for tensor in graph.initializer}
        float_weight_matmuls = [
            node.name for node in graph.node if node.op_type == "MatMul" and set(node.input) & weights
        ]
        integer_matmuls = [
            node for node in graph.node if node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")
        ]
        assert float_weight_matmuls == [], name
        assert integer_matmuls, name
    # The tied embedding's lookup reads the int8 vocabulary matrix: no float32 copy is left behind.
    decoder_weights = {
        tensor.name for tensor in onnx.load(str(onnx_int8_dir / ONNX_DECODER)).graph.initializer
    }
    assert "vocabulary_t_quantized" in decoder_weights and "vocabulary_t" not in decoder_weights
    manifest = json.loads((onnx_int8_dir / ONNX_MANIFEST).read_text())
    assert manifest["precision"] == "int8"
    captioner = Captioner.load(onnx_int8_dir, precision="int8", num_beams=3, max_length=MAX_LENGTH)
    assert captioner.precision == "int8"
    assert len(captioner.caption(mixed_images(3, seed=1))) == 3


def test_the_exporter_writes_only_what_the_runtime_reads(onnx_dir: Path) -> None:
    names = {path.name for path in onnx_dir.iterdir()}
    assert {ONNX_ENCODER, ONNX_DECODER, ONNX_MANIFEST, "tokenizer.json", "generation_config.json"} <= names
    assert {f"{ONNX_ENCODER}.data", f"{ONNX_DECODER}.data"} <= names  # weights beside the graphs
    assert all(path.stat().st_mode & 0o444 == 0o444 for path in onnx_dir.iterdir())
    assert not any(name.endswith(".safetensors") for name in names)


# --- refusals -------------------------------------------------------------------------------------------


def test_cli_refuses_an_unsupported_model_and_says_to_use_torch(tmp_path: Path) -> None:
    source = build_vit_gpt2(tmp_path / "upcast")
    config = json.loads((source / "config.json").read_text())
    config["decoder"]["reorder_and_upcast_attn"] = True
    (source / "config.json").write_text(json.dumps(config))

    result = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "captioning.preparation",
            "--source",
            str(source),
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )

    assert result.returncode == 2
    assert "reorder_and_upcast_attn" in result.stderr and "Set runtime to torch" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / ONNX_MANIFEST).exists()


@pytest.fixture(scope="module")
def unset_generation_dirs(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """(torch source, its ONNX export) for the tiny model without a generation_config.json: transformers
    derives the generation config from config.json, which sets neither num_beams nor max_length."""
    root = tmp_path_factory.mktemp("unset-generation")
    source = root / "torch"
    shutil.copytree(tiny_model_dir, source)
    (source / "generation_config.json").unlink()
    export_onnx(source, root / "onnx", precision="fp32")
    return source, root / "onnx"


def test_onnx_defaults_are_those_of_the_torch_models_own_generate(
    unset_generation_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, exported = unset_generation_dirs
    settled: list[tuple[int, int]] = []
    settle = GenerationMixin._prepare_generated_length

    def recorded(self, generation_config, *args, **kwargs):
        result = settle(self, generation_config, *args, **kwargs)
        settled.append((result.num_beams, result.max_length))
        return result

    monkeypatch.setattr(GenerationMixin, "_prepare_generated_length", recorded)
    images = mixed_images(6, seed=11)
    reference = (
        AutoImageProcessor.from_pretrained(source, backend="pil"),
        AutoTokenizer.from_pretrained(source),
        VisionEncoderDecoderModel.from_pretrained(source, dtype=torch.float32).eval(),
    )
    expected = plain_generate_captions(reference, images)  # generate() with no arguments
    assert set(settled) == {(1, 21)}, "greedy, the start token + transformers' 20 new tokens"
    onnx_captioner = Captioner.load(exported)
    assert (onnx_captioner.num_beams, onnx_captioner.max_length) == settled[0]
    assert onnx_captioner.caption(images) == expected
    torch_captioner = Captioner.load(source)
    assert (torch_captioner.num_beams, torch_captioner.max_length) == settled[0]
    assert torch_captioner.caption(images) == expected


def test_unsupported_generation_settings_are_refused_by_name(onnx_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(onnx_dir, copy)
    generation = json.loads((copy / "generation_config.json").read_text())
    (copy / "generation_config.json").write_text(json.dumps({**generation, "constraints": [1]}))

    with pytest.raises(UnsupportedGeneration, match=r"constraints=\[1\]"):
        Captioner.load(copy)
    with pytest.raises(UnsupportedGeneration, match="do_sample=True, num_beam_groups=2"):
        generation_from_config({"do_sample": True, "num_beam_groups": 2}, num_beams=None, max_length=None)


def test_invalid_beams_and_lengths_are_refused(onnx_dir: Path) -> None:
    with pytest.raises(ValueError, match="num_beams must be a positive integer; got 0"):
        Captioner.load(onnx_dir, num_beams=0)
    with pytest.raises(ValueError, match="max_length must be an integer of at least 2"):
        Captioner.load(onnx_dir, max_length=1)


# --- runtime selection ----------------------------------------------------------------------------------


def test_the_directory_chooses_the_runtime(onnx_dir: Path, tiny_model_dir: Path) -> None:
    assert backend_for(onnx_dir) == "onnx"
    assert backend_for(tiny_model_dir) == "torch"


def test_generation_settings_default_to_the_models_generation_config(onnx_dir: Path) -> None:
    captioner = Captioner.load(onnx_dir)
    assert (captioner.num_beams, captioner.max_length) == (3, 12)  # models/tiny.py's generation config
    assert (Captioner.load(onnx_dir, num_beams=2, max_length=7).num_beams, 7) == (2, 7)


def test_onnx_refuses_a_prompt_and_bf16(onnx_dir: Path) -> None:
    with pytest.raises(ValueError, match="caption without a prompt"):
        Captioner.load(onnx_dir, prompt="a picture of")
    with pytest.raises(ValueError, match="precision 'bf16' is not available with runtime onnx"):
        Captioner.load(onnx_dir, precision="bf16")


def test_asking_another_precision_than_built_uses_the_built_one_with_a_warning(
    onnx_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="captioning.function.onnx_captioner"):
        captioner = Captioner.load(onnx_dir, precision="int8")
    assert captioner.precision == "fp32"
    assert len([record for record in caplog.records if "int8" in record.getMessage()]) == 1


def test_threads_follow_the_cpus_the_process_may_use(onnx_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    sessions = Captioner.load(onnx_dir).sessions
    assert sessions["encoder"].get_session_options().intra_op_num_threads == 1
    sessions = Captioner.load(onnx_dir, num_threads=2).sessions
    assert sessions["decoder"].get_session_options().intra_op_num_threads == 2


def test_an_onnx_caption_never_imports_torch_or_transformers(onnx_dir: Path) -> None:
    script = (
        "import sys\n"
        "HEAVY = ('torch', 'transformers', 'huggingface_hub', 'safetensors', 'onnx')\n"
        "from PIL import Image\n"
        "from captioning.function.captioner import Captioner\n"
        f"captioner = Captioner.load({str(onnx_dir)!r})\n"
        "images = [Image.new('RGB', (50, 40), (200, 10, 10)), Image.new('RGB', (9, 90))]\n"
        "captions = captioner.caption(images)\n"
        "assert captioner.runtime == 'onnx' and len(captions) == 2, captions\n"
        "heavy = sorted(name for name in sys.modules if name.split('.')[0] in HEAVY)\n"
        "print(heavy)\n"
    )
    result = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert result.stdout.strip() == "[]"


# --- the exporter's own check ---------------------------------------------------------------------------


def test_verification_fails_graphs_that_compute_another_function(
    onnx_dir: Path, reference, tmp_path: Path
) -> None:
    from captioning.preparation import verify
    from captioning.preparation.errors import PreparationRefused

    exporter = exporter_for("vit-gpt2")
    loaded = exporter.load(onnx_source(reference))
    other = exporter.load(build_vit_gpt2(tmp_path / "other", seed=1))

    verify.verify_against_torch(exporter, loaded, onnx_dir)  # the right model passes
    with pytest.raises(PreparationRefused, match="caption differently from the torch model") as refused:
        verify.verify_against_torch(exporter, other, onnx_dir)
    assert "Set runtime to torch" in str(refused.value)


def test_graph_log_probabilities_match_torch_to_float_noise(onnx_dir: Path, reference) -> None:
    from captioning.preparation import verify

    exporter = exporter_for("vit-gpt2")
    loaded = exporter.load(onnx_source(reference))
    images = mixed_images(4, seed=3)
    captioner = OnnxCaptioner.load(onnx_dir, num_beams=1)
    rows = captioner.token_ids(images)

    assert (
        verify.teacher_forced_gap(exporter, loaded, captioner, images, rows) < verify.NEAR_TIE_TOLERANCE / 10
    )


def test_near_ties_take_a_fresh_image_set_and_never_pass_alone(
    onnx_dir: Path, reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    from captioning.preparation import verify
    from captioning.preparation.errors import PreparationRefused

    exporter = exporter_for("vit-gpt2")
    loaded = exporter.load(onnx_source(reference))
    outcomes = iter([("num_beams=3", ["a"], ["b"], 1e-6), None])
    monkeypatch.setattr(verify, "_compare", lambda *args: next(outcomes))
    verify.verify_against_torch(exporter, loaded, onnx_dir)  # second set matched exactly

    monkeypatch.setattr(verify, "_compare", lambda *args: ("num_beams=3", ["a"], ["b"], 1e-6))
    with pytest.raises(PreparationRefused, match="all hit near-ties"):
        verify.verify_against_torch(exporter, loaded, onnx_dir)


# --- every exported family, as the independent check does it -----------------------------------

_BLOCKED_INTERPRETER = """
import importlib.abc, json, pickle, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "torchvision"):
            raise ImportError(f"{name} is blocked in this interpreter")
sys.meta_path.insert(0, Blocked())
from captioning.function.captioner import Captioner
images = pickle.loads(open(sys.argv[2], "rb").read())
runs = json.loads(sys.argv[1])
captions = [Captioner.load(path, prompt=prompt).caption(images) for path, prompt in runs]
assert not any(name.split(".")[0] in ("torch", "transformers") for name in sys.modules)
print(json.dumps(captions))
"""


def test_every_exported_family_captions_without_torch_like_generate(tmp_path: Path) -> None:
    """Tiny random models of every family the exporter supports, prepared with the command, captioned in
    a fresh interpreter where torch, transformers and torchvision cannot be imported, equal to the torch
    runtime (the model's own generate) on images of varied sizes and modes, with and without a prompt."""
    import pickle

    from tests.tiny_families import BUILDERS

    builders = {
        "vit-gpt2": build_vit_gpt2,
        **{name: BUILDERS[name] for name in ("vit-bert", "blip", "git", "florence2")},
    }
    prompts = {"blip": "a picture of", "git": "a picture of", "florence2": "<DETAILED_CAPTION>"}
    images = [
        image.convert(mode)
        for image, mode in zip(
            mixed_images(6, seed=21), ("RGB", "L", "RGBA", "P", "CMYK", "RGB"), strict=True
        )
    ]
    (tmp_path / "images.pickle").write_bytes(pickle.dumps(images))
    runs, expected = [], []
    for name, build in builders.items():
        source = build(tmp_path / name)
        output = tmp_path / f"{name}-onnx"
        subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
            [
                sys.executable,
                "-m",
                "captioning.preparation",
                "--source",
                str(source),
                "--output",
                str(output),
            ],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=True,
        )
        for prompt in (None, prompts.get(name)) if name in prompts else (None,):
            runs.append([str(output), prompt])
            # the torch fast path takes RGB only (the function's load_image converts every upload)
            rgb = [image.convert("RGB") for image in images]
            expected.append(Captioner.load(source, prompt=prompt).caption(rgb))
    result = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "-c", _BLOCKED_INTERPRETER, json.dumps(runs), str(tmp_path / "images.pickle")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected
    assert len(expected) == 8
