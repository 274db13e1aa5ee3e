"""GIT (GitForCausalLM, microsoft/git-*) on ONNX Runtime at build time: two graphs written from the
model's own submodules, and the family's exporter (captioning/preparation/family_export.py).

GIT is a prefix model: the image's tokens (CLIP vision tower + projection) lead the text in one BERT-style
self-attention stack; image tokens attend to each other in both directions, text tokens causally to the
image and the text before them (GitModel's mask: `block_sequence_ids` 0 for the image, causal otherwise).
So the image tokens never see the text: each layer's image keys/values depend on the image alone. They are
computed once per image and kept once per image (never copied per beam, as `generate` does with the whole
input); the text's keys/values are the per-row cache.

- encoder: pixel_values (images, 3, H, W) -> image_kv (layers, 2, images, heads, image_tokens, head_dim);
- decoder_step: input_ids (rows, new), position (1,) (the text position of the first new token: the text
  is numbered from 0 after the image, as `generate` numbers it), past (layers, 2, rows, heads, past,
  head_dim), image_kv -> logits, log_probs of the last new token (rows, vocab), present (past + new);
  rows = images x beams, image-major; new tokens attend to every image token, the past and each other
  causally. The prompt ([CLS], then the user's prompt without special tokens) is the first step's input.

Run time: captioning/function/onnx_git.py. Models these graphs cannot reproduce are named by
`git_config_problems` before any weights load.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional

from captioning.contract.model_files import ONNX_DECODER, ONNX_ENCODER
from captioning.function.pixels import UnsupportedProcessor
from captioning.preparation.errors import refuse_onnx
from captioning.preparation.export_vit_gpt2 import generation_dict
from captioning.preparation.family_export import FamilyExporter, Loaded

GIT_ENCODER = ONNX_ENCODER
GIT_DECODER = ONNX_DECODER
GIT_CHECK_PROMPT = "a picture of"
CLIP_PROCESSORS = ("CLIPImageProcessorPil", "CLIPImageProcessor")
"""The image processors ClipPixels reproduces (transformers loads the PIL one when torchvision is absent)."""
VOCABULARY = "vocabulary_t"
"""The step graph's (hidden x vocab) projection; also its token lookup when the embedding is tied."""
SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu", "relu", "tanh")


def git_config_problems(config: object) -> list[str]:
    """What in a GitConfig these graphs do not reproduce (empty: exportable)."""
    problems = []
    if getattr(config, "num_image_with_embedding", None) is not None:
        problems.append(f"num_image_with_embedding={config.num_image_with_embedding} (video GIT models)")
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type={config.position_embedding_type!r} (absolute only)")
    for name, activation in (
        ("hidden_act", config.hidden_act),
        ("vision_config.hidden_act", config.vision_config.hidden_act),
    ):
        if activation not in SUPPORTED_ACTIVATIONS:
            problems.append(f"{name}={activation!r} (supported: {', '.join(SUPPORTED_ACTIVATIONS)})")
    return problems


def clip_pixel_settings(processor: object) -> dict[str, object]:
    """A CLIP-style image processor's settings as `captioning.function.onnx_git.ClipPixels` reads them;
    UnsupportedProcessor names what it does not reproduce."""
    kind = type(processor).__name__
    if kind not in CLIP_PROCESSORS:
        raise UnsupportedProcessor(f"image processor {kind} (supported: {', '.join(CLIP_PROCESSORS)})")
    size = {key: value for key, value in dict(processor.size).items() if value is not None}
    problems = []
    if not processor.do_resize:
        problems.append(f"do_resize={processor.do_resize!r}")
    if set(size) not in ({"shortest_edge"}, {"height", "width"}):
        problems.append(f"size={size!r} (a shortest_edge, or a height and width)")
    if getattr(processor, "do_pad", None):
        problems.append("do_pad=True")
    mean, std = processor.image_mean, processor.image_std
    if processor.do_normalize and not (len(mean) == len(std) == 3):
        problems.append(f"image_mean={mean!r}, image_std={std!r} (three values each)")
    if problems:
        raise UnsupportedProcessor("image processor settings not supported: " + ", ".join(problems))
    crop = dict(processor.crop_size) if processor.do_center_crop else None
    return {
        "resize": size,
        "resample": int(processor.resample),
        "crop": None if crop is None else {"height": crop["height"], "width": crop["width"]},
        "rescale_factor": float(processor.rescale_factor) if processor.do_rescale else None,
        "mean": [float(value) for value in mean] if processor.do_normalize else None,
        "std": [float(value) for value in std] if processor.do_normalize else None,
    }


