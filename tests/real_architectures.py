"""The real architectures of the models docs/models.md lists, built from their published configs with
random weights (no Hub access here): parameter counts for captioning/component/model_sizing.py's table, and
speed / memory measured on this machine.

    python -m tests.real_architectures count                 # parameters of every model (meta device)
    python -m tests.real_architectures measure MODEL_ID [--images N] [--threads T]

`measure` builds the model in float32 with random weights, captions N generated images in one
`generate` with the settings the generic captioner uses by default (num_beams 4 and max_length 16, or
32 for Florence-2; greedy and 32 new tokens for chat models), and prints one JSON line: build and
caption seconds (wall clock, and the process's CPU time: less sensitive to other load), the resident
memory before the caption call and its peak (VmHWM) during it. Random weights never emit the end
token, so every caption runs to the length limit: the slowest case for real ones.

The configs are the published config.json values of each Hub repository (sizes only; token ids where
the architecture needs them), transcribed here because the Hub is unreachable from this machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import transformers


@dataclass(frozen=True)
class Architecture:
    family: str
    config: Callable[[], transformers.PretrainedConfig]
    inputs: Callable[[int], dict[str, torch.Tensor]]
    """Model inputs for N images, shaped like the processor's output for a 4:3 photo."""
    generation: dict[str, int]
    """What the generic captioner passes to generate when neither the user nor the model sets it."""


def _vit_gpt2() -> transformers.PretrainedConfig:
    encoder = transformers.ViTConfig(
        image_size=224, patch_size=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12
    )
    decoder = transformers.GPT2Config(
        vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, add_cross_attention=True
    )
    config = transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = config.pad_token_id = config.eos_token_id = 50256
    return config


def _blip(large: bool) -> Callable[[], transformers.PretrainedConfig]:
    def config() -> transformers.PretrainedConfig:
        width = 1024 if large else 768
        return transformers.BlipConfig(
            vision_config=dict(
                image_size=384,
                patch_size=16,
                hidden_size=width,
                intermediate_size=4 * width,
                num_hidden_layers=24 if large else 12,
                num_attention_heads=16 if large else 12,
            ),
            text_config=dict(
                vocab_size=30524,
                tie_word_embeddings=True,
                hidden_size=768,
                encoder_hidden_size=width,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                max_position_embeddings=512,
                bos_token_id=30522,
                sep_token_id=102,
                eos_token_id=2,
                pad_token_id=0,
            ),
        )

    return config


def _git(large: bool) -> Callable[[], transformers.PretrainedConfig]:
    def config() -> transformers.PretrainedConfig:
        width = 1024 if large else 768
        return transformers.GitConfig(
            vision_config=dict(
                image_size=224,
                patch_size=14 if large else 16,
                hidden_size=width,
                intermediate_size=4 * width,
                num_hidden_layers=24 if large else 12,
                num_attention_heads=16 if large else 12,
            ),
            vocab_size=30522,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=6,
            num_attention_heads=12,
            max_position_embeddings=1024,
            bos_token_id=101,
            eos_token_id=102,
            pad_token_id=0,
        )

    return config


FLORENCE2_IMAGE_TOKENS = 577  # 768 px / 32 = 24 x 24 patches + 1 pooled token


def _florence2(large: bool) -> Callable[[], transformers.PretrainedConfig]:
    def config() -> transformers.PretrainedConfig:
        base = 256 if large else 128
        heads = [8, 16, 32, 64] if large else [4, 8, 16, 32]
        width = 1024 if large else 768
        return transformers.Florence2Config(
            vision_config=dict(
                depths=[1, 1, 9, 1],
                embed_dim=[base, 2 * base, 4 * base, 8 * base],
                num_heads=heads,
                num_groups=heads,
                window_size=12,
                projection_dim=width,
                drop_path_rate=0.0,
            ),
            text_config=dict(
                vocab_size=51290,  # 51289 BART + <loc_*> tokens, and the <image> token of the native port
                d_model=width,
                encoder_layers=12 if large else 6,
                decoder_layers=12 if large else 6,
                encoder_attention_heads=16 if large else 12,
                decoder_attention_heads=16 if large else 12,
                encoder_ffn_dim=4 * width,
                decoder_ffn_dim=4 * width,
                max_position_embeddings=1024,
                bos_token_id=0,
                pad_token_id=1,
                eos_token_id=2,
                decoder_start_token_id=2,
            ),
            image_token_id=51289,
        )

    return config


SMOLVLM_TILE_TOKENS = 64  # (512 / 16)^2 patches / scale_factor^2 (4^2)
SMOLVLM_TILES = 13  # a 4:3 photo: resized to 2048 x 1536, 4 x 3 tiles of 512 px, + the global image


def _smolvlm(text: dict) -> Callable[[], transformers.PretrainedConfig]:
    def config() -> transformers.PretrainedConfig:
        return transformers.Idefics3Config(
            vision_config=dict(
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                image_size=512,
                patch_size=16,
            ),
            text_config=dict(
                model_type="llama",
                vocab_size=49280,
                max_position_embeddings=8192,
                rope_theta=100000.0,
                bos_token_id=1,
                eos_token_id=49279,
                pad_token_id=2,
                tie_word_embeddings=False,
                **text,
            ),
            image_token_id=49190,
            scale_factor=4,
            tie_word_embeddings=False,
        )

    return config


