"""The graphs of the BERT-style decoder families (vit-bert, blip), from the models' own submodules.

BERT's decoder (BertLMHeadModel, a VisionEncoderDecoderModel's decoder) and BLIP's text decoder
(BlipTextLMHeadModel) are the same post-LayerNorm transformer: embeddings (word + position, BERT adds
token type 0) and LayerNorm; per layer self-attention, cross-attention to the image, feed-forward, each
`LayerNorm(x + dense(...))`; the MLM head (dense, activation, LayerNorm, vocabulary projection + bias).
- per-image graph: pixel values -> the vision tower's states (projected where the model projects them)
  -> every layer's cross-attention keys/values (all layers' key/value projections as one matrix product)
  cross_kv (layers, 2, images, heads, positions, head_dim), once per image;
- decoder step: input_ids (rows, new), position (1,) of the first new token, past (layers, 2, rows,
  heads, past, head_dim), cross_kv -> logits (rows, vocab) and log_probs of the last new token, present
  (past + new positions). New tokens attend causally to each other (a prompt goes in as one step); the
  beams of an image attend together to its cross keys/values, stored once per image.
The tied token embedding is stored once, transposed (hidden x vocab): the vocabulary projection's
MatMul weight and the token lookup (Gather along axis 1).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from captioning.contract.model_files import ONNX_DECODER, ONNX_ENCODER

VOCABULARY = "vocabulary_t"
"""The step graph's transposed, shared vocabulary matrix (quantise.py rewires its lookup for int8)."""


def _stacked_cross_kv(layers: nn.ModuleList) -> tuple[torch.Tensor, torch.Tensor]:
    """Every layer's cross-attention key and value weights side by side (in x layers*2*hidden)."""
    weights, biases = [], []
    for layer in layers:
        attention = layer.crossattention.self
        for linear in (attention.key, attention.value):
            weights.append(linear.weight.t())
            biases.append(linear.bias)
    return torch.cat(weights, dim=1).detach().contiguous(), torch.cat(biases).detach()


class ImageToCrossKeysValues(nn.Module):
    """pixel_values (images, 3, H, W) -> cross_kv (layers, 2, images, heads, positions, head_dim)."""

    def __init__(self, vision: nn.Module, projection: nn.Module | None, decoder_layers, heads: int) -> None:
        super().__init__()
        self.vision = vision
        self.projection = projection
        self.layers = len(decoder_layers)
        self.heads = heads
        weight, bias = _stacked_cross_kv(decoder_layers)
        self.kv_weight = nn.Parameter(weight)
        self.kv_bias = nn.Parameter(bias)
        self.head_dim = weight.shape[1] // (2 * self.layers * heads)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden = self.vision(pixel_values=pixel_values)[0]
        if self.projection is not None:
            hidden = self.projection(hidden)
        kv = torch.matmul(hidden, self.kv_weight) + self.kv_bias
        kv = kv.reshape(hidden.shape[0], hidden.shape[1], self.layers, 2, self.heads, self.head_dim)
        return kv.permute(2, 3, 0, 4, 1, 5).contiguous()


