"""Idefics3 / SmolVLM (Idefics3ForConditionalGeneration, HuggingFaceTB/SmolVLM-*) on ONNX Runtime at build
time: two graphs written from the model's own submodules, and the family's exporter.

Idefics3 is a prefix model: the chat prompt's `<image>` tokens are replaced by the image's features
(SigLIP-style vision tower on each tile, pixel shuffle + projection: Idefics3Model.get_image_features and
inputs_merger) and the whole sequence runs through a Llama text model (RoPE, grouped-query attention,
RMSNorm), causally. So the prefix up to the image block is computed once per image, and generation
continues it with one decoder step over explicit caches.

- encoder: pixel_values (tiles, 3, tile, tile) -> image_features (tiles, image_seq_len, hidden): the vision
  tower (every patch real: the processor's tiles are whole) and the connector;
- decoder_step (used for the prefix too): input_ids (rows, new), image_features (n, hidden) put in order
  where input_ids holds the image token (n = 0 after the prefix), position_ids (rows, new), attention_mask
  (rows, past + new) (0 on a row's left padding), past (layers, 2, rows, kv_heads, past, head_dim) ->
  logits, log_probs of the last new token (rows, vocab), present (past + new).

Run time: captioning/function/onnx_idefics3.py (processor, prompt, padding of prefixes of different
lengths). What these graphs or the run time cannot reproduce is refused by name before weights load, or
once the processor is read.
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
from captioning.function.generic_captioner import CHAT_STYLE, DEFAULT_PROMPTS
from captioning.function.onnx_idefics3 import Idefics3Pixels, Idefics3Prompt
from captioning.preparation.errors import refuse_onnx
from captioning.preparation.export_vit_gpt2 import generation_dict
from captioning.preparation.family_export import FamilyExporter, Loaded

IDEFICS3_PROCESSORS = ("Idefics3ImageProcessorPil", "Idefics3ImageProcessor")
SUPPORTED_ROPE = ("default", "linear", "llama3")
"""RoPE types whose frequencies are fixed at load (the graph bakes them in); dynamic ones vary with length."""
UNSUPPORTED_GENERATION = ("repetition_penalty", "no_repeat_ngram_size", "max_length")
"""Generation settings that read the whole prompt (image tokens included) or count it: the run time's
search sees only the text after the image block."""
VOCABULARY = "vocabulary_t"
"""The text graph's (hidden x vocab) LM head; also its token lookup when the embedding is tied."""
_SENTINEL = "\x00PROMPT\x00"
CHECK_PROMPT = "What does the image describe?"


def idefics3_config_problems(config: object) -> list[str]:
    """What in an Idefics3Config these graphs do not reproduce (empty: exportable)."""
    problems = []
    text = config.text_config
    if text.model_type != "llama":
        problems.append(f"text_config.model_type={text.model_type!r} (llama only)")
        return problems
    rope = (getattr(text, "rope_parameters", None) or {}).get("rope_type", "default")
    if rope not in SUPPORTED_ROPE:
        problems.append(f"text_config rope_type={rope!r} (supported: {', '.join(SUPPORTED_ROPE)})")
    return problems


