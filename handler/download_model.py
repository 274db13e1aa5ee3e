"""Build-time model preparation for the function image: a Hugging Face captioning model -> a directory
with config, safetensors weights, tokenizer and image processor, ready for `Captioner.load`.

    python download_model.py --output /opt/ml/model [--model-id ID] [--source DIR] [--half]

The model comes from `--source` when that directory holds a `config.json` (an offline build, e.g. the
demo model), otherwise it is downloaded from the Hub with huggingface_hub (no git-lfs): safetensors
weights when the repository has them, else the PyTorch checkpoint, converted here. `--half` stores the
weights in float16: half the bytes to read at cold start; `Captioner.load` upcasts them to float32, so
the trade is float16 rounding of the weights (captions may differ slightly from the float32 model).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

DEFAULT_MODEL_ID = "nlpconnect/vit-gpt2-image-captioning"
_MODEL_FILES = ["*.json", "*.txt", "*.model"]


def fetch_from_hub(model_id: str, into: Path) -> Path:
    from huggingface_hub import HfApi, snapshot_download

    files = HfApi().list_repo_files(model_id)
    weights = (
        ["*.safetensors"] if any(name.endswith(".safetensors") for name in files) else ["pytorch_model*.bin"]
    )
    return Path(snapshot_download(model_id, local_dir=into, allow_patterns=_MODEL_FILES + weights))


def prepare_model(source: Path, output: Path, *, half: bool = False) -> None:
    """Load a VisionEncoderDecoderModel directory and save it, with its tokenizer and image processor,
    as safetensors in `output`."""
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    model = VisionEncoderDecoderModel.from_pretrained(source, local_files_only=True, dtype=torch.float32)
    if half:
        model = model.half()
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(output)
    AutoImageProcessor.from_pretrained(source, backend="pil", local_files_only=True).save_pretrained(output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="directory to write the model to")
    parser.add_argument("--model-id", default=DEFAULT_MODEL_ID, help="Hub repository to download")
    parser.add_argument(
        "--source", type=Path, help="local model directory used instead of the Hub when it has a config.json"
    )
    parser.add_argument("--half", action="store_true", help="store the weights in float16")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

    if args.source is not None and (args.source / "config.json").is_file():
        prepare_model(args.source, args.output, half=args.half)
        origin = str(args.source)
    else:
        with tempfile.TemporaryDirectory() as download_dir:
            prepare_model(fetch_from_hub(args.model_id, Path(download_dir)), args.output, half=args.half)
        origin = args.model_id
    weights_mb = sum(path.stat().st_size for path in args.output.glob("*.safetensors")) / 1e6
    print(
        f"model from {origin} -> {args.output} ({weights_mb:.0f} MB of {'float16' if args.half else 'float32'} weights)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