def _linear(hidden: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """nn.Linear as MatMul + Add with the weight transposed once (int8 quantisation recognises MatMul)."""
    return torch.matmul(hidden, linear.weight.t()) + linear.bias


class BertDecoderStep(nn.Module):
    """One step of a BERT-style decoder with cross-attention, for rows = images x beams (module docstring)."""

    def __init__(self, lm_head_model: nn.Module) -> None:
        super().__init__()
        bert = lm_head_model.bert
        embeddings = bert.embeddings
        self.layers = bert.encoder.layer
        self.embedding_norm = embeddings.LayerNorm
        self.position_embeddings = embeddings.position_embeddings.weight
        token_type = getattr(embeddings, "token_type_embeddings", None)
        self.token_type = None if token_type is None else nn.Parameter(token_type.weight[0].detach().clone())
        self.heads = self.layers[0].attention.self.num_attention_heads
        self.head_dim = self.layers[0].attention.self.attention_head_size
        self.scaling = self.head_dim**-0.5
        predictions = lm_head_model.cls.predictions
        self.transform = predictions.transform
        word, vocabulary = embeddings.word_embeddings.weight, predictions.decoder.weight
        self.tied = word.data_ptr() == vocabulary.data_ptr()
        self.vocabulary_t = nn.Parameter(vocabulary.detach().t().contiguous())
        self.vocabulary_bias = nn.Parameter(predictions.decoder.bias.detach().clone())
        self.token_embeddings = None if self.tied else nn.Parameter(word.detach().clone())

    def _attend(self, query, keys, values, mask=None):
        scores = torch.matmul(query, keys.transpose(-1, -2)) * self.scaling
        if mask is not None:
            scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)
        return torch.matmul(functional.softmax(scores, dim=-1), values)

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        rows, new = states.shape[0], states.shape[1]
        return states.reshape(rows, new, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, input_ids, position, past, cross_kv):
        rows, new = input_ids.shape[0], input_ids.shape[1]
        flat = input_ids.reshape(-1)
        if self.tied:
            hidden = torch.index_select(self.vocabulary_t, 1, flat).t()
        else:
            hidden = torch.index_select(self.token_embeddings, 0, flat)
        hidden = hidden.reshape(rows, new, -1)
        positions = position + torch.arange(new, dtype=torch.int64)
        hidden = hidden + torch.index_select(self.position_embeddings, 0, positions)
        if self.token_type is not None:
            hidden = hidden + self.token_type
        hidden = self.embedding_norm(hidden)
        total = past.shape[4] + new
        # a new token at position p attends to every cached position and to new positions <= p
        key_positions = torch.arange(total, dtype=torch.int64)
        mask = key_positions[None, :] > (positions[:, None])
        images = cross_kv.shape[2]
        presents = []
        for index, layer in enumerate(self.layers):
            attention = layer.attention
            query = self._heads(_linear(hidden, attention.self.query))
            keys = torch.cat([past[index, 0], self._heads(_linear(hidden, attention.self.key))], dim=2)
            values = torch.cat([past[index, 1], self._heads(_linear(hidden, attention.self.value))], dim=2)
            presents.append(torch.stack([keys, values]))
            attended = self._attend(query, keys, values, mask).transpose(1, 2).reshape(rows, new, -1)
            output = attention.output
            hidden = output.LayerNorm(_linear(attended, output.dense) + hidden)

            cross = layer.crossattention
            query = _linear(hidden, cross.self.query).reshape(images, -1, self.heads, self.head_dim)
            attended = self._attend(query.transpose(1, 2), cross_kv[index, 0], cross_kv[index, 1])
            attended = attended.transpose(1, 2).reshape(rows, new, -1)
            hidden = cross.output.LayerNorm(_linear(attended, cross.output.dense) + hidden)

            intermediate = layer.intermediate
            inner = intermediate.intermediate_act_fn(_linear(hidden, intermediate.dense))
            hidden = layer.output.LayerNorm(_linear(inner, layer.output.dense) + hidden)
        last = self.transform(hidden[:, -1])
        logits = torch.matmul(last, self.vocabulary_t) + self.vocabulary_bias
        return logits, functional.log_softmax(logits, dim=-1), torch.stack(presents)


def export_bert_decoder_graphs(
    image_graph: ImageToCrossKeysValues,
    step: BertDecoderStep,
    pixel_values: torch.Tensor,
    directory: Path,
    *,
    opset: int,
) -> dict[str, str]:
    """Write encoder.onnx and decoder_step.onnx; {role: file name}."""
    image_graph.eval()
    step.eval()
    with torch.inference_mode():
        cross_kv = image_graph(pixel_values)
    images, beams, past_length, new = pixel_values.shape[0], 2, 3, 2
    rows = images * beams
    past = torch.zeros(len(step.layers), 2, rows, step.heads, past_length, step.head_dim)
    step_inputs = (
        torch.zeros(rows, new, dtype=torch.int64),
        torch.tensor([past_length], dtype=torch.int64),
        past,
        cross_kv,
    )
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            image_graph,
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
                "input_ids": {0: "rows", 1: "new"},
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
