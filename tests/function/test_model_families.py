"""Every captioning family on the torch runtime: tiny random models built from their configs (no Hub).

For each family `Captioner.load(dir).caption(images)` must equal the model's own `generate` + the
processor's decode on the same images (used the way each model card shows), batched and one at a time;
prompts per family; default generation settings those of the model's own `generate()` called with no
arguments (BLIP: its text decoder's); refusals with clear messages.
"""

from __future__ import annotations

import functools
import inspect
import json
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer
from transformers.generation.utils import GenerationMixin

from captioning.contract.constants import GENERATE_DEFAULT_NEW_TOKENS, GENERATE_DEFAULT_NUM_BEAMS
from captioning.function import generic_captioner
from captioning.function.captioner import Captioner
from captioning.function.generic_captioner import GenericCaptioner, UnsupportedModelError
from models.tiny import build_vit_gpt2
from tests import tiny_families

NUM_BEAMS = 2
MAX_LENGTH = 9
FAMILIES = tuple(tiny_families.BUILDERS)


def load(model_dir: Path, **settings):
    """Through the facade once it dispatches other families (it then takes `prompt`), else directly."""
    if "prompt" in inspect.signature(Captioner.load).parameters:
        return Captioner.load(model_dir, **settings)
    return GenericCaptioner.load(model_dir, **settings)


def _images() -> list[Image.Image]:
    """Noise images of different sizes and aspect ratios (Idefics3 splits them into different tile
    counts, so their prompts differ in length and the batch is padded)."""
    rng = np.random.default_rng(7)
    shapes = [(24, 40), (70, 20), (20, 90), (33, 33)]
    return [Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)) for shape in shapes]


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {name: build(root / name) for name, build in tiny_families.BUILDERS.items()}


@functools.cache
def _plain_model(model_dir: Path):
    return AutoModelForImageTextToText.from_pretrained(model_dir).eval()


@functools.cache
def _plain_processor(model_dir: Path, family: str):
    if family == "vit-bert":
        return AutoImageProcessor.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    return AutoProcessor.from_pretrained(model_dir)


def _own_generate(model_dir: Path, family: str, image: Image.Image, prompt: str | None, **generate) -> str:
    """One image through the model's own generate and its processor's decode, as each model card does."""
    model = _plain_model(model_dir)
    with torch.no_grad():
        if family == "vit-bert":
            image_processor, tokenizer = _plain_processor(model_dir, family)
            output = model.generate(
                image_processor(images=image, return_tensors="pt").pixel_values, **generate
            )
            return tokenizer.decode(output[0], skip_special_tokens=True).strip()
        processor = _plain_processor(model_dir, family)
        if family == "idefics3":
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
            text = processor.apply_chat_template(messages, add_generation_prompt=True)
            inputs = processor(text=text, images=[image], return_tensors="pt")
            if "max_length" in generate:
                generate["max_new_tokens"] = generate.pop("max_length")
            output = model.generate(**inputs, **generate)[:, inputs["input_ids"].shape[1] :]
        elif family == "git" and prompt:
            inputs = processor(images=image, return_tensors="pt")
            prompt_ids = processor(text=prompt, add_special_tokens=False).input_ids
            input_ids = torch.tensor([[processor.tokenizer.cls_token_id, *prompt_ids]])
            output = model.generate(pixel_values=inputs.pixel_values, input_ids=input_ids, **generate)
            output = output[:, input_ids.shape[1] :]
        elif family == "blip" and prompt:
            inputs = processor(images=image, text=prompt, return_tensors="pt")
            output = model.generate(**inputs, **generate)[:, inputs["input_ids"].shape[1] - 1 :]
        else:
            inputs = processor(images=image, text=prompt, return_tensors="pt")
            output = model.generate(**inputs, **generate)
        return processor.batch_decode(output, skip_special_tokens=True)[0].strip()


DEFAULT_PROMPTS = {"florence2": "<CAPTION>", "idefics3": generic_captioner.DEFAULT_PROMPTS["chat"]}


@pytest.mark.parametrize("family", FAMILIES)
def test_caption_equals_the_models_own_generate_batched_and_one_at_a_time(
    family: str, family_dirs: dict[str, Path]
) -> None:
    model_dir = family_dirs[family]
    captioner = load(model_dir, num_beams=NUM_BEAMS, max_length=MAX_LENGTH)
    images = _images()
    expected = [
        _own_generate(
            model_dir, family, image, DEFAULT_PROMPTS.get(family), num_beams=NUM_BEAMS, max_length=MAX_LENGTH
        )
        for image in images
    ]
    with mock.patch.object(captioner.model, "generate", wraps=captioner.model.generate) as generate:
        batched = captioner.caption(images)
    assert generate.call_count == 1, "all images of a call go through one generate"
    assert batched == expected
    assert [captioner.caption([image])[0] for image in images] == expected
    assert len(set(expected)) > 1, "the tiny model must caption different images differently"
    assert captioner.runtime == "torch", "the handler compares it with the RUNTIME it was deployed with"


