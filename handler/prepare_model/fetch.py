"""Where the model comes from: a local directory, or the Hugging Face Hub (via huggingface_hub)."""

from __future__ import annotations

from pathlib import Path

_MODEL_FILES = ["*.json", "*.txt", "*.model"]


def fetch_from_hub(model_id: str, into: Path) -> Path:
    """Download what loading `model_id` needs into `into` (no git-lfs): safetensors weights when the
    repository has them, else its PyTorch checkpoint."""
    from huggingface_hub import HfApi, snapshot_download

    files = HfApi().list_repo_files(model_id)
    weights = (
        ["*.safetensors"] if any(name.endswith(".safetensors") for name in files) else ["pytorch_model*.bin"]
    )
    return Path(snapshot_download(model_id, local_dir=into, allow_patterns=_MODEL_FILES + weights))


def has_model(source: Path | None) -> bool:
    """Whether `source` is a model directory (it holds a config.json)."""
    return source is not None and (source / "config.json").is_file()
