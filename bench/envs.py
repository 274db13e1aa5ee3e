"""Cached virtualenvs the cold starts run in, outside the repo and used by nothing else.

- baseline: the original design's environment, the default torch wheel from the package index
  (on Linux x86_64 the CUDA build the original container image carried);
- project: the project's CPU-only torch wheel;
- onnx: exactly what the function image installs for ``runtime=onnx``
(captioning/function/requirements-onnx.txt,
  ``--no-deps``): no torch, no transformers.
The two torch environments get the same transformers/tokenizers/safetensors/Pillow versions as the
project venv. A private environment per side also keeps the measurement honest: library pages that
other processes have mapped cannot be dropped from the page cache, so a shared venv would read less.
"""

from __future__ import annotations

import subprocess  # noqa: S404  fixed argument lists, no shell
import sys
from importlib import metadata
from pathlib import Path

BASELINE_TORCH_VERSION = "2.14.1"
SHARED_PACKAGES = (
    "transformers",
    "tokenizers",
    "safetensors",
    "pillow",
    "huggingface-hub",
    "psutil",
    "numpy",
    "pi-heif",  # captioning.function.images registers its HEIF opener at import
)
READY_MARKER = ".bench-ready"
REPO_ROOT = Path(__file__).resolve().parent.parent
ONNX_REQUIREMENTS = REPO_ROOT / "captioning" / "function" / "requirements-onnx.txt"


def baseline_torch_requirement() -> str:
    return f"torch=={BASELINE_TORCH_VERSION}"


def project_torch_requirement() -> str:
    """The torch build the project venv runs (the CPU wheel, e.g. 2.13.0+cpu)."""
    return f"torch=={metadata.version('torch')}"


def requirements_with(torch_requirement: str) -> list[str]:
    return [torch_requirement, *(f"{name}=={metadata.version(name)}" for name in SHARED_PACKAGES)]


def onnx_requirements() -> list[str]:
    """The pinned lines of captioning/function/requirements-onnx.txt (what the onnx image's final stage
    installs)."""
    lines = (line.split("#", 1)[0].strip() for line in ONNX_REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def env_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def ensure_env(venv_dir: Path, torch_requirement: str, log=print) -> Path:
    """A torch environment: the given torch plus the project venv's versions of the shared packages."""
    return ensure_env_with(venv_dir, requirements_with(torch_requirement), log=log)


def ensure_onnx_env(venv_dir: Path, log=print) -> Path:
    """The onnx runtime's environment, installed like the image's final stage (``--no-deps``)."""
    return ensure_env_with(venv_dir, onnx_requirements(), no_deps=True, log=log)


def ensure_env_with(venv_dir: Path, requirements: list[str], *, no_deps: bool = False, log=print) -> Path:
    """Create the virtualenv once (it is cached while its pins stay the same); return its interpreter."""
    python = env_python(venv_dir)
    marker = venv_dir / READY_MARKER
    recorded = "\n".join([*requirements, *(["--no-deps"] if no_deps else [])])
    if marker.exists() and marker.read_text() == recorded:
        return python
    log(f"creating {venv_dir} with {requirements[0]} ... (once; cached afterwards)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv_dir)], check=True)  # noqa: S603
    installed = subprocess.run(  # noqa: S603  fixed argument list
        [str(python), "-m", "pip", "install", "--quiet", *(["--no-deps"] if no_deps else []), *requirements],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        raise RuntimeError(f"installing {venv_dir} failed:\n{installed.stderr[-4000:]}")
    marker.write_text(recorded)
    return python


if __name__ == "__main__":
    ensure_env(Path(sys.argv[1]), sys.argv[2])
