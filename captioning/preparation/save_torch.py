"""`--runtime torch`: the model saved as safetensors with what its processor needs, for `Captioner.load`.

Any family `AutoModelForImageTextToText` loads natively (vision-encoder-decoder, blip, git, florence2,
idefics3 / SmolVLM, ...). Models that need their own code are refused (fetch.check_loadable).
Vision-encoder-decoder models have no processor class: their tokenizer and image processor are saved
side by side; other families save their processor (image processor, tokenizer, chat template).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from captioning.preparation.fetch import check_loadable


def save_torch_model(source: Path, output: Path, *, half_precision_weights: bool = False) -> None:
    """Load the model directory `source` and save it in `output`: safetensors weights (float16 with
    `half_precision_weights`, upcast to float32 at load), generation config, and its processor files."""
    check_loadable(source, str(source))
    import torch
    import transformers
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    model = AutoModelForImageTextToText.from_pretrained(source, local_files_only=True, dtype=torch.float32)
    if half_precision_weights:
        model = model.half()
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)  # safetensors only (transformers 5), whatever the source held
    if model.config.model_type == "vision-encoder-decoder":
        AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(output)
        AutoImageProcessor.from_pretrained(source, backend="pil", local_files_only=True).save_pretrained(
            output
        )
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torchvision is not available, using the PIL backend"
        AutoProcessor.from_pretrained(source, local_files_only=True).save_pretrained(output)
