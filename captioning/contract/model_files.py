"""What a model directory must hold: the one rule, read by the component's `modelDir` check, by
`python -m captioning.preparation --source` and by `python -m local --model`.

Standard library only: the component imports it (as captioning.contract.model_files) without the
function's packages, and the local CLI before anything heavy is imported.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

CONFIG_FILE = "config.json"
SAFETENSORS_WEIGHTS = ("model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json")
PYTORCH_WEIGHTS = ("pytorch_model.bin", "pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json")
"""Weight files of a transformers model (single file, shards, shard index), safetensors preferred."""
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")

ONNX_MANIFEST = "onnx_model.json"
"""Written beside the exported graphs by `prepare_model --runtime onnx`; it marks a prepared ONNX model."""
ONNX_ENCODER = "encoder.onnx"
ONNX_DECODER = "decoder_step.onnx"
ONNX_TOKENIZER = "tokenizer.json"
ONNX_FILES = (ONNX_ENCODER, ONNX_DECODER, ONNX_TOKENIZER)
"""What the ONNX runtime loads beside the manifest of the two-graph families (every family with a
per-image encoder and one decoder step); a manifest's "graphs" names its own (`onnx_graph_files`)."""
LEGACY_ONNX_GRAPHS = {"encoder": ONNX_ENCODER, "decoder": ONNX_DECODER}
"""The graphs of a format-1 manifest (ViT + GPT-2, before manifests listed their graphs)."""

ONNX_MODEL_TYPES = ("vision-encoder-decoder", "blip", "git", "florence2", "idefics3")
"""The config.json model_types `--runtime onnx` exports (vision-encoder-decoder: a ViT encoder with a
GPT-2 or BERT decoder): the exporter refuses any other, and the component's sizing check asks for
`runtime: torch` for them. A family joins when its exporter (captioning/preparation/family_export.py)
and run-time adapter (captioning/function/onnx_family.py) exist."""

WHAT_A_MODEL_DIRECTORY_HOLDS = (
    f"a model directory holds {CONFIG_FILE} plus weights (model.safetensors, pytorch_model.bin, or their "
    f"model-*-of-* shards), or a prepared ONNX model ({ONNX_MANIFEST} with {', '.join(ONNX_FILES)}, "
    "as `python -m captioning.preparation --runtime onnx --output DIR` writes it)"
)


def is_prepared_onnx(directory: Path) -> bool:
    """Whether `directory` is (meant to be) a prepared ONNX model: it holds the manifest."""
    return (directory / ONNX_MANIFEST).is_file()


def missing_model_files(directory: Path) -> list[str]:
    """What `directory` lacks to be a model, each item a phrase ("config.json", "weights (...)");
    empty when it holds one. A directory that does not exist lacks everything."""
    if not directory.is_dir():
        return ["the directory itself (" + ("a file" if directory.exists() else "it does not exist") + ")"]
    if is_prepared_onnx(directory):
        names = [*_manifest_graphs(directory).values(), ONNX_TOKENIZER]
        return [name for name in names if not (directory / name).is_file()]
    missing = [] if (directory / CONFIG_FILE).is_file() else [CONFIG_FILE]
    names = [path.name for path in directory.iterdir() if path.is_file()]
    weights = [
        name
        for name in names
        if name not in WEIGHT_INDEXES
        and any(fnmatch.fnmatch(name, pattern) for pattern in SAFETENSORS_WEIGHTS + PYTORCH_WEIGHTS)
    ]
    if not weights:
        missing.append("weights (model.safetensors or pytorch_model.bin, or their model-*-of-* shards)")
    for index in WEIGHT_INDEXES:
        if (directory / index).is_file():
            missing.extend(_missing_shards(directory, index))
    return missing


def _missing_shards(directory: Path, index: str) -> list[str]:
    try:
        weight_map = json.loads((directory / index).read_text(encoding="utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return [f"a readable {index} (a JSON object with a weight_map)"]
    return [f"{shard} (named in {index})" for shard in shards if not (directory / shard).is_file()]


def model_directory_problem(directory: Path) -> str | None:
    """None when `directory` holds a model, else one sentence naming it, what is missing and what a
    model directory holds."""
    missing = missing_model_files(directory)
    if not missing:
        return None
    if not directory.is_dir():
        state = "is a file" if directory.exists() else "does not exist"
        return f"no model directory at {directory} (it {state}); {WHAT_A_MODEL_DIRECTORY_HOLDS}"
    return f"no model in {directory}: missing {' and '.join(missing)}; {WHAT_A_MODEL_DIRECTORY_HOLDS}"


def onnx_graph_files(manifest: object) -> dict[str, str]:
    """{role: file name} of a manifest's graphs: its "graphs" (format 2), else the format-1 pair."""
    graphs = manifest.get("graphs") if isinstance(manifest, dict) else None
    if isinstance(graphs, dict) and graphs and all(isinstance(name, str) for name in graphs.values()):
        return dict(graphs)
    return dict(LEGACY_ONNX_GRAPHS)


def _manifest_graphs(directory: Path) -> dict[str, str]:
    try:
        manifest = json.loads((directory / ONNX_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    return onnx_graph_files(manifest)


def prepared_onnx_precision(directory: Path) -> str | None:
    """The precision a prepared ONNX model's graphs were built in (its manifest says), or None."""
    try:
        manifest = json.loads((directory / ONNX_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    precision = manifest.get("precision") if isinstance(manifest, dict) else None
    return precision if isinstance(precision, str) else None