def pixel_settings(image_processor: object) -> dict[str, object]:
    """Idefics3ImageProcessor's settings as Idefics3Pixels reads them; refuse what it does not reproduce."""
    kind = type(image_processor).__name__
    if kind not in IDEFICS3_PROCESSORS:
        raise refuse_onnx(f"image processor {kind} (supported: {', '.join(IDEFICS3_PROCESSORS)})")
    size, tile = dict(image_processor.size), dict(image_processor.max_image_size)
    problems = []
    if not image_processor.do_resize:
        problems.append("do_resize=False")
    if set(k for k, v in size.items() if v is not None) != {"longest_edge"}:
        problems.append(f"size={size!r} (a longest_edge)")
    if not image_processor.do_pad:
        problems.append("do_pad=False")
    mean, std = image_processor.image_mean, image_processor.image_std
    if image_processor.do_normalize and not (len(mean) == len(std) == 3):
        problems.append(f"image_mean={mean!r}, image_std={std!r} (three values each)")
    if problems:
        raise refuse_onnx("image processor settings not supported: " + ", ".join(problems))
    return Idefics3Pixels(
        resample=int(image_processor.resample),
        longest_edge=int(size["longest_edge"]),
        tile=int(tile["longest_edge"]),
        split=bool(image_processor.do_image_splitting),
        scale=float(image_processor.rescale_factor) if image_processor.do_rescale else None,
        mean=tuple(float(value) for value in mean) if image_processor.do_normalize else None,
        std=tuple(float(value) for value in std) if image_processor.do_normalize else None,
    ).to_settings()


def chat_text(processor: object, prompt: str) -> str:
    """The torch runtime's chat text (generic_captioner._chat_text): one user turn, image then prompt."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def prompt_settings(processor: object) -> dict[str, object]:
    """The chat template read as text around the image and the prompt; refused when it is not that."""
    if not getattr(processor, "chat_template", None):
        raise refuse_onnx("a processor without a chat template")
    image_token = processor.image_token
    text = chat_text(processor, _SENTINEL)
    if text.count(image_token) != 1 or text.count(_SENTINEL) != 1:
        raise refuse_onnx("a chat template that does not put one image and the prompt once in the text")
    before_image, rest = text.split(image_token)
    between, after_prompt = rest.split(_SENTINEL)
    if between:
        raise refuse_onnx(f"a chat template with text {between!r} between the image and the prompt")
    chat = Idefics3Prompt(
        before_image=before_image,
        after_prompt=after_prompt,
        image_seq_len=int(processor.image_seq_len),
        fake_image_token=processor.fake_image_token,
        image_token=image_token,
        global_image_tag=processor.global_image_tag,
    )
    for prompt in (CHECK_PROMPT, "{{ x }} a"):
        if chat_text(processor, prompt) != f"{before_image}{image_token}{prompt}{after_prompt}":
            raise refuse_onnx("a chat template whose text around the prompt depends on the prompt")
    return chat.to_settings()


class _TextModel(nn.Module):
    """The Llama text model's embedding, layers, final norm and the LM head, caches explicit."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        text = model.model.text_model
        config = model.config.text_config
        self.layers = text.layers
        self.norm = text.norm
        self.rotary_emb = text.rotary_emb
        embeddings, vocabulary = text.embed_tokens.weight, model.lm_head.weight
        self.tied = embeddings.data_ptr() == vocabulary.data_ptr()
        # The LM head's weight stored once, transposed (hidden x vocab); when tied it is also the token
        # lookup (Gather along axis 1), so no second copy of SmolVLM's 49k x 576 embedding is saved.
        self.vocabulary_t = nn.Parameter(vocabulary.detach().t().contiguous())  # named VOCABULARY
        self.lm_bias = model.lm_head.bias
        self.embed_tokens = None if self.tied else text.embed_tokens
        self.image_token_id = int(model.config.image_token_id)
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads

    def forward(self, input_ids, image_features, position_ids, attention_mask, past):
        rows, new = input_ids.shape
        if self.tied:
            embeds = torch.index_select(self.vocabulary_t, 1, input_ids.reshape(-1)).t()
            embeds = embeds.reshape(rows, new, -1)
        else:
            embeds = self.embed_tokens(input_ids)
        # inputs_merger: the image features, in order, where the ids hold the image token. Only the
        # prefix brings features: an image token generated later keeps its embedding, as in generate
        # (which merges on its first pass only). A zero row is appended so that a step without
        # features still gathers a valid row.
        is_image = (input_ids == self.image_token_id).reshape(-1)
        order = torch.cumsum(is_image.to(torch.int64), dim=0) - 1
        is_image = is_image & (order < torch._shape_as_tensor(image_features)[0])
        features = torch.cat([image_features, torch.zeros(1, embeds.shape[-1])], dim=0)
        merged = torch.index_select(
            features, 0, torch.where(is_image, order, torch.zeros_like(order))
        ).reshape(rows, new, -1)
        hidden = torch.where(is_image.reshape(rows, new, 1), merged, embeds)

        past_length = past.shape[4]
        total = past_length + new
        causal = torch.arange(total)[None, :] <= torch.arange(new)[:, None] + past_length  # (new, total)
        allowed = causal[None, :, :] & (attention_mask[:, None, :] > 0)  # (rows, new, total)
        bias = torch.where(allowed, 0.0, torch.finfo(torch.float32).min)[:, None]  # (rows, 1, new, total)
        cos, sin = self.rotary_emb(hidden, position_ids)
        cos, sin = cos[:, None], sin[:, None]
        groups = self.heads // self.kv_heads
        presents = []
        for index, layer in enumerate(self.layers):
            attention = layer.self_attn
            normed = layer.input_layernorm(hidden)
            query = attention.q_proj(normed).reshape(rows, new, self.heads, self.head_dim).transpose(1, 2)
            key = attention.k_proj(normed).reshape(rows, new, self.kv_heads, self.head_dim).transpose(1, 2)
            value = attention.v_proj(normed).reshape(rows, new, self.kv_heads, self.head_dim).transpose(1, 2)
            query, key = _rotary(query, cos, sin), _rotary(key, cos, sin)
            keys = torch.cat([past[index, 0], key], dim=2)
            values = torch.cat([past[index, 1], value], dim=2)
            presents.append(torch.stack([keys, values]))
            keys, values = keys.repeat_interleave(groups, dim=1), values.repeat_interleave(groups, dim=1)
            scores = torch.matmul(query, keys.transpose(-1, -2)) * attention.scaling + bias
            attended = torch.matmul(functional.softmax(scores, dim=-1), values)
            attended = attended.transpose(1, 2).reshape(rows, new, self.heads * self.head_dim)
            hidden = hidden + attention.o_proj(attended)
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        logits = torch.matmul(self.norm(hidden[:, -1]), self.vocabulary_t)
        if self.lm_bias is not None:
            logits = logits + self.lm_bias
        return logits, functional.log_softmax(logits, dim=-1), torch.stack(presents)


