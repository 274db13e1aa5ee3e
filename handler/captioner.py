"""The captioning core: a Hugging Face VisionEncoderDecoderModel directory -> captions for PIL images.

Knows nothing of S3, DynamoDB or events. Never touches the network. Loading sets transformers' log
verbosity to errors for the whole process: its per-call generate() warnings are noise in function logs.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

# Set before transformers/huggingface_hub read them at import: no hub access, no progress bars.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch
import transformers
from PIL import Image
from torch import nn
from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel
from transformers.pytorch_utils import Conv1D

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")

logger = logging.getLogger(__name__)


class Captioner:
    """A loaded captioning model; `caption` runs all images of a call through one batched `generate`."""

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

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str],
        *,
        num_beams: int = 4,
        max_length: int = 16,
        precision: str = "fp32",
        num_threads: int | None = None,
        model_id: str | None = None,
    ) -> Captioner:
        """Load a captioning model directory (config, safetensors weights, tokenizer, image processor).

        precision: "fp32" (default; captions identical to plain float32 generate), "bf16" (where the CPU
        has bfloat16 kernels, else fp32 with one log line), "int8" (dynamic int8 quantization of the
        linear layers, GPT-2's Conv1D layers included). Weights stored in float16 are upcast at load.
        num_threads: torch threads; default, the CPUs this process may run on.
        model_id: the name written beside captions; default, the directory's name.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        model_path = Path(model_dir)
        if not (model_path / "config.json").is_file():
            raise FileNotFoundError(f"no captioning model at {model_path}: config.json is missing")
        torch.set_num_threads(num_threads or len(os.sched_getaffinity(0)))
        transformers.utils.logging.disable_progress_bar()
        # generate() warns on every batched call that pad == eos with no attention mask; the decoder
        # input is only the start token, so nothing is padded and the warning is noise in our logs.
        transformers.utils.logging.set_verbosity_error()

        image_processor = AutoImageProcessor.from_pretrained(model_path, backend="pil", local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        model = VisionEncoderDecoderModel.from_pretrained(
            model_path, local_files_only=True, dtype=torch.float32
        )
        model.eval()
        effective_precision = _apply_precision(model, precision)
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
        pixel_values = self.image_processor(images=list(images), return_tensors="pt").pixel_values
        pixel_values = pixel_values.to(self.model.dtype if self.precision == "bf16" else torch.float32)
        with torch.inference_mode():
            token_ids = self.model.generate(
                pixel_values, num_beams=self.num_beams, max_length=self.max_length
            )
        return [text.strip() for text in self.tokenizer.batch_decode(token_ids, skip_special_tokens=True)]


def cpu_supports_bf16() -> bool:
    """Whether oneDNN has bfloat16 kernels for this CPU (x86 with AVX-512 or AMX, or Arm with BF16)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _apply_precision(model: VisionEncoderDecoderModel, precision: str) -> str:
    """Convert `model` in place for `precision`; return the precision actually in effect."""
    if precision == "bf16":
        if not cpu_supports_bf16():
            logger.warning("precision bf16 requested but this CPU has no bfloat16 kernels; using fp32")
            return "fp32"
        model.to(torch.bfloat16)
    elif precision == "int8":
        _conv1d_to_linear(model)
        with warnings.catch_warnings():
            # torch.ao.quantization announces its move to torchao on every call; it still works in 2.13.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
            torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
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
