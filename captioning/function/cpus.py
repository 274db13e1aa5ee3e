"""How many CPUs this process may use (threads for ONNX Runtime and torch follow it)."""

from __future__ import annotations

import os


def available_cpus() -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (docker --cpus)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as cpu_max:
            quota, period = cpu_max.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return cpus