def image_token_count(config: object) -> int:
    """Image tokens in GIT's prefix: the vision tower's patches and its class token."""
    vision = config.vision_config
    return (vision.image_size // vision.patch_size) ** 2 + 1


class _TextLayers(nn.Module):
    """What both graphs share: GIT's token embedding, its BERT-style layers and the vocabulary projection."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        git = model.git
        self.layers = git.encoder.layer
        self.position_embeddings = git.embeddings.position_embeddings.weight
        self.embedding_norm = git.embeddings.LayerNorm
        config = model.config
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // self.heads
        self.divisor = math.sqrt(self.head_dim)
        token_embeddings, vocabulary = git.embeddings.word_embeddings.weight, model.output.weight
        self.tied = token_embeddings.data_ptr() == vocabulary.data_ptr()
        # The vocabulary projection's weight stored once, transposed (hidden x vocab); when tied it is also
        # the token lookup (Gather along axis 1), so no second copy of the embedding is saved.
        self.vocabulary_t = nn.Parameter(  # named VOCABULARY
            vocabulary.detach().t().contiguous()
        )
        self.vocabulary_bias = model.output.bias
        self.token_embeddings = None if self.tied else nn.Parameter(token_embeddings.detach().clone())

    def embed(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """GitEmbeddings: token + position embedding, LayerNorm; any shape of ids -> (..., hidden)."""
        flat = input_ids.reshape(-1)
        if self.tied:
            tokens = torch.index_select(self.vocabulary_t, 1, flat).t()
        else:
            tokens = torch.index_select(self.token_embeddings, 0, flat)
        tokens = tokens.reshape(*input_ids.shape, -1)
        return self.embedding_norm(tokens + torch.index_select(self.position_embeddings, 0, positions))

    def split_heads(self, states: torch.Tensor) -> torch.Tensor:
        """(batch, length, hidden) -> (batch, heads, length, head_dim)."""
        return states.reshape(states.shape[0], states.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def merge_heads(self, states: torch.Tensor) -> torch.Tensor:
        """(batch, heads, length, head_dim) -> (batch, length, hidden)."""
        return states.transpose(1, 2).reshape(states.shape[0], states.shape[2], self.heads * self.head_dim)

    def finish_layer(self, layer: nn.Module, attended: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """GitSelfOutput then GitIntermediate + GitOutput (post-LayerNorm residuals, as BERT)."""
        attention_output = layer.attention.output(attended, hidden)
        return layer.output(layer.intermediate(attention_output), attention_output)

    def logits(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = torch.matmul(hidden, self.vocabulary_t) + self.vocabulary_bias
        return logits, functional.log_softmax(logits, dim=-1)


class GitImageKeysValues(_TextLayers):
    """pixel_values (images, 3, H, W) -> image_kv (layers, 2, images, heads, image_tokens, head_dim)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.vision = model.git.image_encoder.vision_model
        self.visual_projection = model.git.visual_projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        image = self.visual_projection(self.vision(pixel_values=pixel_values).last_hidden_state)
        image_kv = []
        for layer in self.layers:
            attention = layer.attention.self
            query, keys, values = (
                self.split_heads(projection(image))
                for projection in (attention.query, attention.key, attention.value)
            )
            image_kv.append(torch.stack([keys, values]))
            # image tokens attend to each other in both directions and never to the text
            scores = torch.matmul(query, keys.transpose(-1, -2)) / self.divisor
            attended = torch.matmul(functional.softmax(scores, dim=-1), values)
            image = self.finish_layer(layer, self.merge_heads(attended), image)
        return torch.stack(image_kv)


class GitDecoderStep(_TextLayers):
    """input_ids (rows, new), position, past, image_kv -> logits, log_probs, present (see the module)."""

    def forward(self, input_ids, position, past, image_kv):
        heads, head_dim = self.heads, self.head_dim
        images, image_tokens = image_kv.shape[2], image_kv.shape[4]
        rows, new = input_ids.shape[0], input_ids.shape[1]
        hidden = self.embed(input_ids, position + torch.arange(new, dtype=torch.int64))  # (rows, new, hidden)
        past_length = past.shape[4]
        allowed = torch.arange(past_length + new)[None, :] <= torch.arange(new)[:, None] + past_length
        causal = torch.where(allowed, 0.0, torch.finfo(torch.float32).min)  # (new, past + new)
        presents = []
        for index, layer in enumerate(self.layers):
            attention = layer.attention.self
            query = self.split_heads(attention.query(hidden))  # (rows, heads, new, head_dim)
            keys = torch.cat([past[index, 0], self.split_heads(attention.key(hidden))], dim=2)
            values = torch.cat([past[index, 1], self.split_heads(attention.value(hidden))], dim=2)
            presents.append(torch.stack([keys, values]))
            # the rows (beams) of one image query its image keys together: (images, heads, beams x new, hd)
            image_query = per_image(query, images, heads, new, head_dim)
            image_scores = torch.matmul(image_query, image_kv[index, 0].transpose(-1, -2))
            image_scores = per_row(image_scores, rows, heads, new, image_tokens)
            text_scores = torch.matmul(query, keys.transpose(-1, -2))
            scores = torch.cat([image_scores / self.divisor, text_scores / self.divisor + causal], dim=-1)
            weights = functional.softmax(scores, dim=-1)
            image_weights, text_weights = weights.split([image_tokens, keys.shape[2]], dim=-1)
            image_weights = per_image(image_weights, images, heads, new, image_tokens)
            image_attended = torch.matmul(image_weights, image_kv[index, 1])
            attended = per_row(image_attended, rows, heads, new, head_dim) + torch.matmul(
                text_weights, values
            )
            hidden = self.finish_layer(layer, self.merge_heads(attended), hidden)
        logits, log_probs = self.logits(hidden[:, -1])
        return logits, log_probs, torch.stack(presents)


def per_image(states: torch.Tensor, images: int, heads: int, new: int, width: int) -> torch.Tensor:
    """(images x beams, heads, new, width) -> (images, heads, beams x new, width)."""
    states = states.reshape(images, -1, heads, new, width).permute(0, 2, 1, 3, 4)
    return states.reshape(images, heads, -1, width)


def per_row(states: torch.Tensor, rows: int, heads: int, new: int, width: int) -> torch.Tensor:
    """(images, heads, beams x new, width) -> (images x beams, heads, new, width)."""
    images = states.shape[0]
    states = states.reshape(images, heads, -1, new, width).permute(0, 2, 1, 3, 4)
    return states.reshape(rows, heads, new, width)


def export_git_graphs(model: nn.Module, directory: Path, *, opset: int) -> dict[str, str]:
    """Write GIT_ENCODER and GIT_DECODER for `model` (a GitForCausalLM in eval mode); {role: file name}."""
    vision = model.config.vision_config
    images, beams, past_length, new = 2, 2, 3, 2
    pixel_values = torch.zeros(images, vision.num_channels, vision.image_size, vision.image_size)
    encoder = GitImageKeysValues(model).eval()
    step = GitDecoderStep(model).eval()
    with torch.inference_mode():
        image_kv = encoder(pixel_values)
    rows = images * beams
    past = torch.zeros(len(step.layers), 2, rows, step.heads, past_length, step.head_dim)
    step_inputs = (
        torch.zeros(rows, new, dtype=torch.int64),
        torch.tensor([past_length], dtype=torch.int64),
        past,
        image_kv,
    )
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            encoder,
            (pixel_values,),
            str(directory / GIT_ENCODER),
            input_names=["pixel_values"],
            output_names=["image_kv"],
            dynamic_axes={"pixel_values": {0: "images"}, "image_kv": {2: "images"}},
            opset_version=opset,
            dynamo=False,
        )
        torch.onnx.export(
            step,
            step_inputs,
            str(directory / GIT_DECODER),
            input_names=["input_ids", "position", "past", "image_kv"],
            output_names=["logits", "log_probs", "present"],
            dynamic_axes={
                "input_ids": {0: "rows", 1: "new"},
                "past": {2: "rows", 4: "past"},
                "image_kv": {2: "images"},
                "logits": {0: "rows"},
                "log_probs": {0: "rows"},
                "present": {2: "rows", 4: "next"},
            },
            opset_version=opset,
            dynamo=False,
        )
    return {"encoder": GIT_ENCODER, "decoder": GIT_DECODER}


