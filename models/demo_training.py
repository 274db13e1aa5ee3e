"""The demo model's training (torch, transformers): see models/train_demo_shapes.py, its command line.

A tiny VisionEncoderDecoderModel (ViT encoder + GPT-2 decoder with cross-attention, the architecture family of
nlpconnect/vit-gpt2-image-captioning), a word-level tokenizer covering the caption words, and a ViT
image-processor config. Training images are drawn from ``models.shapes`` and go through the product's own
preparation (``captioning.function.images.load_image`` on the encoded bytes, then the saved image processor),
so the model sees exactly what the deployed function feeds it.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from multiprocessing import get_context
from pathlib import Path

import torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    GenerationConfig,
    GPT2Config,
    PreTrainedTokenizerFast,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
    ViTConfig,
    ViTImageProcessorPil,
)

from captioning.function.images import load_image
from models import shapes
from models.training_settings import TrainingSettings

IMAGE_SIZE = 64
PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
GENERATION_MAX_LENGTH = 16  # the demo model's generation config (generation_config.json)
GENERATION_NUM_BEAMS = 4

log = logging.getLogger("train_demo_shapes")


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose vocabulary is exactly the special tokens plus the caption words."""
    vocabulary = {token: index for index, token in enumerate((PAD, BOS, EOS, UNK, *shapes.CAPTION_WORDS))}
    word_level = Tokenizer(models.WordLevel(vocab=vocabulary, unk_token=UNK))
    word_level.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=word_level,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        clean_up_tokenization_spaces=False,
        model_max_length=32,
    )


def build_image_processor() -> ViTImageProcessorPil:
    """Squash to IMAGE_SIZE square, rescale to 0..1, normalise to -1..1 (as nlpconnect's ViT does)."""
    return ViTImageProcessorPil(
        do_resize=True,
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        resample=Image.Resampling.BILINEAR,
        do_rescale=True,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )


def build_model(tokenizer: PreTrainedTokenizerFast) -> VisionEncoderDecoderModel:
    encoder_config = ViTConfig(
        image_size=IMAGE_SIZE,
        patch_size=8,
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    decoder_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=32,
        n_embd=64,
        n_layer=2,
        n_head=4,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        add_cross_attention=True,
        is_decoder=True,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder_config, decoder_config)
    config.decoder_start_token_id = tokenizer.bos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    config.bos_token_id = tokenizer.bos_token_id
    model = VisionEncoderDecoderModel(config=config)
    model.generation_config = GenerationConfig(
        max_length=GENERATION_MAX_LENGTH,
        num_beams=GENERATION_NUM_BEAMS,
        decoder_start_token_id=tokenizer.bos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model


def training_image_bytes(rng: random.Random, settings: TrainingSettings) -> tuple[bytes, str]:
    """One training upload: a spec draw, sometimes anti-aliased, sometimes converted as a user would."""
    spec = shapes.random_spec(rng)
    supersample = rng.choice((2, 3)) if rng.random() < settings.supersample_share else 1
    image = shapes.draw(spec, supersample=supersample)
    if rng.random() < 0.5:
        data = shapes.encode(image, "PNG", compress_level=1)
    else:
        quality = rng.randint(shapes.MIN_JPEG_QUALITY, shapes.MAX_JPEG_QUALITY)
        data = shapes.encode(image, "JPEG", quality, subsampling=rng.choice((-1, 0, 2)))
    if rng.random() < settings.conversion_share:
        data = shapes.random_conversion(data, rng.choice(tuple(shapes.CONVERSIONS)), rng)
    return data, spec.caption


def _prepare_example(job: tuple[int, TrainingSettings]) -> tuple[torch.Tensor, str]:
    index, settings = job
    # One generator per example: the data set is the same whatever the worker count.
    rng = random.Random(settings.seed * 1_000_003 + index)  # noqa: S311  reproducible draws, not security
    data, caption = training_image_bytes(rng, settings)
    pixels = build_image_processor()(load_image(data), return_tensors="pt")["pixel_values"][0]
    return pixels, caption


def make_training_set(settings: TrainingSettings) -> tuple[torch.Tensor, list[str]]:
    jobs = [(index, settings) for index in range(settings.examples)]
    if settings.data_workers > 1:
        with get_context("spawn").Pool(settings.data_workers) as pool:
            prepared = pool.map(_prepare_example, jobs, chunksize=64)
    else:
        prepared = [_prepare_example(job) for job in jobs]
    return torch.stack([pixels for pixels, _ in prepared]), [caption for _, caption in prepared]


def caption_labels(tokenizer: PreTrainedTokenizerFast, captions: Sequence[str]) -> torch.Tensor:
    """Caption token ids followed by EOS; every spec caption has the same word count, so no padding."""
    rows = [
        tokenizer.convert_tokens_to_ids(caption.split()) + [tokenizer.eos_token_id] for caption in captions
    ]
    if tokenizer.unk_token_id in {token for row in rows for token in row}:
        raise ValueError("a caption has a word outside the tokenizer's vocabulary")
    if len({len(row) for row in rows}) != 1:
        raise ValueError("captions differ in word count; the spec gives every caption the same form")
    return torch.tensor(rows, dtype=torch.long)


def fit(
    model: VisionEncoderDecoderModel, pixels: torch.Tensor, labels: torch.Tensor, settings: TrainingSettings
) -> None:
    """Teacher-forced cross-entropy with AdamW, warm-up then cosine decay; batches in a seeded order."""
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _learning_rate_factor(step, settings)
    )
    order = torch.Generator().manual_seed(settings.seed)
    started = time.monotonic()
    model.train()
    permutation, cursor = torch.randperm(len(labels), generator=order), 0
    for step in range(settings.steps):
        if cursor + settings.batch_size > len(permutation):
            permutation, cursor = torch.randperm(len(labels), generator=order), 0
        batch = permutation[cursor : cursor + settings.batch_size]
        cursor += settings.batch_size
        # Mirroring left-right maps a spec image to another spec image with the same caption.
        mirror = torch.rand(len(batch), generator=order) < 0.5
        batch_pixels = torch.where(mirror[:, None, None, None], pixels[batch].flip(-1), pixels[batch])
        loss = model(pixel_values=batch_pixels, labels=labels[batch]).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == settings.steps - 1:
            log.info(
                "step %d/%d loss %.4f (%.0f s)", step, settings.steps, loss.item(), time.monotonic() - started
            )
    model.eval()


def train(settings: TrainingSettings, output_dir: Path) -> None:
    """Build tokenizer, processor and model, train on fresh spec draws, save everything to output_dir."""
    started = time.monotonic()
    torch.set_num_threads(settings.num_threads)
    torch.manual_seed(settings.seed)
    torch.use_deterministic_algorithms(True)

    tokenizer = build_tokenizer()
    image_processor = build_image_processor()
    model = build_model(tokenizer)

    pixels, captions = make_training_set(settings)
    labels = caption_labels(tokenizer, captions)
    log.info("prepared %d training images in %.0f s", len(captions), time.monotonic() - started)
    fit(model, pixels, labels, settings)

    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    image_processor.save_pretrained(output_dir)
    log.info("saved %s in %.0f s total", output_dir, time.monotonic() - started)


def _learning_rate_factor(step: int, settings: TrainingSettings) -> float:
    if step < settings.warmup_steps:
        return (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * progress))