def _pixels(size: int) -> Callable[[int], dict[str, torch.Tensor]]:
    return lambda count: {"pixel_values": torch.randn(count, 3, size, size)}


def _git_inputs(count: int) -> dict[str, torch.Tensor]:
    return {"pixel_values": torch.randn(count, 3, 224, 224), "input_ids": torch.full((count, 1), 101)}


def _florence2_inputs(count: int) -> dict[str, torch.Tensor]:
    # <image> x 577, <s>, "What does the image describe?" (7 BART tokens), </s>
    row = [51289] * FLORENCE2_IMAGE_TOKENS + [0] + [100 + i for i in range(7)] + [2]
    input_ids = torch.tensor([row] * count)
    return {
        "pixel_values": torch.randn(count, 3, 768, 768),
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
    }


def _smolvlm_inputs(count: int) -> dict[str, torch.Tensor]:
    # chat text around the image (~20 tokens) + per tile: <fake_token_around_image>, tag, 64 x <image>
    per_tile = [49189, 49200] + [49190] * SMOLVLM_TILE_TOKENS
    row = (
        [1] + [300 + i for i in range(4)] + per_tile * SMOLVLM_TILES + [49189] + [400 + i for i in range(12)]
    )
    input_ids = torch.tensor([row] * count)
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values": torch.randn(count, SMOLVLM_TILES, 3, 512, 512),
        "pixel_attention_mask": torch.ones(count, SMOLVLM_TILES, 512, 512, dtype=torch.bool),
    }


_SMOLLM2_135M = dict(
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
)
_SMOLLM2_360M = dict(
    hidden_size=960,
    intermediate_size=2560,
    num_hidden_layers=32,
    num_attention_heads=15,
    num_key_value_heads=5,
)
_SHORT = {"num_beams": 4, "max_length": 16}
_LONG = {"num_beams": 4, "max_length": 32}
_CHAT = {"num_beams": 1, "max_new_tokens": 32}

ARCHITECTURES: dict[str, Architecture] = {
    "nlpconnect/vit-gpt2-image-captioning": Architecture(
        "vision-encoder-decoder", _vit_gpt2, _pixels(224), _SHORT
    ),
    "Salesforce/blip-image-captioning-base": Architecture("blip", _blip(False), _pixels(384), _SHORT),
    "Salesforce/blip-image-captioning-large": Architecture("blip", _blip(True), _pixels(384), _SHORT),
    "microsoft/git-base": Architecture("git", _git(False), _git_inputs, _SHORT),
    "microsoft/git-base-coco": Architecture("git", _git(False), _git_inputs, _SHORT),
    "microsoft/git-large-coco": Architecture("git", _git(True), _git_inputs, _SHORT),
    "florence-community/Florence-2-base": Architecture(
        "florence2", _florence2(False), _florence2_inputs, _LONG
    ),
    "florence-community/Florence-2-large": Architecture(
        "florence2", _florence2(True), _florence2_inputs, _LONG
    ),
    "HuggingFaceTB/SmolVLM-256M-Instruct": Architecture(
        "idefics3", _smolvlm(_SMOLLM2_135M), _smolvlm_inputs, _CHAT
    ),
    "HuggingFaceTB/SmolVLM-500M-Instruct": Architecture(
        "idefics3", _smolvlm(_SMOLLM2_360M), _smolvlm_inputs, _CHAT
    ),
}


def parameter_count(model_id: str) -> int:
    """Parameters of `model_id`'s architecture, counted on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = transformers.AutoModelForImageTextToText.from_config(ARCHITECTURES[model_id].config())
    return sum(parameter.numel() for parameter in model.parameters())


def _status_bytes(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    """Start VmHWM again from the current resident size (Linux >= 4.0: `5` to clear_refs)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")


def measure(model_id: str, images: int, threads: int) -> dict:
    """Build `model_id` with random weights and caption `images` images in one generate (see module doc)."""
    torch.set_num_threads(threads)
    transformers.utils.logging.set_verbosity_error()
    architecture = ARCHITECTURES[model_id]
    torch.manual_seed(0)
    started = time.perf_counter()
    model = transformers.AutoModelForImageTextToText.from_config(architecture.config()).eval()
    build_seconds = time.perf_counter() - started
    peak_building = _status_bytes("VmHWM")
    inputs = architecture.inputs(images)
    gc.collect()
    _reset_peak()
    before_caption = _status_bytes("VmRSS")
    started, cpu_started = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        model.generate(**inputs, **architecture.generation)
    caption_seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return {
        "model_id": model_id,
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "images": images,
        "threads": threads,
        "build_seconds": round(build_seconds, 2),
        "caption_seconds": round(caption_seconds, 2),
        "caption_cpu_seconds": round(cpu_seconds, 2),
        "peak_rss_building_mb": round(peak_building / 2**20),
        "rss_before_caption_mb": round(before_caption / 2**20),
        "peak_rss_captioning_mb": round(_status_bytes("VmHWM") / 2**20),
        "generation": architecture.generation,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.real_architectures", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("count", help="parameters of every listed model")
    run = commands.add_parser("measure", help="time and peak memory of one caption call")
    run.add_argument("model_id", choices=sorted(ARCHITECTURES))
    run.add_argument("--images", type=int, default=1)
    run.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "count":
        for model_id in ARCHITECTURES:
            print(json.dumps({"model_id": model_id, "parameters": parameter_count(model_id)}))
    else:
        print(json.dumps(measure(args.model_id, args.images, args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
