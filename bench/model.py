"""A randomly initialised model with the exact architecture of nlpconnect/vit-gpt2-image-captioning.

No hub: configuration, tokenizer and image processor are written here from the published shapes.
The model is saved in three forms, each a complete model directory:
- ``baseline``: the original design's checkpoint, ``pytorch_model.bin`` (a pickled state dict);
- ``fp32``: the project's form, ``model.safetensors`` in float32;
- ``fp16``: ``model.safetensors`` with weights stored in float16 (half the bytes), upcast at load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from models import tiny

GPT2_VOCAB_SIZE = 50257
END_OF_TEXT_ID = GPT2_VOCAB_SIZE - 1
END_OF_TEXT = tiny.END_OF_TEXT
CAPTION_TOKENS = 16
NUM_BEAMS = 4
MODEL_SEED = 20240229

# The published nlpconnect/vit-gpt2-image-captioning shapes: ViT-base/16 at 224, GPT-2 124M.
VIT_SHAPE = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "image_size": 224,
    "patch_size": 16,
    "num_channels": 3,
    "qkv_bias": True,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
}
GPT2_SHAPE = {
    "vocab_size": GPT2_VOCAB_SIZE,
    "n_positions": 1024,
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "activation_function": "gelu_new",
    "layer_norm_epsilon": 1e-5,
    "add_cross_attention": True,
    "bos_token_id": END_OF_TEXT_ID,
    "eos_token_id": END_OF_TEXT_ID,
    "pad_token_id": END_OF_TEXT_ID,
}
PREPROCESSOR = {
    "image_processor_type": "ViTImageProcessor",
    "do_resize": True,
    "size": {"height": 224, "width": 224},
    "resample": 2,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
}


# For checking the benchmark itself (tests, --model-size tiny): the same architecture, the tests' tiny
# shapes (models/tiny.py), in GPT-2's id space (<|endoftext|> is the last token).
TINY_VIT_SHAPE = {**VIT_SHAPE, **tiny.VIT_SHAPE}
TINY_VOCAB_SIZE = tiny.VOCAB_SIZE
TINY_GPT2_SHAPE = {
    **GPT2_SHAPE,
    **tiny.GPT2_SHAPE,
    "vocab_size": TINY_VOCAB_SIZE,
    "bos_token_id": TINY_VOCAB_SIZE - 1,
    "eos_token_id": TINY_VOCAB_SIZE - 1,
    "pad_token_id": TINY_VOCAB_SIZE - 1,
}
TINY_PREPROCESSOR = {**PREPROCESSOR, "size": {"height": tiny.IMAGE_SIZE, "width": tiny.IMAGE_SIZE}}


@dataclass(frozen=True)
class BenchModels:
    baseline_dir: Path
    fp32_dir: Path
    fp16_dir: Path


def build_config(vit_shape: dict | None = None, gpt2_shape: dict | None = None):
    """The VisionEncoderDecoderConfig of the captioning model (shapes overridable for tests)."""
    from transformers import GPT2Config, VisionEncoderDecoderConfig, ViTConfig

    encoder = ViTConfig(**(vit_shape or VIT_SHAPE))
    decoder = GPT2Config(**(gpt2_shape or GPT2_SHAPE))
    decoder.is_decoder = True
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = decoder.bos_token_id
    config.pad_token_id = decoder.pad_token_id
    config.eos_token_id = decoder.eos_token_id
    return config


def build_generation_config(
    num_beams: int = NUM_BEAMS, length: int = CAPTION_TOKENS, end_of_text_id: int = END_OF_TEXT_ID
):
    """All ``length`` tokens forced (min_length = max_length), so every pipeline does the same work."""
    from transformers import GenerationConfig

    return GenerationConfig(
        decoder_start_token_id=end_of_text_id,
        bos_token_id=end_of_text_id,
        eos_token_id=end_of_text_id,
        pad_token_id=end_of_text_id,
        num_beams=num_beams,
        max_length=length,
        min_length=length,
    )


def build_tokenizer(vocab_size: int = GPT2_VOCAB_SIZE):
    """A word-level tokenizer with GPT-2's id space: ``vocab_size - 1`` words plus <|endoftext|> last."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{index}": index for index in range(vocab_size - 1)}
    vocab[END_OF_TEXT] = vocab_size - 1
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=END_OF_TEXT))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
    )


def build_model(config=None, seed: int = MODEL_SEED):
    """Random-initialised VisionEncoderDecoderModel, deterministic for a seed."""
    import torch
    from transformers import VisionEncoderDecoderModel

    torch.manual_seed(seed)
    model = VisionEncoderDecoderModel(config=config or build_config())
    model.generation_config = build_generation_config(end_of_text_id=model.config.decoder.eos_token_id)
    return model.eval()


def _write_side_files(model_dir: Path, tokenizer, config, preprocessor: dict) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    (model_dir / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))


def save_model_forms(model, tokenizer, cache_dir: Path, preprocessor: dict = PREPROCESSOR) -> BenchModels:
    """Write the three forms; each directory is complete on its own."""
    import torch
    from safetensors.torch import save_file

    forms = BenchModels(cache_dir / "baseline", cache_dir / "fp32", cache_dir / "fp16")
    model.save_pretrained(forms.fp32_dir)
    _write_side_files(forms.fp32_dir, tokenizer, model.config, preprocessor)
    model.generation_config.save_pretrained(forms.fp32_dir)

    _write_side_files(forms.baseline_dir, tokenizer, model.config, preprocessor)
    model.generation_config.save_pretrained(forms.baseline_dir)
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    torch.save(state, forms.baseline_dir / "pytorch_model.bin")

    _write_side_files(forms.fp16_dir, tokenizer, model.config, preprocessor)
    model.generation_config.save_pretrained(forms.fp16_dir)
    from safetensors.torch import load_file

    fp32_weights = load_file(forms.fp32_dir / "model.safetensors")
    half = {name: t.to(torch.float16) if t.is_floating_point() else t for name, t in fp32_weights.items()}
    save_file(half, forms.fp16_dir / "model.safetensors", metadata={"format": "pt"})
    return forms


def ensure_models(cache_dir: Path, log=print, tiny: bool = False) -> BenchModels:
    """Build and save the benchmark model once; later runs reuse the cached directories.

    ``tiny``: the same architecture with tiny shapes, for checking the benchmark itself."""
    marker = cache_dir / ".models-ready"
    forms = BenchModels(cache_dir / "baseline", cache_dir / "fp32", cache_dir / "fp16")
    if marker.exists():
        return forms
    if tiny:
        log(f"building a tiny ViT-GPT2 model in {cache_dir} (its figures mean nothing)")
        model = build_model(build_config(TINY_VIT_SHAPE, TINY_GPT2_SHAPE))
        forms = save_model_forms(model, build_tokenizer(TINY_VOCAB_SIZE), cache_dir, TINY_PREPROCESSOR)
    else:
        log(f"building the random-initialised ViT-GPT2 model (≈239M parameters) in {cache_dir} (once)")
        forms = save_model_forms(build_model(), build_tokenizer(), cache_dir)
    marker.write_text("ok\n")
    return forms


def parameter_count(model) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
