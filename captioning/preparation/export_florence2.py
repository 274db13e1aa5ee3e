"""Florence-2 (Florence2ForConditionalGeneration, florence-community/Florence-2-*) on ONNX Runtime at build
time: two graphs written from the model's own submodules, and the family's exporter.

Florence-2 is an encoder-decoder: the DaViT vision tower and its projection turn the image into tokens
that lead the task prompt's embeddings ([image tokens] <s> prompt </s>, as Florence2Processor lays them
out) into BART's text encoder; the BART decoder cross-attends to the encoder's output.

- encoder: pixel_values (images, 3, H, W), input_ids (images, prompt) (<s> prompt </s>, no image tokens)
  -> cross_kv (layers, 2, images, heads, image_tokens + prompt, head_dim): vision tower, projection, text
  encoder and every decoder layer's cross-attention keys/values, once per image (not once per beam);
- decoder_step: input_ids (rows, new), position (1,), past (layers, 2, rows, heads, past, head_dim),
  cross_kv -> logits, log_probs of the last new token (rows, vocab), present (past + new); rows = images x
  beams, image-major, an image's beams attending together to its cross keys/values.

Run time: captioning/function/onnx_florence2.py.
"""

from __future__ import annotations

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
from captioning.preparation.export_git import clip_pixel_settings, per_image, per_row
from captioning.preparation.export_vit_gpt2 import generation_dict
from captioning.preparation.family_export import FamilyExporter, Loaded

VOCABULARY = "vocabulary_t"
"""The (hidden x vocab) projection, also the token lookup (Florence-2's lm_head is tied to BART's shared)."""
SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu", "relu", "tanh")
CHECK_PROMPTS = ("<CAPTION>", "<DETAILED_CAPTION>")


def florence2_config_problems(config: object) -> list[str]:
    text = config.text_config
    problems = []
    if text.model_type != "bart":
        problems.append(f"text_config.model_type={text.model_type!r} (bart only)")
    if text.activation_function not in SUPPORTED_ACTIVATIONS:
        problems.append(f"text_config.activation_function={text.activation_function!r}")
    if getattr(text, "add_final_layer_norm", False) or getattr(text, "normalize_before", False):
        problems.append("a pre-LayerNorm (mBART-style) text model")
    return problems


def _heads(states: torch.Tensor, heads: int) -> torch.Tensor:
    """(batch, length, hidden) -> (batch, heads, length, head_dim)."""
    return states.reshape(states.shape[0], states.shape[1], heads, -1).transpose(1, 2)


def _merge(states: torch.Tensor) -> torch.Tensor:
    """(batch, heads, length, head_dim) -> (batch, length, hidden)."""
    return states.transpose(1, 2).reshape(states.shape[0], states.shape[2], -1)


