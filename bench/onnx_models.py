"""The benchmark model exported for the ONNX runtime with the project's own build step.

``python -m captioning.preparation --source <fp32 dir> --output <dir> --runtime onnx --precision P``
(the command the image's model stage runs), once per precision, into the benchmark cache. The
export is redone when the exporter's source changes (its digest is kept beside the output).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess  # noqa: S404  fixed argument lists, no shell
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ONNX_PRECISIONS = ("fp32", "int8")
MARKER = ".bench-exported"
NOT_USED_BY_THE_EXPORT = ("fetch.py", "save_torch.py")


@dataclass(frozen=True)
class OnnxModels:
    dirs: dict[str, Path] = field(default_factory=dict)
    """Exported model directory per precision (only those that exported)."""
    notes: dict[str, str] = field(default_factory=dict)
    """Why a precision is missing (the exporter's own message), per precision."""


def exporter_digest(repo_root: Path = REPO_ROOT) -> str:
    """A digest of the code that writes and checks the export: captioning/preparation without the Hub
    download and the torch runtime's saving, which an export from a local directory does not use."""
    digest = hashlib.sha256()
    sources = sorted(
        path
        for path in (repo_root / "captioning" / "preparation").rglob("*.py")
        if path.name not in NOT_USED_BY_THE_EXPORT
    )
    for path in sources:
        digest.update(str(path.relative_to(repo_root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def export_command(source: Path, output: Path, precision: str, python: str = sys.executable) -> list[str]:
    return [
        python,
        "-m",
        "captioning.preparation",
        "--source",
        str(source),
        "--output",
        str(output),
        "--runtime",
        "onnx",
        "--precision",
        precision,
    ]


def ensure_onnx_models(models_dir: Path, source: Path, log=print) -> OnnxModels:
    """Export ``source`` for every ONNX precision (cached); a failed export is a note, not a crash."""
    digest = exporter_digest()
    result = OnnxModels()
    for precision in ONNX_PRECISIONS:
        output = models_dir / f"onnx-{precision}"
        marker = output / MARKER
        if marker.exists() and marker.read_text() == digest:
            result.dirs[precision] = output
            continue
        if output.exists():
            shutil.rmtree(output)
        log(f"exporting the benchmark model for ONNX Runtime, {precision} (python -m captioning.preparation)")
        completed = subprocess.run(  # noqa: S603  fixed argument list, our own interpreter
            export_command(source, output, precision),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            message = (completed.stderr.strip() or completed.stdout.strip()).splitlines()
            result.notes[precision] = (
                f"python -m captioning.preparation --runtime onnx --precision {precision} failed "
                f"(exit {completed.returncode}): {message[-1] if message else 'no output'}"
            )
            continue
        marker.write_text(digest)
        result.dirs[precision] = output
    return result