def test_gpt2_vision_encoder_decoder_also_captions_on_the_generic_path(tmp_path: Path) -> None:
    model_dir = build_vit_gpt2(tmp_path / "vit-gpt2")
    generic = GenericCaptioner.load(model_dir, num_beams=3, max_length=12)
    fast = Captioner.load(model_dir, num_beams=3, max_length=12)
    images = _images()
    assert generic.caption(images) == fast.caption(images)


@pytest.mark.parametrize(
    ("family", "prompt"),
    [
        ("blip", "a picture of"),
        ("git", "a photo of"),
        ("florence2", "<DETAILED_CAPTION>"),
        ("idefics3", "Describe the image."),
    ],
)
def test_a_prompt_conditions_the_caption_and_is_not_echoed(
    family: str, prompt: str, family_dirs: dict[str, Path]
) -> None:
    model_dir = family_dirs[family]
    captioner = load(model_dir, num_beams=1, max_length=MAX_LENGTH, prompt=prompt)
    images = _images()[:2]
    expected = [
        _own_generate(model_dir, family, image, prompt, num_beams=1, max_length=MAX_LENGTH)
        for image in images
    ]
    assert captioner.caption(images) == expected
    default = load(model_dir, num_beams=1, max_length=MAX_LENGTH)
    assert default.caption(images) != expected, "the prompt must change what the model is asked"


@pytest.mark.parametrize("family", ["blip", "git"])
def test_a_prompt_is_cut_from_the_front_of_decoder_only_output(
    family: str, family_dirs: dict[str, Path]
) -> None:
    captioner = load(family_dirs[family], num_beams=1, max_length=MAX_LENGTH, prompt="a photo of")
    images = _images()[:2]
    inputs = captioner.inputs(images)
    with torch.no_grad():
        full = captioner.model.generate(**inputs.tensors, num_beams=1, max_length=MAX_LENGTH)
    echoed, generated = full[:, : inputs.echoed], full[:, inputs.echoed :]
    assert echoed.shape[1] == 4, "the start token and the three prompt words are cut, nothing more"
    assert captioner.tokenizer.decode(echoed[0], skip_special_tokens=True) == "a photo of"
    captions = captioner.tokenizer.batch_decode(generated, skip_special_tokens=True)
    assert captioner.caption(images) == [caption.strip() for caption in captions]


def test_default_prompts_per_family(family_dirs: dict[str, Path]) -> None:
    prompts = {family: load(family_dirs[family]).prompt for family in FAMILIES}
    assert prompts == {
        "vit-bert": None,
        "blip": None,
        "git": None,
        "florence2": "<CAPTION>",
        "idefics3": generic_captioner.DEFAULT_PROMPTS["chat"],
    }


def test_a_prompt_for_a_model_that_takes_none_is_refused(family_dirs: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="prompt='a photo of' is not allowed.*image alone"):
        load(family_dirs["vit-bert"], prompt="a photo of")


def test_generation_settings_come_from_generation_config_unless_given(tmp_path: Path) -> None:
    model_dir = tiny_families.build_git(tmp_path / "git", generation={"num_beams": 3, "max_length": 7})
    from_model = load(model_dir)
    assert (from_model.num_beams, from_model.max_length) == (3, 7)
    image = _images()[:1]
    assert from_model.caption(image) == [
        _own_generate(model_dir, "git", image[0], None, num_beams=3, max_length=7)
    ]
    given = load(model_dir, num_beams=2, max_length=5)
    assert (given.num_beams, given.max_length) == (2, 5)
    assert given.caption(image) == [
        _own_generate(model_dir, "git", image[0], None, num_beams=2, max_length=5)
    ]


@pytest.fixture
def generate_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """(generating class, num_beams, max_length) of every `generate` run, as transformers settles them
    after its defaults (the final max_length counts the start/prompt tokens)."""
    runs: list[tuple[str, int, int]] = []
    settle = GenerationMixin._prepare_generated_length

    def recorded(self, generation_config, *args, **kwargs):
        settled = settle(self, generation_config, *args, **kwargs)
        runs.append((type(self).__name__, settled.num_beams, settled.max_length))
        return settled

    monkeypatch.setattr(GenerationMixin, "_prepare_generated_length", recorded)
    return runs