def _feed_forward(layer: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """BART's post-LayerNorm feed-forward block."""
    return layer.final_layer_norm(hidden + layer.fc2(layer.activation_fn(layer.fc1(hidden))))


class _Text(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        language = model.model.language_model
        self.language = language
        self.heads = language.config.encoder_attention_heads
        self.decoder_heads = language.config.decoder_attention_heads
        self.embed_scale = float(language.shared.embed_scale)
        if model.lm_head.weight.data_ptr() != language.shared.weight.data_ptr():
            raise refuse_onnx("an lm_head not tied to the shared token embedding")
        self.vocabulary_t = nn.Parameter(model.lm_head.weight.detach().t().contiguous())  # named VOCABULARY

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """BartScaledWordEmbedding, read from the (hidden x vocab) matrix stored once."""
        tokens = torch.index_select(self.vocabulary_t, 1, input_ids.reshape(-1)).t()
        return tokens.reshape(*input_ids.shape, -1) * self.embed_scale


class Florence2Encoder(_Text):
    """pixel_values, input_ids -> cross_kv (see the module docstring)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.vision = model.model.vision_tower
        self.projector = model.model.multi_modal_projector
        decoder_layers = self.language.decoder.layers
        self.layers = len(decoder_layers)
        self.kv_weight = nn.Parameter(
            torch.cat(
                [
                    p.weight
                    for layer in decoder_layers
                    for p in (layer.encoder_attn.k_proj, layer.encoder_attn.v_proj)
                ]
            ).detach()
        )
        self.kv_bias = nn.Parameter(
            torch.cat(
                [
                    p.bias
                    for layer in decoder_layers
                    for p in (layer.encoder_attn.k_proj, layer.encoder_attn.v_proj)
                ]
            ).detach()
        )

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        hidden = pixel_values
        for conv, blocks in zip(self.vision.convs, self.vision.blocks, strict=True):
            hidden = conv(hidden)
            for block in blocks:
                hidden = block(hidden)
        image = self.projector(hidden)
        embeds = torch.cat([image, self.embed(input_ids)], dim=1)
        encoder = self.language.encoder
        positions = torch.arange(embeds.shape[1], dtype=torch.int64) + encoder.embed_positions.offset
        hidden = encoder.layernorm_embedding(embeds + encoder.embed_positions.weight[positions])
        for layer in encoder.layers:
            attention = layer.self_attn
            query, keys, values = (
                _heads(projection(hidden), self.heads)
                for projection in (attention.q_proj, attention.k_proj, attention.v_proj)
            )
            scores = torch.matmul(query, keys.transpose(-1, -2)) * attention.scaling
            attended = _merge(torch.matmul(functional.softmax(scores, dim=-1), values))
            hidden = layer.self_attn_layer_norm(hidden + attention.out_proj(attended))
            hidden = _feed_forward(layer, hidden)
        kv = functional.linear(hidden, self.kv_weight, self.kv_bias)
        images, positions_count = hidden.shape[0], hidden.shape[1]
        kv = kv.reshape(images, positions_count, self.layers, 2, self.decoder_heads, -1)
        return kv.permute(2, 3, 0, 4, 1, 5).contiguous()


class Florence2DecoderStep(_Text):
    """input_ids (rows, new), position, past, cross_kv -> logits, log_probs, present (module docstring)."""

    def forward(self, input_ids, position, past, cross_kv):
        decoder = self.language.decoder
        heads = self.decoder_heads
        images, head_dim = cross_kv.shape[2], cross_kv.shape[5]
        rows, new = input_ids.shape[0], input_ids.shape[1]
        positions = position + torch.arange(new, dtype=torch.int64) + decoder.embed_positions.offset
        hidden = decoder.layernorm_embedding(
            self.embed(input_ids) + decoder.embed_positions.weight[positions]
        )
        past_length = past.shape[4]
        allowed = torch.arange(past_length + new)[None, :] <= torch.arange(new)[:, None] + past_length
        causal = torch.where(allowed, 0.0, torch.finfo(torch.float32).min)
        presents = []
        for index, layer in enumerate(decoder.layers):
            attention = layer.self_attn
            query = _heads(attention.q_proj(hidden), heads)
            keys = torch.cat([past[index, 0], _heads(attention.k_proj(hidden), heads)], dim=2)
            values = torch.cat([past[index, 1], _heads(attention.v_proj(hidden), heads)], dim=2)
            presents.append(torch.stack([keys, values]))
            scores = torch.matmul(query, keys.transpose(-1, -2)) * attention.scaling + causal
            attended = _merge(torch.matmul(functional.softmax(scores, dim=-1), values))
            hidden = layer.self_attn_layer_norm(hidden + attention.out_proj(attended))

            cross = layer.encoder_attn
            query = per_image(_heads(cross.q_proj(hidden), heads), images, heads, new, head_dim)
            scores = torch.matmul(query, cross_kv[index, 0].transpose(-1, -2)) * cross.scaling
            attended = torch.matmul(functional.softmax(scores, dim=-1), cross_kv[index, 1])
            attended = _merge(per_row(attended, rows, heads, new, head_dim))
            hidden = layer.encoder_attn_layer_norm(hidden + cross.out_proj(attended))
            hidden = _feed_forward(layer, hidden)
        logits = torch.matmul(hidden[:, -1], self.vocabulary_t)
        return logits, functional.log_softmax(logits, dim=-1), torch.stack(presents)


def export_florence2_graphs(model: nn.Module, directory: Path, *, opset: int, image_size: tuple[int, int]):
    """Write the encoder and decoder step graphs of `model` into `directory`; {role: file name}."""
    images, beams, past_length, new, prompt = 2, 2, 3, 2, 4
    pixel_values = torch.zeros(images, 3, *image_size)
    input_ids = torch.zeros(images, prompt, dtype=torch.int64)
    encoder = Florence2Encoder(model).eval()
    step = Florence2DecoderStep(model).eval()
    with torch.inference_mode():
        cross_kv = encoder(pixel_values, input_ids)
    rows = images * beams
    layers, heads = cross_kv.shape[0], cross_kv.shape[3]
    past = torch.zeros(layers, 2, rows, heads, past_length, cross_kv.shape[5])
    step_inputs = (
        torch.zeros(rows, new, dtype=torch.int64),
        torch.tensor([past_length], dtype=torch.int64),
        past,
        cross_kv,
    )
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            encoder,
            (pixel_values, input_ids),
            str(directory / ONNX_ENCODER),
            input_names=["pixel_values", "input_ids"],
            output_names=["cross_kv"],
            dynamic_axes={
                "pixel_values": {0: "images"},
                "input_ids": {0: "images", 1: "prompt"},
                "cross_kv": {2: "images", 4: "encoded"},
            },
            opset_version=opset,
            dynamo=False,
        )
        torch.onnx.export(
            step,
            step_inputs,
            str(directory / ONNX_DECODER),
            input_names=["input_ids", "position", "past", "cross_kv"],
            output_names=["logits", "log_probs", "present"],
            dynamic_axes={
                "input_ids": {0: "rows", 1: "new"},
                "past": {2: "rows", 4: "past"},
                "cross_kv": {2: "images", 4: "encoded"},
                "logits": {0: "rows"},
                "log_probs": {0: "rows"},
                "present": {2: "rows", 4: "next"},
            },
            opset_version=opset,
            dynamo=False,
        )
    return {"encoder": ONNX_ENCODER, "decoder": ONNX_DECODER}


class Florence2Exporter(FamilyExporter):
    family = "florence2"
    verify_prompts = (None, *CHECK_PROMPTS[1:])
    int8_roles = ("decoder",)
    """The encoder (DaViT, projection, text encoder) stays float32: Florence-2's vision tower is reported
    to lose accuracy with int8. Measured on Florence-2-base's architecture with random weights (no real
    checkpoint here): an int8 encoder's cross keys/values are 3.1 % off (relative L2) and next-token
    argmax still agreed on 32 of 32 teacher-forced steps, so random weights cannot show the reported
    sensitivity; the encoder is 689 MB float32, 308 MB int8, the decoder 342 -> 88 MB."""
    shared_vocabulary = VOCABULARY

    def problems(self, config: object) -> list[str]:
        return florence2_config_problems(config)

    def load(self, source: Path) -> Loaded:
        from transformers import AutoProcessor, Florence2ForConditionalGeneration

        model = Florence2ForConditionalGeneration.from_pretrained(
            source, local_files_only=True, dtype=torch.float32
        )
        model.eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "torchvision is not available, using the PIL backend"
            processor = AutoProcessor.from_pretrained(source, local_files_only=True)
        generation = generation_dict(model.generation_config)
        start = model.generation_config.decoder_start_token_id
        if start is None:
            start = model.config.text_config.decoder_start_token_id
        generation["decoder_start_token_id"] = int(start)
        return Loaded(model, processor, processor.tokenizer, generation)

    def manifest(self, loaded: Loaded) -> dict:
        processor = loaded.processor
        try:
            pixels = clip_pixel_settings(processor.image_processor)
        except UnsupportedProcessor as problem:
            raise refuse_onnx(str(problem)) from problem
        if getattr(processor, "num_additional_image_tokens", 0):
            raise refuse_onnx("a Florence-2 processor with num_additional_image_tokens")
        text = loaded.model.config.text_config
        return {
            "layers": text.decoder_layers,
            "heads": text.decoder_attention_heads,
            "head_dim": text.d_model // text.decoder_attention_heads,
            "decoder_start_token_id": loaded.generation_config["decoder_start_token_id"],
            "max_position_embeddings": getattr(loaded.model.config, "max_position_embeddings", None),
            "image_tokens": processor.num_image_tokens,
            "bos_token": processor.tokenizer.bos_token,
            "eos_token": processor.tokenizer.eos_token,
            "task_prompts_without_inputs": dict(processor.task_prompts_without_inputs),
            "task_prompts_with_input": dict(processor.task_prompts_with_input),
            "pixels": pixels,
        }

    def export_graphs(self, loaded: Loaded, directory: Path, *, opset: int) -> dict[str, str]:
        size = clip_pixel_settings(loaded.processor.image_processor)["resize"]
        return export_florence2_graphs(
            loaded.model, directory, opset=opset, image_size=(size["height"], size["width"])
        )

    def reference_pixel_values(self, loaded: Loaded, images: Sequence[Image.Image]) -> np.ndarray:
        rgb = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        return loaded.processor.image_processor(images=rgb, return_tensors="np").pixel_values

    def _inputs(self, loaded: Loaded, images, prompt):
        rgb = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        text = [prompt or CHECK_PROMPTS[0]] * len(images)
        return dict(loaded.processor(images=rgb, text=text, return_tensors="pt"))

    def reference(self, loaded, images, *, prompt, num_beams, max_length):
        inputs = self._inputs(loaded, images, prompt)
        with torch.inference_mode():
            generated = loaded.model.generate(**inputs, num_beams=num_beams, max_length=max_length)
        texts = loaded.tokenizer.batch_decode(generated, skip_special_tokens=True)
        return generated.tolist(), [text.strip() for text in texts]

    def teacher_forced_log_probs(self, loaded, images, *, prompt, rows):
        inputs = self._inputs(loaded, images, prompt)
        repeat = len(rows) // len(images)
        inputs = {name: value.repeat_interleave(repeat, dim=0) for name, value in inputs.items()}
        with torch.inference_mode():
            logits = loaded.model(**inputs, decoder_input_ids=torch.tensor(rows)).logits
            return torch.log_softmax(logits.float(), dim=-1).numpy()


EXPORTERS = {"florence2": Florence2Exporter}