class GitExporter(FamilyExporter):
    family = "git"
    verify_prompts = (None, GIT_CHECK_PROMPT)
    shared_vocabulary = VOCABULARY

    def problems(self, config: object) -> list[str]:
        return git_config_problems(config)

    def load(self, source: Path) -> Loaded:
        from transformers import AutoImageProcessor, AutoTokenizer, GitForCausalLM

        model = GitForCausalLM.from_pretrained(source, local_files_only=True, dtype=torch.float32)
        model.eval()
        processor = AutoImageProcessor.from_pretrained(source, backend="pil", local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        generation = generation_dict(model.generation_config)
        start = tokenizer.cls_token_id  # the torch runtime's start, as GIT's own VQA example has it
        if start is None:
            start = model.generation_config.bos_token_id
        if start is None:
            raise refuse_onnx("no [CLS] token in the tokenizer and no bos_token_id in the generation config")
        return Loaded(model, processor, tokenizer, generation, extra={"start": int(start)})

    def manifest(self, loaded: Loaded) -> dict:
        config = loaded.model.config
        try:
            pixels = clip_pixel_settings(loaded.processor)
        except UnsupportedProcessor as problem:
            raise refuse_onnx(str(problem)) from problem
        heads = config.num_attention_heads
        return {
            "layers": config.num_hidden_layers,
            "heads": heads,
            "head_dim": config.hidden_size // heads,
            "image_tokens": image_token_count(config),
            "decoder_start_token_id": loaded.extra["start"],
            "max_position_embeddings": config.max_position_embeddings,
            "pixels": pixels,
        }

    def export_graphs(self, loaded: Loaded, directory: Path, *, opset: int) -> dict[str, str]:
        return export_git_graphs(loaded.model, directory, opset=opset)

    def reference_pixel_values(self, loaded: Loaded, images: Sequence[Image.Image]) -> np.ndarray:
        rgb = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        return loaded.processor(images=rgb, return_tensors="np").pixel_values

    def prompt_ids(self, loaded: Loaded, prompt: str | None) -> list[int]:
        """What the torch runtime gives `generate` as input_ids: [CLS], then the prompt's tokens."""
        ids = [loaded.extra["start"]]
        if prompt:
            ids += loaded.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        return ids

    def reference(self, loaded, images, *, prompt, num_beams, max_length):
        pixel_values = torch.from_numpy(self.reference_pixel_values(loaded, images))
        inputs = {"pixel_values": pixel_values}
        prompt_ids = self.prompt_ids(loaded, prompt)
        if prompt:
            inputs["input_ids"] = torch.tensor([prompt_ids] * len(images), dtype=torch.long)
        with torch.inference_mode():
            generated = loaded.model.generate(**inputs, num_beams=num_beams, max_length=max_length)
        texts = loaded.tokenizer.batch_decode(generated[:, len(prompt_ids) :], skip_special_tokens=True)
        return generated.tolist(), [text.strip() for text in texts]

    def teacher_forced_log_probs(self, loaded, images, *, prompt, rows):
        pixel_values = torch.from_numpy(self.reference_pixel_values(loaded, images))
        pixel_values = pixel_values.repeat_interleave(len(rows) // len(images), dim=0)
        image_tokens = image_token_count(loaded.model.config)
        with torch.inference_mode():
            logits = loaded.model(pixel_values=pixel_values, input_ids=torch.tensor(rows)).logits
            return torch.log_softmax(logits[:, image_tokens:].float(), dim=-1).numpy()


EXPORTERS = {"git": GitExporter}
