"""Tiny random captioning models of every family the generic captioner supports, built from configs.

Each builder writes a directory the way `save_pretrained` does for the real checkpoint of that family
(config, generation config, safetensors weights, tokenizer, image processor / processor) with random
weights and a tokenizer made here: no Hub. Sizes are a few hundred kB so a test builds, loads and
captions in about a second.

Families: vision-encoder-decoder with a BERT decoder (ViT + BERT), blip, git, florence2, idefics3
(SmolVLM's architecture, chat template included). ViT + GPT-2, and the tiny ViT and tokenizer training
these share with it, live in models/tiny.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import transformers
from tokenizers import processors
from transformers import GenerationConfig

from models.tiny import (
    CAPTION_WORDS,
    IMAGE_SIZE,
    VIT_SHAPE,
    train_byte_level_bpe,
    vit_config,
    vit_image_processor,
    widen_weights,
)

_WORDS = (
    CAPTION_WORDS + " what does the image describe ? caption this in one sentence user assistant describe"
).split()
SMOLVLM_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
"""SmolVLM-256M-Instruct's chat template (chat_template.json), as published."""


def _bert_tokenizer(extra_special: tuple[str, ...] = ()) -> transformers.BertTokenizer:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *extra_special, *dict.fromkeys(_WORDS)]
    return transformers.BertTokenizer(vocab={token: index for index, token in enumerate(vocab)})


def _save(model_dir: Path, model, *parts) -> Path:
    model_dir.mkdir(parents=True, exist_ok=True)
    transformers.utils.logging.disable_progress_bar()
    model.save_pretrained(model_dir)
    for part in parts:
        part.save_pretrained(model_dir)
    return model_dir


def build_vit_bert(model_dir: Path, *, seed: int = 0, generation: dict | None = None) -> Path:
    """VisionEncoderDecoder: ViT encoder + BERT decoder with cross-attention (a BERT-style decoder,
    with an encoder -> decoder projection: the hidden sizes differ)."""
    torch.manual_seed(seed)
    tokenizer = _bert_tokenizer()
    decoder = transformers.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=64,
        is_decoder=True,
        add_cross_attention=True,
    )
    config = transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(vit_config(), decoder)
    config.decoder_start_token_id = tokenizer.cls_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.sep_token_id
    model = transformers.VisionEncoderDecoderModel(config=config)
    widen_weights(model, seed)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **(generation or {}),
    )
    return _save(model_dir, model, tokenizer, vit_image_processor())


def build_blip(model_dir: Path, *, seed: int = 0, generation: dict | None = None) -> Path:
    """BlipForConditionalGeneration (Salesforce/blip-image-captioning-*): ViT + BERT text decoder,
    "[DEC]" as the decoder's start token, like the real tokenizer."""
    tokenizer = _bert_tokenizer(("[DEC]",))
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    config = transformers.BlipConfig(
        vision_config=dict(VIT_SHAPE),
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            encoder_hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=64,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.sep_token_id,
            sep_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
    )
    model = transformers.BlipForConditionalGeneration(config)
    widen_weights(model, seed)
    if generation:
        model.generation_config = GenerationConfig(**generation)
    image_processor = transformers.BlipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = transformers.BlipProcessor(image_processor, tokenizer)
    return _save(model_dir, model, processor)


def build_git(model_dir: Path, *, seed: int = 0, generation: dict | None = None) -> Path:
    """GitForCausalLM (microsoft/git-base*): CLIP vision encoder + BERT-style causal decoder."""
    tokenizer = _bert_tokenizer()
    config = transformers.GitConfig(
        vision_config=dict(VIT_SHAPE),
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=64,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = transformers.GitForCausalLM(config)
    widen_weights(model, seed)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **(generation or {}),
    )
    image_processor = transformers.CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    processor = transformers.GitProcessor(image_processor, tokenizer)
    return _save(model_dir, model, processor)


def build_florence2(model_dir: Path, *, seed: int = 0, generation: dict | None = None) -> Path:
    """Florence2ForConditionalGeneration (florence-community/Florence-2-*): DaViT vision tower + BART,
    a BART byte-level tokenizer with the `<image>` token the processor needs."""
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "<image>"]
    backend = train_byte_level_bpe(" ".join(_WORDS), special, vocab_size=400)
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    roles = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    roles |= {"mask_token": "<mask>"}
    tokenizer = transformers.BartTokenizer(
        tokenizer_object=backend,
        extra_special_tokens={"image_token": "<image>"},
        **roles,
    )
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    config = transformers.Florence2Config(
        vision_config=dict(
            depths=[1, 1],
            patch_size=[7, 3],
            patch_stride=[4, 2],
            patch_padding=[3, 1],
            patch_prenorm=[False, True],
            embed_dim=[16, 32],
            num_heads=[1, 2],
            num_groups=[1, 2],
            window_size=2,
            projection_dim=32,
            max_position_embeddings=16,
            drop_path_rate=0.0,
        ),
        text_config=dict(
            vocab_size=len(tokenizer),
            d_model=32,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_position_embeddings=128,
            bos_token_id=0,
            pad_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=2,
            forced_eos_token_id=2,
        ),
        image_token_id=image_token_id,
    )
    model = transformers.Florence2ForConditionalGeneration(config)
    widen_weights(model, seed)
    model.generation_config = GenerationConfig(
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
        decoder_start_token_id=2,
        forced_eos_token_id=2,
        **(generation or {}),
    )
    image_processor = transformers.CLIPImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_center_crop=False,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    image_processor.image_seq_length = 17  # 32 px / strides 4 and 2 -> 4 x 4 patches, + 1 pooled token
    processor = transformers.Florence2Processor(image_processor, tokenizer)
    return _save(model_dir, model, processor)


def build_idefics3(
    model_dir: Path, *, seed: int = 0, generation: dict | None = None, image_splitting: bool = True
) -> Path:
    """Idefics3ForConditionalGeneration, SmolVLM's architecture (HuggingFaceTB/SmolVLM-*-Instruct):
    SigLIP-style vision tower, pixel shuffle connector, Llama text model, chat template; the image
    processor splits large images into tiles, so images of a batch give prompts of different lengths."""
    special = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>"]
    special += ["<global-img>"] + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    backend = train_byte_level_bpe(" ".join(_WORDS), special, vocab_size=420)
    roles = {"bos_token": "<|im_start|>", "eos_token": "<end_of_utterance>"}
    roles |= {"pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, **roles)
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    config = transformers.Idefics3Config(
        vision_config=dict(VIT_SHAPE),
        text_config=dict(
            model_type="llama",
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=512,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_id=image_token_id,
        scale_factor=2,
    )
    model = transformers.Idefics3ForConditionalGeneration(config)
    widen_weights(model, seed)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **(generation or {}),
    )
    image_processor = transformers.Idefics3ImageProcessorPil(
        size={"longest_edge": 2 * IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
        do_image_splitting=image_splitting,
    )
    # image_seq_len = (image_size / patch_size)^2 / scale_factor^2 = 16 / 4
    processor = transformers.Idefics3Processor(
        image_processor, tokenizer, image_seq_len=4, chat_template=SMOLVLM_CHAT_TEMPLATE
    )
    return _save(model_dir, model, processor)


BUILDERS: dict[str, Callable[..., Path]] = {
    "vit-bert": build_vit_bert,
    "blip": build_blip,
    "git": build_git,
    "florence2": build_florence2,
    "idefics3": build_idefics3,
}
