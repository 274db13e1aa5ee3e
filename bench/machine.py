"""What the benchmark ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0))


def load_average() -> tuple[float, float, float]:
    return tuple(round(value, 2) for value in os.getloadavg())


def describe_machine() -> dict:
    import torch

    flags = cpu_flags()
    return {
        "cpu_model": cpu_model(),
        "threads": usable_cpus(),
        "torch_threads": torch.get_num_threads(),
        "avx512_bf16": "avx512_bf16" in flags or "amx_bf16" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
