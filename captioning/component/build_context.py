"""The function image's Docker build context, put together from the installed package.

The component may be installed anywhere (site-packages, a git checkout, this repository) and the program
using it names its model directory relative to itself; Docker needs both in one directory. So the context
is assembled in a cache directory named by the digest of what goes in: the same inputs give the same path
(no spurious diff on the next `pulumi preview`), and any change gives a new path and rebuilds the image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pulumi

MODEL_SOURCE = "model"
"""Where a local model directory (`model_dir`) lands in the context: the Dockerfile's MODEL_SOURCE."""

IMAGE_SOURCE_PATTERNS = (
    "__init__.py",
    "contract/*.py",
    "function/*.py",
    "function/Dockerfile",
    "function/requirements-*.txt",
    "preparation/*.py",
    "preparation/requirements-build.txt",
    "preparation/hub_model/*",
)
"""The package's files the image is made from, relative to the installed `captioning` package: the
contract, the function and build-time preparation (never the component, the mocks or the tools)."""

CACHE_ENVIRONMENT = "CAPTIONING_BUILD_CACHE"
"""Names the directory the contexts are assembled in (default: the user's cache directory)."""


@dataclass(frozen=True)
class BuildContext:
    path: Path
    """The assembled context directory."""
    fingerprint: str
    """A digest of every file in it: the image is rebuilt exactly when it changes."""
    model_source: str | None
    """The model directory inside the context, or None when the build downloads the model."""


def package_directory() -> Path:
    """The installed `captioning` package, whose files the image is built from (read as files: the
    component imports nothing of the function)."""
    return Path(__file__).resolve().parent.parent


def program_directory() -> Path:
    """The directory of the program using the component: its Pulumi.yaml, else the working directory.

    A provider (other languages) and unit-test mocks have no root directory, or the SDK's placeholder
    (a relative name); both run in the program's directory.
    """
    root = Path(pulumi.runtime.get_root_directory() or "")
    return root if root.is_absolute() and root.is_dir() else Path.cwd()


def resolve_model_dir(model_dir: str) -> Path:
    """`model_dir` as an absolute path; a relative one is taken from the program's directory."""
    path = Path(model_dir).expanduser()
    return path if path.is_absolute() else program_directory() / path


def cache_directory() -> Path:
    configured = os.environ.get(CACHE_ENVIRONMENT)
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "captioning" / "build-contexts"


def context_files(model_dir: str | None) -> dict[str, Path]:
    """Every file of the context: its path in the context -> where it comes from."""
    package = package_directory()
    files = {
        f"captioning/{path.relative_to(package).as_posix()}": path
        for pattern in IMAGE_SOURCE_PATTERNS
        for path in package.glob(pattern)
        if path.is_file() and "__pycache__" not in path.parts
    }
    if model_dir is not None:
        model = resolve_model_dir(model_dir)
        files.update(
            (f"{MODEL_SOURCE}/{path.relative_to(model).as_posix()}", path)
            for path in model.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        )
    return dict(sorted(files.items()))


def fingerprint(files: dict[str, Path]) -> str:
    """A digest of the names and contents, read in chunks (a model directory may hold gigabytes)."""
    digest = hashlib.sha256()
    for name, source in files.items():
        with source.open("rb") as contents:
            file_digest = hashlib.file_digest(contents, "sha256").digest()
        digest.update(name.encode() + b"\0" + file_digest)
    return digest.hexdigest()


def prepare_build_context(model_dir: str | None) -> BuildContext:
    """The context for this model directory (None: the build downloads `model_id`), assembled once."""
    files = context_files(model_dir)
    digest = fingerprint(files)
    path = cache_directory() / digest[:32]
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".assembling-", dir=path.parent))
        try:
            for name, source in files.items():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, staging / name)
            staging.rename(path)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not path.is_dir():
                raise
            # else another program assembled the same context first: identical contents
    return BuildContext(path, digest, MODEL_SOURCE if model_dir is not None else None)
