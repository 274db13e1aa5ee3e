"""The torch runtime's fast path: a ViT + GPT-2 VisionEncoderDecoderModel directory -> captions.

Chosen by captioning/function/captioner.py (the facade) for a VisionEncoderDecoder with a GPT-2 decoder saved
as safetensors. Never touches the network. Loading sets transformers' log verbosity to errors for the whole
process: its per-call generate() warnings are noise in function logs.

Where the time goes, and what this module does about it (measured in bench/, see the README):
- the decoder reads every weight once per generated token, so one `generate` for the whole batch
  shares those reads between all images;
- beam search would compute each image's cross-attention keys/values once per beam and copy them
  at every step (reordering beams); they are the same for all beams of an image, so they are
  computed once per image and never reordered (`_SharedCrossAttentionCache`);
- the image processor's numpy/PIL round trips are replaced by the same operations done once
  (`_FastPixels`, the same tensor bit for bit).
The float32 path computes the same function as plain `generate`, and gives the same captions.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from captioning.contract.environment import offline_environment
from captioning.contract.runtimes import precision_problem

os.environ.update(offline_environment())  # before transformers / huggingface_hub read it

import torch
import transformers
from PIL import Image
from torch import nn
from torch.nn import functional
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    DynamicCache,
    EncoderDecoderCache,
    VisionEncoderDecoderModel,
)
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.modeling_outputs import BaseModelOutput
from transformers.modeling_utils import AttentionInterface
from transformers.pytorch_utils import Conv1D

from captioning.function.cpus import available_cpus
from captioning.function.generation import resolve_beams_and_length
from captioning.function.pixels import Pixels

BEAM_SHARED_ATTENTION = "captioner_beam_shared_sdpa"

logger = logging.getLogger(__name__)


class TorchCaptioner:
    """A loaded ViT + GPT-2 model; `caption` runs all images of a call through one batched `generate`."""

    runtime = "torch"

    def __init__(
        self,
        model: VisionEncoderDecoderModel,
        image_processor: object,
        tokenizer: object,
        *,
        model_id: str,
        precision: str,
        num_beams: int,
        max_length: int,
    ) -> None:
        self.model = model
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.precision = precision
        self.num_beams = num_beams
        self.max_length = max_length
        self._fast_pixels = _FastPixels.for_processor(image_processor)
        self._shared_cross_attention = _enable_shared_cross_attention(model)

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str],
        *,
        num_beams: int | None = None,
        max_length: int | None = None,
        precision: str = "fp32",
        num_threads: int | None = None,
        model_id: str | None = None,
    ) -> TorchCaptioner:
        """Load a captioning model directory (config, safetensors weights, tokenizer, image processor).

        precision: "fp32" (default; captions identical to plain float32 generate), "bf16" (where the CPU
        computes bfloat16 natively, else fp32 with one log line), "int8" (dynamic int8 quantization of
        the linear layers, GPT-2's Conv1D layers included). Weights stored in float16 are upcast at load.
        num_beams, max_length: None = what the model's own `generate()` uses
        (captioning/function/generation.py).
        num_threads: torch threads; default, the CPUs this process may run on.
        model_id: the name written beside captions; default, the directory's name.
        """
        problem = precision_problem("torch", precision)
        if problem is not None:
            raise ValueError(problem)
        model_path = Path(model_dir)
        if not (model_path / "config.json").is_file():
            raise FileNotFoundError(f"no captioning model at {model_path}: config.json is missing")
        torch.set_num_threads(num_threads or available_cpus())
        transformers.utils.logging.disable_progress_bar()
        # generate() warns on every batched call that pad == eos with no attention mask; the decoder
        # input is only the start token, so nothing is padded and the warning is noise in our logs.
        transformers.utils.logging.set_verbosity_error()

        image_processor = AutoImageProcessor.from_pretrained(model_path, backend="pil", local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        # Weights are memory-mapped from safetensors (no random-init pass, no copy): pages are read
        # as the first caption touches them.
        model = VisionEncoderDecoderModel.from_pretrained(
            model_path, local_files_only=True, dtype=torch.float32
        )
        model.eval()
        # What model.generate() with no arguments would use: generation_config.json, else the config
        # derived from config.json, else transformers' defaults.
        num_beams, max_length = resolve_beams_and_length(
            model.generation_config.to_dict(), num_beams, max_length
        )
        effective_precision = apply_precision(model, precision)
        return cls(
            model,
            image_processor,
            tokenizer,
            model_id=model_id or model_path.resolve().name,
            precision=effective_precision,
            num_beams=num_beams,
            max_length=max_length,
        )

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, in order; all images go through a single batched `generate`."""
        if not images:
            return []
        # ViT's processor does not convert modes itself: a grey or palette image would reach it as 1 channel.
        images = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        pixel_values = self._fast_pixels(images) if self._fast_pixels is not None else None
        if pixel_values is None:
            pixel_values = self.image_processor(images=list(images), return_tensors="pt").pixel_values
        pixel_values = pixel_values.to(self.model.dtype if self.precision == "bf16" else torch.float32)
        with torch.inference_mode():
            if self._shared_cross_attention:
                token_ids = self._generate_with_shared_cross_attention(pixel_values)
            else:
                token_ids = self.model.generate(
                    pixel_values, num_beams=self.num_beams, max_length=self.max_length
                )
        return [text.strip() for text in self.tokenizer.batch_decode(token_ids, skip_special_tokens=True)]

    def _generate_with_shared_cross_attention(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`generate`, with the encoder run once and each image's cross-attention K/V computed once."""
        model = self.model
        encoder_hidden = model.encoder(pixel_values=pixel_values).last_hidden_state
        decoder_side_hidden = encoder_hidden
        if _projects_encoder_output(model):
            decoder_side_hidden = model.enc_to_dec_proj(encoder_hidden)
        return model.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoder_hidden),
            past_key_values=_SharedCrossAttentionCache.prefilled(model, decoder_side_hidden),
            num_beams=self.num_beams,
            max_length=self.max_length,
        )