def _rotary(states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """apply_rotary_pos_emb for one tensor (Llama's rotate_half)."""
    half = states.shape[-1] // 2
    rotated = torch.cat([-states[..., half:], states[..., :half]], dim=-1)
    return states * cos + rotated * sin


class _ImageFeatures(nn.Module):
    """pixel_values (tiles, 3, tile, tile) -> (tiles, image_seq_len, hidden): vision tower + connector.

    Every patch of a tile is real, so the embeddings' position ids (Idefics3VisionEmbeddings' bucketed
    fractional coordinates of an all-true patch mask) are one constant, computed here with the model's
    own formula; the encoder then runs without an attention mask, as the model's does for a full mask."""

    def __init__(self, model: nn.Module, tile: int) -> None:
        super().__init__()
        vision = model.model.vision_model
        self.embeddings = vision.embeddings
        self.encoder = vision.encoder
        self.post_layernorm = vision.post_layernorm
        self.connector = model.model.connector
        patches = tile // model.config.vision_config.patch_size
        self.register_buffer(
            "position_ids", _full_mask_position_ids(self.embeddings, patches), persistent=False
        )

    def forward(self, pixel_values):
        embeddings = self.embeddings.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        hidden = embeddings + self.embeddings.position_embedding(self.position_ids)
        hidden = self.encoder(inputs_embeds=hidden, attention_mask=None).last_hidden_state
        return self.connector(self.post_layernorm(hidden))


def _full_mask_position_ids(embeddings: nn.Module, patches: int) -> torch.Tensor:
    """Idefics3VisionEmbeddings.forward's position ids for one tile whose patches are all real."""
    side = embeddings.num_patches_per_side
    boundaries = torch.arange(1 / side, 1.0, 1 / side)
    step = 1.0 / torch.tensor([patches])
    coords = torch.clamp(torch.arange(patches, dtype=torch.float32)[None, :] * step[:, None], max=1.0 - 1e-6)
    buckets = torch.bucketize(coords, boundaries, right=True)[0]
    return (buckets[:, None] * side + buckets[None, :]).reshape(1, -1)


def export_idefics3_graphs(model: nn.Module, directory: Path, *, opset: int, tile: int) -> dict[str, str]:
    encoder = _ImageFeatures(model, tile).eval()
    step = _TextModel(model).eval()
    channels = model.config.vision_config.num_channels
    pixel_values = torch.zeros(2, channels, tile, tile)
    with torch.inference_mode():
        features = encoder(pixel_values)
    features = features.reshape(-1, features.shape[-1])
    rows, new, past_length = 2, 3, 2
    input_ids = torch.zeros(rows, new, dtype=torch.int64)
    past = torch.zeros(len(step.layers), 2, rows, step.kv_heads, past_length, step.head_dim)
    step_inputs = (
        input_ids,
        features[:0],
        torch.arange(new)[None].repeat(rows, 1) + past_length,
        torch.ones(rows, past_length + new, dtype=torch.int64),
        past,
    )
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            encoder,
            (pixel_values,),
            str(directory / ONNX_ENCODER),
            input_names=["pixel_values"],
            output_names=["image_features"],
            dynamic_axes={"pixel_values": {0: "tiles"}, "image_features": {0: "tiles"}},
            opset_version=opset,
            dynamo=False,
        )
        torch.onnx.export(
            step,
            step_inputs,
            str(directory / ONNX_DECODER),
            input_names=["input_ids", "image_features", "position_ids", "attention_mask", "past"],
            output_names=["logits", "log_probs", "present"],
            dynamic_axes={
                "input_ids": {0: "rows", 1: "new"},
                "image_features": {0: "features"},
                "position_ids": {0: "rows", 1: "new"},
                "attention_mask": {0: "rows", 1: "total"},
                "past": {2: "rows", 4: "past"},
                "logits": {0: "rows"},
                "log_probs": {0: "rows"},
                "present": {2: "rows", 4: "next"},
            },
            opset_version=opset,
            dynamo=False,
        )
    return {"encoder": ONNX_ENCODER, "decoder": ONNX_DECODER}


