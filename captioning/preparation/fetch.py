"""Where the model comes from: a local directory, or the Hugging Face Hub (via huggingface_hub, no git-lfs).

From the Hub only what loading needs is downloaded: the top-level config, generation config, processor,
image processor and tokenizer files (chat template included) and the safetensors weights (the PyTorch
checkpoint only when a repository has no safetensors; it is converted to safetensors when saved).
ONNX/TF/Flax/Core ML copies, READMEs, sample images and sub-folders are left on the Hub.

A model that needs its own code (`trust_remote_code`: an `auto_map` in its config or processor files, or
a model_type this transformers does not know) is refused before any weights are downloaded: no remote
code runs at build time or in the function.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from pathlib import Path

from captioning.contract.model_files import PYTORCH_WEIGHTS, SAFETENSORS_WEIGHTS
from captioning.preparation.errors import PreparationRefused

CONFIG_FILES = (
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.json",
    "chat_template.jinja",
)
"""Configuration files loading may read (all small); `auto_map` is looked for in the JSON ones."""

TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt", "merges.txt", "*.model", "*.tiktoken")
HUB_PROBE_TIMEOUT_S = 3.0
"""How long the one reachability probe waits before the download starts. huggingface_hub retries a
failed connection five times with backoff (about 23 s, no setting changes it), so an unreachable Hub is
found by this probe first."""

# The Hub ids people try first for a family whose official repository needs remote code.
NATIVE_ALTERNATIVES = {
    "microsoft/florence-2-base": "florence-community/Florence-2-base",
    "microsoft/florence-2-large": "florence-community/Florence-2-large",
    "microsoft/florence-2-base-ft": "florence-community/Florence-2-base-ft",
    "microsoft/florence-2-large-ft": "florence-community/Florence-2-large-ft",
}


class ModelRefused(PreparationRefused):
    """The model cannot be prepared (remote code, not a captioning model, not on the Hub): the message
    says why and what to do instead."""


def _top_level_matches(files: Iterable[str], patterns: Iterable[str]) -> list[str]:
    patterns = tuple(patterns)
    return sorted(
        name for name in files if "/" not in name and any(fnmatch.fnmatch(name, p) for p in patterns)
    )


def files_to_download(repo_files: Iterable[str]) -> list[str]:
    """The files of a Hub repository that loading needs (see the module docstring)."""
    repo_files = list(repo_files)
    weights = _top_level_matches(repo_files, SAFETENSORS_WEIGHTS) or _top_level_matches(
        repo_files, PYTORCH_WEIGHTS
    )
    return _top_level_matches(repo_files, CONFIG_FILES + TOKENIZER_FILES) + weights


def check_loadable(model_dir: Path, origin: str) -> None:
    """Raise ModelRefused unless transformers loads this model directory natively as an
    image-text-to-text (captioning) model."""
    from transformers import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    for name in CONFIG_FILES:
        path = model_dir / name
        if not name.endswith(".json") or not path.is_file():
            continue
        auto_map = json.loads(path.read_text(encoding="utf-8")).get("auto_map")
        if auto_map:
            raise ModelRefused(_remote_code_message(origin, f"its {name} has auto_map {auto_map}"))
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ModelRefused(_remote_code_message(origin, f"model_type {model_type!r} is not in transformers"))
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise ModelRefused(
            f"{origin} is a {model_type!r} model, not an image captioning (image-text-to-text) model; "
            "use one AutoModelForImageTextToText loads, e.g. vision-encoder-decoder, blip, git, florence2, "
            "idefics3 / SmolVLM (docs/models.md lists tested ids)"
        )


def _remote_code_message(origin: str, evidence: str) -> str:
    message = (
        f"{origin} needs trust_remote_code ({evidence}): its own Python code would have to run, and no "
        "remote code runs at build time or in the function"
    )
    alternative = NATIVE_ALTERNATIVES.get(origin.lower())
    if alternative:
        return f"{message}; use {alternative}, the same weights converted for transformers"
    return f"{message}; choose a model transformers supports natively (docs/models.md lists tested ids)"


def _probe_hub() -> None:
    """One request to the Hub's endpoint, no retries: raises httpx's error when it cannot be reached.
    Any HTTP answer, even an error status, means it is reachable (the real requests then say more)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT_S)


def fetch_from_hub(model_id: str, into: Path, *, api=None, download=None) -> Path:
    """Download what loading `model_id` needs into `into` and return that directory.

    The config files come first and are checked (`check_loadable`) before any weights are fetched.
    An unreachable Hub is refused after one probe (`HUB_PROBE_TIMEOUT_S`), not after huggingface_hub's
    retries. `api` (an `HfApi`) and `download` (`snapshot_download`) can be replaced in tests; a given
    `api` is not probed for.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled
    from huggingface_hub.utils import httpx

    probe = api is None
    api = api or HfApi()
    download = download or snapshot_download
    try:
        if probe:
            _probe_hub()
        repo_files = api.list_repo_files(model_id)
        wanted = files_to_download(repo_files)
        if "config.json" not in wanted:
            raise ModelRefused(f"{model_id} has no config.json at the top of the repository: not a model")
        configs = [name for name in wanted if name in CONFIG_FILES]
        download(model_id, local_dir=into, allow_patterns=configs)
        check_loadable(into, model_id)
        if not _top_level_matches(wanted, SAFETENSORS_WEIGHTS + PYTORCH_WEIGHTS):
            raise ModelRefused(f"{model_id} has no model.safetensors or pytorch_model.bin weights to load")
        return Path(download(model_id, local_dir=into, allow_patterns=wanted))
    except (HfHubHTTPError, HFValidationError, OfflineModeIsEnabled, OSError, httpx.HTTPError) as error:
        raise ModelRefused(
            f"could not download {model_id} from the Hugging Face Hub ({type(error).__name__}: {error}); "
            "check the model id and the network, or build from a local directory (--source / modelDir)"
        ) from error