class _FastPixels:
    """The ViT image processor's resize -> rescale -> normalize, done straight on the PIL image
    (captioning/function/pixels.py: the same tensor as transformers' PIL backend, without its round trips)."""

    def __init__(self, pixels: Pixels) -> None:
        self.pixels = pixels

    @classmethod
    def for_processor(cls, processor: object) -> _FastPixels | None:
        """A fast path for `processor`, or None unless it is exactly resize(h, w) + rescale + normalize."""
        if getattr(processor, "backend", None) != "pil":
            return None
        size = getattr(processor, "size", None)
        height, width = getattr(size, "height", None), getattr(size, "width", None)
        steps = (getattr(processor, name, None) for name in ("do_resize", "do_rescale", "do_normalize"))
        if not (all(steps) and height and width):
            return None
        if getattr(processor, "do_center_crop", False) or getattr(processor, "do_pad", False):
            return None
        mean, std = getattr(processor, "image_mean", None), getattr(processor, "image_std", None)
        if not (
            isinstance(mean, (list, tuple)) and isinstance(std, (list, tuple)) and len(mean) == len(std) == 3
        ):
            return None
        resample = processor.resample if processor.resample is not None else Image.Resampling.BILINEAR
        settings = {"size": {"height": height, "width": width}, "resample": int(resample)}
        settings.update(do_resize=True, do_rescale=True, do_normalize=True, image_mean=mean, image_std=std)
        return cls(Pixels.from_settings({**settings, "rescale_factor": processor.rescale_factor}))

    def __call__(self, images: Sequence[Image.Image]) -> torch.Tensor | None:
        """(N, 3, height, width) float32 pixel values; None when an image is not RGB (the processor
        has its own conversions for those)."""
        if any(image.mode != "RGB" for image in images):
            return None
        return torch.from_numpy(self.pixels(images))


class _SharedCrossAttentionCache(EncoderDecoderCache):
    """Cross-attention keys/values stored once per image instead of once per beam.

    Beam search only reorders beams within an image, and all beams of an image attend to the same
    encoder output, so these never need the per-step reordering beam search does to every cache.
    """

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.self_attention_cache.reorder_cache(beam_idx)

    @classmethod
    def prefilled(
        cls, model: VisionEncoderDecoderModel, encoder_hidden: torch.Tensor
    ) -> _SharedCrossAttentionCache:
        config = model.decoder.config
        cross_attention_cache = DynamicCache(config=config)
        cache = cls(DynamicCache(config=config), cross_attention_cache)
        for layer_index, block in enumerate(model.decoder.transformer.h):
            attention = block.crossattention
            keys, values = attention.c_attn(encoder_hidden).split(attention.split_size, dim=2)
            heads_shape = (*keys.shape[:-1], -1, attention.head_dim)
            cross_attention_cache.update(
                keys.view(heads_shape).transpose(1, 2), values.view(heads_shape).transpose(1, 2), layer_index
            )
            cache.is_updated[layer_index] = True
        return cache


