"""Before deploy: refuse a function memory size the chosen model cannot run in.

What the function needs, in MB:
    runtime (Python + the runtime's libraries + the handler)
  + the model's weights as the runtime holds them (torch: float32, also when stored in float16; bf16 and
    int8 convert after loading; ONNX: the exported graphs, int8 quantised at build)
  + activations for the images of one caption call (one in direct mode, `batch_size` in queue mode:
    the handler captions a whole batch in one `generate`)
  + headroom on the model's part (allocator fragmentation, image decoding).

Where the function image was run at Lambda's sizes (captioning.component.measured_memory: ViT + GPT-2, every
runtime and precision), those runs decide instead: a size below the smallest that worked is refused for
one image per call and queue batches up to the one measured; larger batches get the estimate, never
less than that floor.

Where the model's size comes from, in order: the prepared model directory (`model_dir`: safetensors
headers or exported ONNX graphs, never loaded), the table of common models below, the Hub's metadata
(huggingface_hub reads the safetensors headers: no weights are downloaded). Offline or unknown: the
check is skipped with a note, never failed.

Figures: parameters are counted from each architecture built from its published config with random
weights (`python -m tests.real_architectures count`); bytes are parameters x 4 (float32, as the torch
runtime holds them), not the Hub's file sizes. Runtime bases and per-image activations were measured
on a 2-core AMD EPYC (docs/models.md: process peak memory, VmHWM, for 1 and 3 images per call).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from captioning.component import limits, measured_memory
from captioning.component.build_context import resolve_model_dir
from captioning.component.settings import PipelineSettings
from captioning.component.validation import InvalidSettingError, is_int
from captioning.contract.model_files import ONNX_MODEL_TYPES

logger = logging.getLogger(__name__)

MB = 1024 * 1024


@dataclass(frozen=True)
class KnownModel:
    model_id: str
    family: str
    parameters: int
    first_image_mb: int
    """Activations (and the libraries' working buffers) of a call with one image, default settings."""
    more_image_mb: int
    """What each further image of the same call adds."""
    caption_cpu_s: float
    """CPU seconds of one `generate` for one 4:3 photo, float32, one thread (docs/models.md)."""
    more_estimated: bool = False
    """`more_image_mb` scaled from the family's smaller model, not measured."""


# parameters: `python -m tests.real_architectures count` (the architecture built from its published
# config; the Hub's files may also hold second copies of tied weights, not loaded twice).
# *_image_mb: measured with `python -m tests.real_architectures measure ID --images 1|3` (float32,
# default generation settings, 2 threads): first = peak - resident before the call with 1 image,
# more = (3-image call - 1-image call) / 2, rounded up to 16 MB (docs/models.md). Models of one
# architecture share figures; more_estimated marks a `more` scaled from the family's smaller model (the
# 3-image run of the large models did not fit in the time this machine had).
MODELS = (
    KnownModel("nlpconnect/vit-gpt2-image-captioning", "vision-encoder-decoder", 239_195_904, 160, 96, 1.7),
    KnownModel("Salesforce/blip-image-captioning-base", "blip", 223_971_644, 432, 208, 3.2),
    KnownModel("Salesforce/blip-image-captioning-large", "blip", 446_290_492, 416, 352, 6.2),
    KnownModel("microsoft/git-base", "git", 176_619_066, 128, 112, 2.9),
    KnownModel("microsoft/git-base-coco", "git", 176_619_066, 128, 112, 2.9),
    KnownModel("microsoft/git-large-coco", "git", 394_196_026, 208, 176, 8.4, more_estimated=True),
    KnownModel("florence-community/Florence-2-base", "florence2", 231_414_784, 304, 192, 7.0),
    KnownModel("florence-community/Florence-2-base-ft", "florence2", 231_414_784, 304, 192, 7.0),
    KnownModel("florence-community/Florence-2-large", "florence2", 770_174_976, 560, 304, 23.5, True),
    KnownModel("florence-community/Florence-2-large-ft", "florence2", 770_174_976, 560, 304, 23.5, True),
    KnownModel("HuggingFaceTB/SmolVLM-256M-Instruct", "idefics3", 256_484_928, 544, 512, 35.3),
    KnownModel("HuggingFaceTB/SmolVLM-500M-Instruct", "idefics3", 507_482_304, 544, 544, 39.9, True),
)
KNOWN_MODELS: dict[str, KnownModel] = {model.model_id.lower(): model for model in MODELS}
FAMILY_NAMES = {
    "vision-encoder-decoder": "ViT + GPT-2",
    "blip": "BLIP",
    "git": "GIT",
    "florence2": "Florence-2",
    "idefics3": "SmolVLM (idefics3)",
}
"""How the README's model table names each family."""

RUNTIME_BASE_MB = {"torch": 480, "onnx": 96}
"""Resident memory of the process before the model: Python, the runtime's libraries, the handler
(measured, VmRSS after the imports: torch + transformers + Pillow + boto3 350 MB; onnxruntime + tokenizers
+ numpy + Pillow + boto3 72 MB), plus Powertools, the handler and the runtime client. torch's figure is
checked against the bench's cold start (bench/results.json: peak 1,621 MB for ViT + GPT-2, torch fp32,
one caption; the estimate is 1,714 MB). Where the function image was run at Lambda's sizes, those
measurements decide instead (captioning.component.measured_memory)."""

BYTES_PER_PARAMETER = {
    ("torch", "fp32"): 4.0,
    ("torch", "bf16"): 2.0,
    ("torch", "int8"): 1.6,  # linear layers int8 (~80% of parameters), embeddings and norms float32
    ("onnx", "fp32"): 4.0,
    ("onnx", "int8"): 1.6,
}

FALLBACK_PER_IMAGE_FRACTION = 0.5
"""Activations per image for a model not in the table, as a fraction of its float32 weights (measured
ratios: BLIP base 0.47 for the first image, GIT base 0.18): generous rather than none."""

HEADROOM = 1.15
"""On the model's part (weights and activations): allocator fragmentation, image decoding."""
ONNX_FAMILIES = ONNX_MODEL_TYPES
HUB_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ModelFootprint:
    name: str
    parameters: int
    family: str | None
    source: str
    weights_bytes: int | None = None
    """Bytes as the runtime holds them, when measured from exported graphs (else from parameters)."""
    measured_as: str | None = None
    """The model id whose measured sizes (captioning.component.measured_memory) apply: this model's own, or
    the measured architecture a directory's config.json describes."""


def memory_errors(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    """InvalidSettingError for a memory size (or runtime) the chosen model cannot run with; nothing when
    the settings fit, or when the model's size cannot be found (then a note is logged)."""
    if (
        not is_int(settings.memory_size)
        or not limits.MEMORY_MB[0] <= settings.memory_size <= limits.MEMORY_MB[1]
    ):
        return  # the range check reports it
    footprint = model_footprint(settings)
    if footprint is None:
        return
    if settings.runtime == "onnx" and footprint.family not in (None, *ONNX_FAMILIES):
        yield InvalidSettingError(
            "runtime",
            settings.runtime,
            f"'torch' for {footprint.name} (a {footprint.family} model): the onnx runtime exports"
            f" {', '.join(ONNX_FAMILIES)} models only (pulumi config set captioning:runtime torch)",
        )
        return
    need = required_memory_mb(settings, footprint)
    if need is None or settings.memory_size >= need.total:
        return
    yield InvalidSettingError("memory_size", settings.memory_size, _refusal(settings, footprint, need))


def _refusal(settings: PipelineSettings, footprint: ModelFootprint, need: Requirement) -> str:
    """What memory_size is allowed, and why: the measurements where they decide, else the estimate."""
    images = f"{need.images} image{'s' if need.images > 1 else ''} per call"
    parts = (
        f"{_size(need.weights_mb)} of weights ({count_text(footprint.parameters)} parameters,"
        f" {settings.runtime} {settings.precision}) + {need.runtime_mb} MB runtime +"
        f" {need.activations_mb} MB activations for"
        f" {images}, with {round((HEADROOM - 1) * 100)}% headroom on the model's part"
    )
    if need.total > limits.MEMORY_MB[1]:
        return (
            f"none fits {footprint.name}: it needs {need.total:,} MB ({parts}), more than Lambda's"
            f" {limits.MEMORY_MB[1]:,} MB; lower batchSize, use precision int8 or choose a smaller model"
        )
    smallest = f"at least {need.total:,} MB, the smallest memory that fits {footprint.name}"
    measured = need.measured
    if measured is None:
        return f"{smallest}: {parts}"
    setting = f"{settings.runtime} {settings.precision}, {images}"
    found = _measured_text(measured, settings.memory_size)
    if measured.covers(need.images):
        return f"{smallest} ({setting}): {found}"
    covered = f"{measured.images_per_call} images per call"
    if need.total == need.estimate_mb:
        return f"{smallest} ({setting}, estimated: more than the {covered} measured): {parts}; {found}"
    return (
        f"{smallest} ({setting}): {found}; never less than that, though the estimate for {images}"
        f" (more than the {covered} measured) is {need.estimate_mb:,} MB: {parts}"
    )


def _measured_text(measured: measured_memory.MeasuredSizes, asked: int) -> str:
    """'measured out of memory at 1,536 MB (also: ...); 2,048 MB the smallest that works (...)'."""
    own = [outcome for size, outcome in measured.failures if size == asked]
    others: dict[str, list[int]] = {}
    for size, outcome in measured.failures:
        if size != asked:
            others.setdefault(outcome, []).append(size)
    rest = ", ".join(f"{outcome} at {_sizes(sizes)}" for outcome, sizes in others.items())
    works = f"{measured.floor_mb:,} MB the smallest that works ({measured_memory.SOURCE})"
    if own:
        also = f" (also: {rest})" if rest else ""
        return f"measured {own[0]} at {asked:,} MB{also}; {works}"
    return f"measured: {rest}; {works}" if rest else f"measured: {works}"


def _sizes(sizes: list[int]) -> str:
    figures = [f"{size:,}" for size in sizes]
    return (", ".join(figures[:-1]) + " and " if len(figures) > 1 else "") + figures[-1] + " MB"


@dataclass(frozen=True)
class Requirement:
    total: int
    """What the check asks: the measured floor where measurements cover the setting, else the estimate
    (never below a measured floor)."""
    weights_mb: int
    runtime_mb: int
    activations_mb: int
    images: int
    estimate_mb: int
    measured: measured_memory.MeasuredSizes | None = None


def images_per_call(settings: PipelineSettings) -> int:
    """Images the handler captions in one call: a queue batch, or the one object of a direct event."""
    return settings.batch_size if settings.trigger == "queue" and is_int(settings.batch_size) else 1


def required_memory_mb(settings: PipelineSettings, footprint: ModelFootprint) -> Requirement | None:
    """The smallest memory (MB) the function needs for this model and these settings."""
    return requirement(footprint, settings.runtime, settings.precision, images_per_call(settings))


def requirement(footprint: ModelFootprint, runtime: str, precision: str, images: int) -> Requirement | None:
    """The smallest memory for `images` per caption call: measured, else estimated (module docstring)."""
    per_parameter = BYTES_PER_PARAMETER.get((runtime, precision))
    if per_parameter is None:
        return None  # a runtime/precision pair the validation refuses anyway
    if footprint.weights_bytes is not None:
        weights_mb = math.ceil(footprint.weights_bytes / MB)
    else:
        weights_mb = math.ceil(footprint.parameters * per_parameter / MB)
    known = KNOWN_MODELS.get(footprint.name.lower()) if footprint.source == "table" else None
    if known is not None:
        first, more = known.first_image_mb, known.more_image_mb
    else:
        first = more = max(16, math.ceil(footprint.parameters * 4 / MB * FALLBACK_PER_IMAGE_FRACTION))
    runtime_mb = RUNTIME_BASE_MB[runtime]
    activations_mb = first + more * (images - 1)
    estimate = runtime_mb + math.ceil((weights_mb + activations_mb) * HEADROOM)
    sizes = (
        measured_memory.measured(footprint.measured_as, runtime, precision) if footprint.measured_as else None
    )
    floor = sizes.floor_mb if sizes is not None else None
    if sizes is None or floor is None:
        total = estimate
    elif sizes.covers(images):
        total = floor
    else:
        total = max(estimate, floor)
    measured = sizes if floor is not None else None
    return Requirement(total, weights_mb, runtime_mb, activations_mb, images, estimate, measured)


def model_footprint(settings: PipelineSettings) -> ModelFootprint | None:
    """The model's parameter count and family: from model_dir, the table, or the Hub's metadata."""
    name = settings.model_id if isinstance(settings.model_id, str) and settings.model_id.strip() else None
    if isinstance(settings.model_dir, str) and settings.model_dir.strip():
        directory = resolve_model_dir(settings.model_dir)
        if directory.is_dir():
            return _from_directory(directory, f"the model in {settings.model_dir}")
        _note(f"model directory {directory} not found: memory check skipped")
        return None
    if name is None:
        return None
    known = KNOWN_MODELS.get(name.lower())
    if known is not None:
        return table_footprint(known, name)
    return _from_hub(name)


def table_footprint(model: KnownModel, name: str | None = None) -> ModelFootprint:
    """A model of the table (named as the user spelled it, else by its Hub id)."""
    return ModelFootprint(
        name or model.model_id, model.parameters, model.family, "table", measured_as=model.model_id
    )


def _from_directory(directory: Path, name: str) -> ModelFootprint | None:
    config: dict = {}
    config_path = directory / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
    family = config.get("model_type")
    measured_as = measured_memory.measured_architecture(config)
    graphs = sorted(directory.glob("*.onnx")) + sorted(directory.glob("*.onnx.data"))
    if (directory / "onnx_model.json").is_file() and graphs:
        weights = sum(path.stat().st_size for path in graphs)
        family = family or "vision-encoder-decoder"
        return ModelFootprint(name, weights // 4, family, str(directory), weights, measured_as)
    tensors = sorted(directory.glob("*.safetensors"))
    if not tensors:
        _note(f"no safetensors weights or ONNX graphs in {directory}: memory check skipped")
        return None
    parameters = sum(_safetensors_parameters(path) for path in tensors)
    return ModelFootprint(name, parameters, family, str(directory), measured_as=measured_as)


def _safetensors_parameters(path: Path) -> int:
    """Parameters in a safetensors file, from its JSON header alone (8-byte length, then the header)."""
    with path.open("rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    return sum(math.prod(entry["shape"]) for key, entry in header.items() if key != "__metadata__")


def _from_hub(model_id: str) -> ModelFootprint | None:
    """Parameters from the Hub's safetensors metadata (headers only), or None with a note."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        _note(f"{model_id} is not in the sizing table and HF_HUB_OFFLINE is set: memory check skipped")
        return None
    if not _hub_reachable():
        _note(f"{model_id} is not in the sizing table and the Hub is unreachable: memory check skipped")
        return None
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            metadata = pool.submit(_hub_metadata, model_id).result(timeout=HUB_TIMEOUT_SECONDS)
    except FutureTimeout:
        _note(
            f"the Hub did not answer for {model_id} within {HUB_TIMEOUT_SECONDS:.0f} s: memory check skipped"
        )
        return None
    except Exception as error:  # noqa: BLE001  any Hub failure only skips this check
        _note(f"no size for {model_id} from the Hub ({type(error).__name__}: {error}): memory check skipped")
        return None
    return metadata


def _hub_metadata(model_id: str) -> ModelFootprint:
    from huggingface_hub import HfApi

    api = HfApi()
    metadata = api.get_safetensors_metadata(model_id)
    parameters = sum(metadata.parameter_count.values())
    family = None
    try:
        config = json.loads(Path(api.hf_hub_download(model_id, "config.json")).read_text(encoding="utf-8"))
        family = config.get("model_type")
    except Exception:  # noqa: BLE001, S110  the family only refines the estimate
        pass
    return ModelFootprint(model_id, parameters, family, "hub")


def _hub_reachable() -> bool:
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError:
        return False
    return True


def _note(message: str) -> None:
    """Tell the user why the check did not run (shown by `pulumi preview`/`up`)."""
    try:
        import pulumi

        pulumi.log.warn(message)
    except Exception:  # noqa: BLE001  outside a Pulumi program: the log is enough
        logger.warning(message)


def _size(megabytes: int) -> str:
    return f"{megabytes / 1024:.2f} GB" if megabytes >= 1024 else f"{megabytes} MB"


def count_text(parameters: int) -> str:
    return f"{parameters / 1e6:.0f} M" if parameters >= 10**6 else f"{parameters:,}"
