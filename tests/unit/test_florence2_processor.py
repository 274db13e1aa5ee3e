"""Florence-2's processor without transformers (captioning/function/onnx_florence2.py) equals
Florence2Processor: pixel values bit for bit over sizes and modes, the text encoder's input ids (after
the image tokens) for every task token, tasks with an input and free text, and its refusal of a task
token with more text; the manifest's task tables are the processor's own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import transformers
from PIL import Image
from tokenizers import Tokenizer

from captioning.function.onnx_florence2 import Florence2Runtime, InvalidTaskPrompt, task_text
from captioning.preparation.export_florence2 import Florence2Exporter
from captioning.preparation.family_export import Loaded
from tests import tiny_families
from tests.unit.test_git_processor import MODES, _image

PROMPTS = [
    "<CAPTION>",
    "<DETAILED_CAPTION>",
    "<MORE_DETAILED_CAPTION>",
    "<OCR>",
    "<OD>",
    "<CAPTION_TO_PHRASE_GROUNDING> a red circle",
    "<REGION_TO_DESCRIPTION><loc_1><loc_2>",
    "a photo of",
    "",
]


@pytest.fixture(scope="module")
def florence(tmp_path_factory: pytest.TempPathFactory):
    """(processor, the run-time adapter on the exporter's manifest, tokenizer.json's Tokenizer)."""
    directory = tiny_families.build_florence2(tmp_path_factory.mktemp("florence2") / "model")
    processor = transformers.AutoProcessor.from_pretrained(directory)
    model = transformers.Florence2ForConditionalGeneration.from_pretrained(directory)
    loaded = Loaded(model, processor, processor.tokenizer, {"decoder_start_token_id": 2})
    runtime = Florence2Runtime(Florence2Exporter().manifest(loaded), {})
    return processor, runtime, Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))


def test_pixels_equal_the_processor_for_sizes_and_modes(florence) -> None:
    processor, runtime, _ = florence
    images = [
        _image(width, height, mode) for mode in MODES for width, height in ((301, 199), (7, 50), (32, 32))
    ]
    expected = processor.image_processor(
        images=[image if image.mode == "RGB" else image.convert("RGB") for image in images],
        return_tensors="np",
    )["pixel_values"]
    np.testing.assert_array_equal(runtime.pixel_values(images), expected)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_prompt_ids_equal_the_processors_after_its_image_tokens(florence, prompt: str) -> None:
    processor, runtime, tokenizer = florence
    ids = processor(images=[Image.new("RGB", (9, 9))], text=[prompt], return_tensors="np")["input_ids"][0]
    image_tokens = runtime.manifest["image_tokens"]
    assert list(ids[:image_tokens]) == [processor.image_token_id] * image_tokens
    assert runtime.prompt_ids(prompt, tokenizer) == list(ids[image_tokens:])


@pytest.mark.parametrize("prompt", PROMPTS)
def test_task_text_is_the_processors_construction(florence, prompt: str) -> None:
    processor, runtime, _ = florence
    assert task_text(prompt, runtime.manifest) == processor._construct_prompts([prompt])[0]
    if prompt == "<CAPTION>":
        assert task_text(prompt, runtime.manifest) == "What does the image describe?"


def test_a_task_token_with_more_text_is_refused_like_the_processor(florence) -> None:
    processor, runtime, _ = florence
    with pytest.raises(ValueError, match="should be the only content"):
        processor._construct_prompts(["<CAPTION> of a dog"])
    with pytest.raises(InvalidTaskPrompt, match="<CAPTION> must be the whole prompt"):
        task_text("<CAPTION> of a dog", runtime.manifest)