class Idefics3Exporter(FamilyExporter):
    family = "idefics3"
    verify_prompts = (None, CHECK_PROMPT)
    shared_vocabulary = VOCABULARY

    def problems(self, config: object) -> list[str]:
        return idefics3_config_problems(config)

    def load(self, source: Path) -> Loaded:
        from transformers import AutoProcessor, AutoTokenizer, Idefics3ForConditionalGeneration

        model = Idefics3ForConditionalGeneration.from_pretrained(
            source, local_files_only=True, dtype=torch.float32
        )
        model.eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "torchvision is not available, using the PIL backend"
            processor = AutoProcessor.from_pretrained(source, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        tokenizer.padding_side = "left"
        processor.tokenizer.padding_side = "left"
        return Loaded(model, processor, tokenizer, generation_dict(model.generation_config))

    def manifest(self, loaded: Loaded) -> dict:
        set_here = [name for name in UNSUPPORTED_GENERATION if loaded.generation_config.get(name) is not None]
        if set_here:
            raise refuse_onnx(
                "generation config "
                + ", ".join(f"{n}={loaded.generation_config[n]!r}" for n in set_here)
                + " for idefics3 (these read or count the whole prompt, image tokens included)"
            )
        config = loaded.model.config
        text = config.text_config
        processor = loaded.processor
        heads = text.num_attention_heads
        start = loaded.generation_config.get("bos_token_id", text.bos_token_id)
        return {
            "layers": text.num_hidden_layers,
            "kv_heads": text.num_key_value_heads,
            "head_dim": getattr(text, "head_dim", None) or text.hidden_size // heads,
            "hidden_size": text.hidden_size,
            "image_token_id": int(config.image_token_id),
            "fake_image_token_id": int(processor.fake_image_token_id),
            "decoder_start_token_id": int(start),
            "max_position_embeddings": text.max_position_embeddings,
            "default_prompt": DEFAULT_PROMPTS[CHAT_STYLE],
            "pixels": pixel_settings(processor.image_processor),
            "chat": prompt_settings(processor),
        }

    def export_graphs(self, loaded: Loaded, directory: Path, *, opset: int) -> dict[str, str]:
        tile = int(loaded.processor.image_processor.max_image_size["longest_edge"])
        return export_idefics3_graphs(loaded.model, directory, opset=opset, tile=tile)

    def reference_pixel_values(self, loaded: Loaded, images: Sequence[Image.Image]) -> np.ndarray:
        rgb = [[image if image.mode == "RGB" else image.convert("RGB")] for image in images]
        return loaded.processor.image_processor(images=rgb, return_tensors="np").pixel_values

    def inputs(self, loaded: Loaded, images: Sequence[Image.Image], prompt: str) -> dict:
        """What the torch runtime gives generate: the processor's left-padded batch."""
        rgb = [[image if image.mode == "RGB" else image.convert("RGB")] for image in images]
        text = chat_text(loaded.processor, prompt)
        return dict(
            loaded.processor(text=[text] * len(images), images=rgb, padding=True, return_tensors="pt")
        )

    def decoder_prompt(self, loaded: Loaded, prompt: str) -> list[int]:
        """The prompt's tokens after the image block (what the run time starts generating from)."""
        ids = self.inputs(loaded, [Image.new("RGB", (8, 8))], prompt)["input_ids"][0].tolist()
        fake = loaded.processor.fake_image_token_id
        return ids[len(ids) - ids[::-1].index(fake) :]

    def reference(self, loaded, images, *, prompt, num_beams, max_length):
        inputs = self.inputs(loaded, images, prompt)
        start = self.decoder_prompt(loaded, prompt)
        length = inputs["input_ids"].shape[1]
        with torch.inference_mode():
            generated = loaded.model.generate(
                **inputs, num_beams=num_beams, max_new_tokens=max_length - len(start)
            )
        new = generated[:, length:]
        texts = loaded.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [start + row for row in new.tolist()], [text.strip() for text in texts]

    def teacher_forced_log_probs(self, loaded, images, *, prompt, rows):
        """As generate runs the model: the prefix with the image once, then the rows on its cache (a
        generated image token is then a token like any other)."""
        start = self.decoder_prompt(loaded, prompt)
        beams = len(rows) // len(images)
        outputs = []
        for index, row in enumerate(rows):
            inputs = self.inputs(loaded, [images[index // beams]], prompt)
            prefix = inputs["input_ids"][:, : -len(start)]
            with torch.inference_mode():
                cache = loaded.model(
                    input_ids=prefix,
                    attention_mask=torch.ones_like(prefix),
                    pixel_values=inputs["pixel_values"],
                    pixel_attention_mask=inputs["pixel_attention_mask"],
                    use_cache=True,
                ).past_key_values
                row_ids = torch.tensor([list(row)])
                logits = loaded.model(
                    input_ids=row_ids,
                    attention_mask=torch.ones(1, prefix.shape[1] + row_ids.shape[1], dtype=torch.long),
                    past_key_values=cache,
                    use_cache=True,
                ).logits
            outputs.append(torch.log_softmax(logits[0].float(), dim=-1).numpy())
        return np.stack(outputs)


EXPORTERS = {"idefics3": Idefics3Exporter}
