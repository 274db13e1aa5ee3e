"""The committed demo model (models/demo-shapes/) loads like a Hugging Face captioner and captions the spec.

Everything goes the product's way: encoded bytes -> captioning.function.images.load_image ->
Captioner.caption.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, GenerationConfig

from captioning.function.captioner import Captioner
from captioning.function.images import load_image
from models import DEMO_MODEL_DIR, evaluate, shapes
from models.demo_training import GENERATION_MAX_LENGTH, GENERATION_NUM_BEAMS

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPOSITORY_ROOT / "samples"
# A seed neither the training script (TrainingSettings.seed) nor the README figure (evaluate's default) uses.
HELD_OUT_SEED = 4_242_000
HELD_OUT_COUNT = 100
REQUIRED_ACCURACY = 0.98


@pytest.fixture(scope="module")
def captioner() -> Captioner:
    # One thread: on a shared 2-core machine two threads mostly wait for each other.
    return Captioner.load(DEMO_MODEL_DIR, num_threads=1)


def test_model_directory_is_a_small_vit_gpt2_captioning_checkpoint() -> None:
    for name in (
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
    ):
        assert (DEMO_MODEL_DIR / name).is_file(), name
    total_bytes = sum(path.stat().st_size for path in DEMO_MODEL_DIR.rglob("*") if path.is_file())
    assert total_bytes < 8 * 1024 * 1024
    config = AutoConfig.from_pretrained(DEMO_MODEL_DIR)
    assert config.model_type == "vision-encoder-decoder"
    assert (config.encoder.model_type, config.decoder.model_type) == ("vit", "gpt2")
    assert config.decoder.add_cross_attention
    tokenizer = AutoTokenizer.from_pretrained(DEMO_MODEL_DIR)
    assert config.decoder_start_token_id == tokenizer.bos_token_id
    assert config.pad_token_id == tokenizer.pad_token_id
    assert config.eos_token_id == tokenizer.eos_token_id
    generation = GenerationConfig.from_pretrained(DEMO_MODEL_DIR)
    assert (generation.max_length, generation.num_beams) == (GENERATION_MAX_LENGTH, GENERATION_NUM_BEAMS)


def test_tokenizer_covers_the_caption_words_and_decodes_them_exactly() -> None:
    tokenizer = AutoTokenizer.from_pretrained(DEMO_MODEL_DIR)
    caption = "a red circle on a white background"
    for word in shapes.CAPTION_WORDS:
        assert tokenizer.convert_tokens_to_ids(word) != tokenizer.unk_token_id, word
    ids = tokenizer.convert_tokens_to_ids(caption.split())
    framed = [tokenizer.bos_token_id, *ids, tokenizer.eos_token_id, tokenizer.pad_token_id]
    assert tokenizer.decode(framed, skip_special_tokens=True) == caption


def test_image_processor_squashes_to_the_model_input_without_torchvision() -> None:
    processor = AutoImageProcessor.from_pretrained(DEMO_MODEL_DIR)
    config = AutoConfig.from_pretrained(DEMO_MODEL_DIR)
    wide = load_image(shapes.encode(shapes.draw(next(shapes.demo_images(seed=5, count=1)).spec), "PNG"))
    pixels = processor(images=[wide], return_tensors="pt").pixel_values
    size = config.encoder.image_size
    assert tuple(pixels.shape) == (1, 3, size, size)
    assert -1.0 <= float(pixels.min()) and float(pixels.max()) <= 1.0


@pytest.mark.parametrize("evaluation_set", evaluate.SETS)
def test_held_out_draws_are_captioned_exactly(captioner: Captioner, evaluation_set: str) -> None:
    (score,) = evaluate.evaluate(
        captioner.caption, seed=HELD_OUT_SEED, count=HELD_OUT_COUNT, sets=[evaluation_set]
    )
    assert score.total == HELD_OUT_COUNT
    assert score.accuracy >= REQUIRED_ACCURACY, score.mistakes


def test_samples_captions_json_is_what_the_model_says(captioner: Captioner) -> None:
    expected = json.loads((SAMPLES_DIR / "captions.json").read_text(encoding="utf-8"))
    image_paths = sorted(path for path in (SAMPLES_DIR / "images").iterdir() if path.is_file())
    assert sorted(path.name for path in image_paths) == sorted(expected)
    assert {path.suffix for path in image_paths} >= {".png", ".jpg"}
    said = captioner.caption([load_image(path.read_bytes()) for path in image_paths])
    assert dict(zip((path.name for path in image_paths), said, strict=True)) == expected
    for caption in expected.values():
        assert caption == shapes.caption_for(*_caption_words(caption))


def _caption_words(caption: str) -> tuple[str, str, str]:
    words = caption.split()
    assert len(words) == 7 and words[0] == "a" and words[3:5] == ["on", "a"] and words[6] == "background", (
        caption
    )
    return words[1], words[2], words[5]
