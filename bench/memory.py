"""A process's own peak resident memory.

``getrusage(...).ru_maxrss`` is not that on Linux: the kernel carries it over from the parent across
fork and exec, so a small child of a large parent reports the parent's figure. ``VmHWM`` in
/proc/<pid>/status is the high-water mark of the process's own address space (reset by exec).
"""

from __future__ import annotations

from pathlib import Path


def peak_rss_bytes(pid: int | str = "self") -> int:
    """``VmHWM`` of a process (default: this one), in bytes."""
    status = Path(f"/proc/{pid}/status")
    for line in status.read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "VmHWM":
            number, unit = value.split()
            if unit != "kB":
                raise RuntimeError(f"{status}: VmHWM in unexpected unit {unit!r}")
            return int(number) * 1024
    raise RuntimeError(f"{status} has no VmHWM line (not Linux?)")
