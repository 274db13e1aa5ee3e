"""`--runtime torch`: the model saved as safetensors with its tokenizer and image processor."""

from __future__ import annotations

from pathlib import Path


def save_torch_model(source: Path, output: Path, *, half: bool = False) -> None:
    """Load a VisionEncoderDecoderModel directory and save it, with its tokenizer and image processor,
    as safetensors in `output`. `half` stores the weights in float16 (upcast to float32 at load)."""
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    model = VisionEncoderDecoderModel.from_pretrained(source, local_files_only=True, dtype=torch.float32)
    if half:
        model = model.half()
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(output)
    AutoImageProcessor.from_pretrained(source, backend="pil", local_files_only=True).save_pretrained(output)
