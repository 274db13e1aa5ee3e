"""Cold starts: a fresh process from start to first caption, with the page cache emptied first."""

from __future__ import annotations

import json
import os
import statistics
import subprocess  # noqa: S404  fixed argument lists, no shell
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

from captioning.contract.environment import OFFLINE_ENVIRONMENT

REPO_ROOT = Path(__file__).resolve().parent.parent
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


@dataclass(frozen=True)
class ColdStart:
    label: str
    python: str
    torch_version: str | None
    import_s: float
    load_s: float
    first_inference_s: float
    total_s: float
    read_bytes: int
    peak_rss_bytes: int
    first_caption: str
    batch_captions: list[str]
    onnxruntime_version: str | None = None
    imported: list[str] = field(default_factory=list)
    """Which of torch, transformers, onnxruntime the process had imported by the end."""


def can_drop_page_cache() -> bool:
    return os.access(DROP_CACHES, os.W_OK)


def drop_page_cache() -> None:
    os.sync()
    DROP_CACHES.write_text("3\n")


def evict_files(roots: list[Path]) -> int:
    """Fallback where drop_caches is not writable: ask the kernel to forget these files' pages."""
    evicted = 0
    for root in roots:
        paths = [root] if root.is_file() else (p for p in root.rglob("*") if p.is_file())
        for path in paths:
            try:
                descriptor = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
                evicted += 1
            finally:
                os.close(descriptor)
    return evicted


def cache_method() -> str:
    if can_drop_page_cache():
        return "page cache dropped before each cold start (echo 3 > /proc/sys/vm/drop_caches)"
    return (
        "/proc/sys/vm/drop_caches is not writable here: evicted the interpreter's, the environment's "
        "and the model's files with posix_fadvise(POSIX_FADV_DONTNEED) before each cold start"
    )


def _empty_cache(python: Path, model_dir: Path) -> None:
    if can_drop_page_cache():
        drop_page_cache()
        return
    venv_root = python.parent.parent
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    evict_files([venv_root, stdlib, model_dir, REPO_ROOT / "handler", REPO_ROOT / "bench"])


def run_cold_start(
    label: str,
    python: Path,
    pipeline: str,
    model_dir: Path,
    first_image: Path,
    batch_images: list[Path],
    precision: str = "fp32",
) -> ColdStart:
    _empty_cache(python, model_dir)
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        **OFFLINE_ENVIRONMENT,
        "TRANSFORMERS_VERBOSITY": "error",
    }
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    spawned_at = time.time()
    completed = subprocess.run(  # noqa: S603  fixed argument list, our own interpreter
        [
            str(python),
            "-m",
            "bench.coldstart_child",
            "--pipeline",
            pipeline,
            "--model-dir",
            str(model_dir),
            "--precision",
            precision,
            "--first-image",
            str(first_image),
            "--spawned-at",
            repr(spawned_at),
            "--batch-images",
            *map(str, batch_images),
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"cold start {label!r} failed:\n{completed.stderr[-4000:]}")
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    return ColdStart(
        label=label,
        python=figures["python"],
        torch_version=figures["torch_version"],
        import_s=figures["import_s"],
        load_s=figures["load_s"],
        first_inference_s=figures["first_inference_s"],
        total_s=figures["total_s"],
        read_bytes=figures["read_bytes"],
        peak_rss_bytes=figures["peak_rss_bytes"],
        first_caption=figures["first_caption"],
        batch_captions=figures["batch_captions"],
        onnxruntime_version=figures["onnxruntime_version"],
        imported=figures["imported"],
    )


def median_cold_start(runs: list[ColdStart]) -> ColdStart:
    """Each figure's median over the runs (captions from the first run)."""
    first = runs[0]

    def median(name: str) -> float:
        return statistics.median(getattr(run, name) for run in runs)

    return ColdStart(
        label=first.label,
        python=first.python,
        torch_version=first.torch_version,
        import_s=median("import_s"),
        load_s=median("load_s"),
        first_inference_s=median("first_inference_s"),
        total_s=median("total_s"),
        read_bytes=int(median("read_bytes")),
        peak_rss_bytes=int(median("peak_rss_bytes")),
        first_caption=first.first_caption,
        batch_captions=first.batch_captions,
        onnxruntime_version=first.onnxruntime_version,
        imported=first.imported,
    )