@pytest.mark.parametrize("family", FAMILIES)
def test_default_settings_are_those_of_the_models_own_generate_called_with_no_arguments(
    family: str, family_dirs: dict[str, Path], generate_runs: list[tuple[str, int, int]]
) -> None:
    model_dir = family_dirs[family]
    captioner = load(model_dir)
    image = _images()[0]
    expected = _own_generate(model_dir, family, image, DEFAULT_PROMPTS.get(family))
    own = generate_runs.pop()
    assert captioner.caption([image]) == [expected]
    assert generate_runs == [own], "the captioner's generate runs with what the model's own one does"
    # Nothing in these models' generation configs sets beams or length: transformers' defaults apply.
    assert own[1] == captioner.num_beams == GENERATE_DEFAULT_NUM_BEAMS == 1
    assert captioner.length_settings == {"max_new_tokens": GENERATE_DEFAULT_NEW_TOKENS}


def test_blip_follows_its_text_decoder_not_generation_config_json(
    tmp_path: Path, generate_runs: list[tuple[str, int, int]]
) -> None:
    """BlipForConditionalGeneration.generate hands over to its text decoder's generate, which reads the
    text decoder's own generation config: a generation_config.json's num_beams / max_length do nothing."""
    model_dir = tiny_families.build_blip(tmp_path / "blip", generation={"num_beams": 3, "max_length": 7})
    assert json.loads((model_dir / "generation_config.json").read_text())["num_beams"] == 3
    captioner = load(model_dir)
    images = _images()
    expected = [_own_generate(model_dir, "blip", image, None) for image in images]
    assert {run[:2] for run in generate_runs} == {("BlipTextLMHeadModel", 1)}
    assert {run[2] for run in generate_runs} == {1 + GENERATE_DEFAULT_NEW_TOKENS}, "[DEC] + 20 tokens"
    assert captioner.caption(images) == expected
    assert (captioner.num_beams, captioner.length_settings) == (1, {"max_new_tokens": 20})
    given = load(model_dir, num_beams=3, max_length=7)
    assert given.caption(images[:1]) == [
        _own_generate(model_dir, "blip", images[0], None, num_beams=3, max_length=7)
    ]


def test_max_new_tokens_in_generation_config_is_what_generate_uses(tmp_path: Path) -> None:
    model_dir = tiny_families.build_git(tmp_path / "git", generation={"max_new_tokens": 5})
    captioner = load(model_dir)
    assert (captioner.num_beams, captioner.length_settings) == (1, {"max_new_tokens": 5})
    image = _images()[:1]
    assert captioner.caption(image) == [_own_generate(model_dir, "git", image[0], None)]
    assert load(model_dir, max_length=4).length_settings == {"max_length": 4}, "the given setting wins"


def test_int8_precision_quantises_linear_layers_and_still_captions(family_dirs: dict[str, Path]) -> None:
    captioner = load(family_dirs["blip"], num_beams=1, max_length=MAX_LENGTH, precision="int8")
    assert captioner.precision == "int8"
    assert any("quantized" in type(module).__module__ for module in captioner.model.modules())
    assert all(isinstance(text, str) for text in captioner.caption(_images()))


def test_remote_code_models_are_refused_at_load(tmp_path: Path, family_dirs: dict[str, Path]) -> None:
    model_dir = tmp_path / "remote"
    shutil.copytree(family_dirs["florence2"], model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_florence2.Florence2ForConditionalGeneration"}
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="trust_remote_code"):
        load(model_dir)


def test_an_unknown_model_type_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "my_own_captioner"}))
    with pytest.raises(UnsupportedModelError, match="'my_own_captioner'.*blip, git, florence2"):
        GenericCaptioner.load(tmp_path)


def test_a_chat_model_without_its_chat_template_still_gets_the_image_and_the_instruction(
    tmp_path: Path, family_dirs: dict[str, Path]
) -> None:
    model_dir = tmp_path / "no-template"
    shutil.copytree(family_dirs["idefics3"], model_dir)
    (model_dir / "chat_template.jinja").unlink()
    captioner = load(model_dir, num_beams=1, max_length=4)
    assert captioner.family == "chat"
    assert captioner._chat_text == "<image>" + generic_captioner.DEFAULT_PROMPTS["chat"]
    assert len(captioner.caption(_images()[:2])) == 2
