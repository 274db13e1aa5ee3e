"""A tiny ViT + GPT-2 VisionEncoderDecoderModel, saved like a Hugging Face captioning checkpoint.

Same architecture family as nlpconnect/vit-gpt2-image-captioning (ViT encoder, GPT-2 decoder with
cross-attention, GPT-2 byte-level BPE tokenizer saved beside it), shrunk so a test builds, loads
and captions with it in well under a second. Built offline: the tokenizer is trained here.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    GPT2Config,
    GPT2TokenizerFast,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
    ViTConfig,
    ViTImageProcessorPil,
)

TINY_IMAGE_SIZE = 32
_CAPTION_WORDS = (
    "a red circle on a white background . a blue square next to a green triangle . "
    "two yellow stars and one black line . small large bright dark shape picture photo of"
)


def _train_tokenizer() -> GPT2TokenizerFast:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([_CAPTION_WORDS] * 4, trainer=trainer)
    end_of_text = "<|endoftext|>"  # GPT-2's one special token, as in nlpconnect/vit-gpt2-image-captioning
    return GPT2TokenizerFast(
        tokenizer_object=bpe, bos_token=end_of_text, eos_token=end_of_text, unk_token=end_of_text
    )


def build_tiny_model(model_dir: Path, *, seed: int = 0, max_length: int = 12, num_beams: int = 3) -> Path:
    """Write a tiny captioning model directory (safetensors, tokenizer, image processor) and return it."""
    torch.manual_seed(seed)
    tokenizer = _train_tokenizer()
    end_token_id = tokenizer.eos_token_id
    encoder_config = ViTConfig(
        image_size=TINY_IMAGE_SIZE,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    decoder_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=end_token_id,
        eos_token_id=end_token_id,
        add_cross_attention=True,
        is_decoder=True,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder_config, decoder_config)
    config.decoder_start_token_id = end_token_id
    config.pad_token_id = end_token_id
    config.eos_token_id = end_token_id
    model = VisionEncoderDecoderModel(config=config)
    # Random init with std 0.02 makes every image produce the same caption; wider weights make the
    # captions depend on the pixels, so batched-vs-single comparisons actually compare something.
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.3)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=end_token_id,
        bos_token_id=end_token_id,
        eos_token_id=end_token_id,
        pad_token_id=end_token_id,
        max_length=max_length,
        num_beams=num_beams,
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    transformers.utils.logging.disable_progress_bar()
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    image_processor = ViTImageProcessorPil(
        size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    image_processor.save_pretrained(model_dir)
    return model_dir
