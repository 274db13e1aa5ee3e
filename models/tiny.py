"""Tiny random captioning models, built offline in well under a second: the one factory of the tests'
models (tests/conftest.py, tests/tiny_families.py) and of the benchmark's `--model-size tiny`
(bench/model.py).

Same architecture family as nlpconnect/vit-gpt2-image-captioning (ViT encoder, GPT-2 decoder with
cross-attention, GPT-2 byte-level BPE tokenizer saved beside it), shrunk; the tokenizer is trained here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer
    from transformers import GPT2TokenizerFast, ViTConfig, ViTImageProcessorPil

IMAGE_SIZE = 32
VIT_SHAPE = {
    "image_size": IMAGE_SIZE,
    "patch_size": 8,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
"""The tiny ViT encoder: ViTConfig's defaults for everything else, as the published model has them."""
GPT2_SHAPE = {"n_positions": 64, "n_embd": 32, "n_layer": 2, "n_head": 2}
"""The tiny GPT-2 decoder (its vocabulary is the tokenizer's)."""
VOCAB_SIZE = 300
END_OF_TEXT = "<|endoftext|>"
"""GPT-2's one special token, as in nlpconnect/vit-gpt2-image-captioning."""
CAPTION_WORDS = (
    "a red circle on a white background . a blue square next to a green triangle . "
    "two yellow stars and one black line . small large bright dark shape picture photo of"
)


def train_byte_level_bpe(text: str, special_tokens: list[str], vocab_size: int = VOCAB_SIZE) -> Tokenizer:
    """GPT-2's kind of tokenizer (byte-level BPE), trained on `text`; the special tokens come first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([text] * 4, trainer=trainer)
    return bpe


def gpt2_tokenizer() -> GPT2TokenizerFast:
    """The tiny GPT-2 tokenizer: <|endoftext|> is its beginning, end and unknown token."""
    from transformers import GPT2TokenizerFast

    return GPT2TokenizerFast(
        tokenizer_object=train_byte_level_bpe(CAPTION_WORDS, [END_OF_TEXT]),
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
    )


def vit_config(**overrides: object) -> ViTConfig:
    """The tiny ViT encoder's config."""
    from transformers import ViTConfig

    return ViTConfig(**(VIT_SHAPE | overrides))


def vit_image_processor() -> ViTImageProcessorPil:
    """The ViT image processor at the tiny size, normalising to [-1, 1] as the published model does."""
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )


def widen_weights(model: torch.nn.Module, seed: int | None = None) -> None:
    """Random init with std 0.02 makes every image produce the same caption; wider weights make the
    captions depend on the pixels, so batched-vs-single comparisons actually compare something.
    `seed`: reseed first, so the weights do not depend on what building the model drew."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.3)


def build_vit_gpt2(model_dir: Path, *, seed: int = 0, max_length: int = 12, num_beams: int = 3) -> Path:
    """Write a tiny ViT + GPT-2 captioning model directory (safetensors, tokenizer, image processor), as
    save_pretrained writes a Hugging Face checkpoint, and return it."""
    import torch
    import transformers
    from transformers import (
        GenerationConfig,
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
    )

    torch.manual_seed(seed)
    tokenizer = gpt2_tokenizer()
    end_token_id = tokenizer.eos_token_id
    decoder_config = GPT2Config(
        vocab_size=len(tokenizer),
        **GPT2_SHAPE,
        bos_token_id=end_token_id,
        eos_token_id=end_token_id,
        add_cross_attention=True,
        is_decoder=True,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(vit_config(), decoder_config)
    config.decoder_start_token_id = end_token_id
    config.pad_token_id = end_token_id
    config.eos_token_id = end_token_id
    model = VisionEncoderDecoderModel(config=config)
    widen_weights(model)
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
    vit_image_processor().save_pretrained(model_dir)
    return model_dir