def _beam_shared_sdpa(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: object,
) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, plus the case of keys stored once per image for all its beams:
    the beams' queries of an image then attend together, in one call, to that image's keys."""
    images, beam_rows = key.shape[0], query.shape[0]
    if images == beam_rows:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    beams = beam_rows // images
    if attention_mask is not None:
        key, value = key.repeat_interleave(beams, dim=0), value.repeat_interleave(beams, dim=0)
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    _, heads, query_length, head_dim = query.shape
    grouped = (
        query.view(images, beams, heads, query_length, head_dim)
        .transpose(1, 2)
        .reshape(images, heads, beams * query_length, head_dim)
    )
    output = functional.scaled_dot_product_attention(grouped, key, value, scale=scaling)
    output = (
        output.view(images, heads, beams, query_length, head_dim)
        .permute(0, 2, 3, 1, 4)
        .reshape(beam_rows, query_length, heads, head_dim)
    )
    return output, None


AttentionInterface.register(BEAM_SHARED_ATTENTION, _beam_shared_sdpa)
AttentionMaskInterface.register(BEAM_SHARED_ATTENTION, sdpa_mask)


def _enable_shared_cross_attention(model: VisionEncoderDecoderModel) -> bool:
    """Switch a GPT-2 decoder (SDPA attention) to `_beam_shared_sdpa`; False for other decoders,
    which then keep plain `generate`."""
    decoder_config = model.decoder.config
    blocks = getattr(getattr(model.decoder, "transformer", None), "h", None)
    if (
        decoder_config.model_type != "gpt2"
        or not blocks
        or not all(hasattr(b, "crossattention") for b in blocks)
    ):
        return False
    if decoder_config._attn_implementation not in ("sdpa", BEAM_SHARED_ATTENTION):
        return False
    decoder_config._attn_implementation = BEAM_SHARED_ATTENTION
    return True


def _projects_encoder_output(model: VisionEncoderDecoderModel) -> bool:
    """Mirrors VisionEncoderDecoderModel.forward: encoder states are projected when sizes differ."""
    return (
        model.encoder.config.hidden_size != model.decoder.config.hidden_size
        and getattr(model.decoder.config, "cross_attention_hidden_size", None) is None
    )


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively: AVX512-BF16 or AMX on x86, BF16 on Arm.

    Without it oneDNN still runs bfloat16, emulated, and slower than float32 (measured: 2-3x slower
    matrix products on an AVX-512 Xeon without AVX512-BF16), so bf16 would only cost accuracy.
    """
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "Features")):
                    flags.update(line.split(":", 1)[1].split())
                    break
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def apply_precision(model: nn.Module, precision: str) -> str:
    """Convert `model` in place for `precision`; return the precision actually in effect.

    int8 quantises every nn.Linear, GPT-2's Conv1D layers included (converted to nn.Linear first); the
    generic path (captioning/function/generic_captioner.py) uses this too.
    """
    if precision == "bf16":
        if not cpu_supports_bf16():
            logger.warning("precision bf16 requested but this CPU has no native bfloat16; using fp32")
            return "fp32"
        model.to(torch.bfloat16)
    elif precision == "int8":
        _conv1d_to_linear(model)
        with warnings.catch_warnings():
            # torch.ao.quantization announces its move to torchao on every call; it still works in 2.13.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings(
                "ignore", message=".*quantize_per_(tensor|channel).*", category=UserWarning
            )
            # One scale per output channel rather than one per matrix: finer, and no slower here.
            torch.ao.quantization.quantize_dynamic(
                model,
                {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
                dtype=torch.qint8,
                inplace=True,
            )
    return precision


def _conv1d_to_linear(module: nn.Module) -> None:
    """Replace GPT-2's Conv1D layers (weight stored in x out) by equivalent nn.Linear layers, which
    dynamic quantization knows how to convert; Conv1D would otherwise stay float32."""
    for name, child in module.named_children():
        if isinstance(child, Conv1D):
            in_features, out_features = child.weight.shape
            linear = nn.Linear(in_features, out_features, bias=child.bias is not None)
            with torch.no_grad():
                linear.weight.copy_(child.weight.t())
                if child.bias is not None:
                    linear.bias.copy_(child.bias)
            setattr(module, name, linear)
        else:
            _conv1d_to_linear(child)
