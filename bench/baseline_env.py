"""The original design's Python environment: the default torch wheel from the package index.

On Linux x86_64 that wheel is the CUDA build the original container image carried; every byte it
reads at import counts against the cold start, so the baseline's cold start runs in it.
"""

from __future__ import annotations

import subprocess  # noqa: S404  fixed argument lists, no shell
import sys
from importlib import metadata
from pathlib import Path

BASELINE_TORCH_VERSION = "2.14.1"
SHARED_PACKAGES = ("transformers", "tokenizers", "safetensors", "pillow", "huggingface-hub", "psutil", "numpy")
READY_MARKER = ".bench-ready"


def baseline_requirements() -> list[str]:
    """The default torch wheel, plus the same versions of everything else the project venv runs."""
    pins = [f"torch=={BASELINE_TORCH_VERSION}"]
    pins += [f"{name}=={metadata.version(name)}" for name in SHARED_PACKAGES]
    return pins


def baseline_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def ensure_baseline_env(venv_dir: Path, log=print) -> Path:
    """Create the baseline virtualenv once (it is cached); return its interpreter."""
    python = baseline_python(venv_dir)
    marker = venv_dir / READY_MARKER
    requirements = baseline_requirements()
    if marker.exists() and marker.read_text() == "\n".join(requirements):
        return python
    log(f"creating the baseline environment in {venv_dir} (once; the default torch wheel is several GB)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv_dir)], check=True)  # noqa: S603
    installed = subprocess.run(  # noqa: S603  fixed argument list
        [str(python), "-m", "pip", "install", "--quiet", *requirements],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        raise RuntimeError(f"installing the baseline environment failed:\n{installed.stderr[-4000:]}")
    marker.write_text("\n".join(requirements))
    return python


if __name__ == "__main__":
    ensure_baseline_env(Path(sys.argv[1]))
