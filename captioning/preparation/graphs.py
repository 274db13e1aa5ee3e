"""ViT + GPT-2's two graphs (see export_vit_gpt2.py), built from a VisionEncoderDecoderModel's parts."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from captioning.contract.model_files import ONNX_DECODER, ONNX_ENCODER


def _projects_encoder_output(model: nn.Module) -> bool:
    """Mirrors VisionEncoderDecoderModel.forward: encoder states are projected when sizes differ."""
    return (
        model.encoder.config.hidden_size != model.decoder.config.hidden_size
        and getattr(model.decoder.config, "cross_attention_hidden_size", None) is None
    )


class EncoderToCrossKeysValues(nn.Module):
    """pixel_values (images, 3, H, W) -> cross_kv (layers, 2, images, heads, positions, head_dim)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.projection = model.enc_to_dec_proj if _projects_encoder_output(model) else None
        blocks = model.decoder.transformer.h
        self.layers = len(blocks)
        self.heads = model.decoder.config.n_head
        self.head_dim = model.decoder.config.n_embd // self.heads
        # Every layer's cross-attention key/value Conv1D (in x out) side by side: one MatMul for all.
        self.kv_weight = nn.Parameter(
            torch.cat([b.crossattention.c_attn.weight for b in blocks], dim=1).detach()
        )
        self.kv_bias = nn.Parameter(torch.cat([b.crossattention.c_attn.bias for b in blocks]).detach())

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(pixel_values=pixel_values).last_hidden_state
        if self.projection is not None:
            hidden = self.projection(hidden)
        kv = torch.matmul(hidden, self.kv_weight) + self.kv_bias
        kv = kv.reshape(hidden.shape[0], hidden.shape[1], self.layers, 2, self.heads, self.head_dim)
        return kv.permute(2, 3, 0, 4, 1, 5).contiguous()


def _linear(hidden: torch.Tensor, conv1d: nn.Module) -> torch.Tensor:
    """GPT-2's Conv1D (weight in x out) as MatMul + Add, which int8 quantisation recognises."""
    return torch.matmul(hidden, conv1d.weight) + conv1d.bias


class DecoderStep(nn.Module):
    """One GPT-2 step for rows = images x beams, with explicit caches.

    input_ids (rows,), position (1,), past (layers, 2, rows, heads, past, head_dim),
    cross_kv (layers, 2, images, heads, positions, head_dim)
    -> logits (rows, vocab), log_probs (rows, vocab), present (layers, 2, rows, heads, past + 1, head_dim).
    """

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        transformer = decoder.transformer
        self.blocks = transformer.h
        self.ln_f = transformer.ln_f
        self.position_embeddings = transformer.wpe.weight
        self.heads = decoder.config.n_head
        self.head_dim = decoder.config.n_embd // self.heads
        token_embeddings, vocabulary = transformer.wte.weight, decoder.lm_head.weight
        self.tied = token_embeddings.data_ptr() == vocabulary.data_ptr()
        # Stored once, transposed (hidden x vocab): the vocabulary projection's MatMul weight, and, when
        # tied, the token lookup too (Gather along axis 1), so no second copy of the embedding is saved.
        self.vocabulary_t = nn.Parameter(vocabulary.detach().t().contiguous())
        self.token_embeddings = None if self.tied else nn.Parameter(token_embeddings.detach().clone())

    def _attend(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, scaling: float):
        weights = functional.softmax(torch.matmul(query, keys.transpose(-1, -2)) * scaling, dim=-1)
        return torch.matmul(weights, values)

    def forward(self, input_ids, position, past, cross_kv):
        heads, head_dim = self.heads, self.head_dim
        if self.tied:
            hidden = torch.index_select(self.vocabulary_t, 1, input_ids).t()
        else:
            hidden = torch.index_select(self.token_embeddings, 0, input_ids)
        hidden = hidden + torch.index_select(self.position_embeddings, 0, position)
        images = cross_kv.shape[2]
        presents = []
        for index, block in enumerate(self.blocks):
            attention = block.attn
            query, key, value = _linear(block.ln_1(hidden), attention.c_attn).split(
                attention.split_size, dim=1
            )
            query = query.reshape(-1, heads, 1, head_dim)
            keys = torch.cat([past[index, 0], key.reshape(-1, heads, 1, head_dim)], dim=2)
            values = torch.cat([past[index, 1], value.reshape(-1, heads, 1, head_dim)], dim=2)
            presents.append(torch.stack([keys, values]))
            attended = self._attend(query, keys, values, attention.scaling).reshape(-1, heads * head_dim)
            hidden = hidden + _linear(attended, attention.c_proj)

            cross = block.crossattention
            query = _linear(block.ln_cross_attn(hidden), cross.q_attn)
            query = query.reshape(images, -1, heads, head_dim).transpose(1, 2)  # (images, heads, beams, hd)
            attended = self._attend(query, cross_kv[index, 0], cross_kv[index, 1], cross.scaling)
            hidden = hidden + _linear(attended.transpose(1, 2).reshape(-1, heads * head_dim), cross.c_proj)

            mlp = block.mlp
            hidden = hidden + _linear(mlp.act(_linear(block.ln_2(hidden), mlp.c_fc)), mlp.c_proj)
        logits = torch.matmul(self.ln_f(hidden), self.vocabulary_t)
        return logits, functional.log_softmax(logits, dim=-1), torch.stack(presents)


def export_graphs(model: nn.Module, directory: Path, *, opset: int) -> dict[str, str]:
    """Write encoder.onnx and decoder_step.onnx for `model` into `directory`; {role: file name}."""
    config = model.config
    encoder_config = config.encoder
    images, beams, past_length = 2, 2, 3
    size = encoder_config.image_size
    pixel_values = torch.zeros(images, encoder_config.num_channels, size, size)
    encoder = EncoderToCrossKeysValues(model).eval()
    step = DecoderStep(model.decoder).eval()
    with torch.inference_mode():
        cross_kv = encoder(pixel_values)
    rows = images * beams
    past = torch.zeros(step.blocks.__len__(), 2, rows, step.heads, past_length, step.head_dim)
    step_inputs = (
        torch.zeros(rows, dtype=torch.int64),
        torch.tensor([past_length], dtype=torch.int64),
        past,
        cross_kv,
    )
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            encoder,
            (pixel_values,),
            str(directory / ONNX_ENCODER),
            input_names=["pixel_values"],
            output_names=["cross_kv"],
            dynamic_axes={"pixel_values": {0: "images"}, "cross_kv": {2: "images"}},
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
                "input_ids": {0: "rows"},
                "past": {2: "rows", 4: "past"},
                "cross_kv": {2: "images"},
                "logits": {0: "rows"},
                "log_probs": {0: "rows"},
                "present": {2: "rows", 4: "next"},
            },
            opset_version=opset,
            dynamo=False,
        )
    return {"encoder": ONNX_ENCODER, "decoder": ONNX_DECODER}
