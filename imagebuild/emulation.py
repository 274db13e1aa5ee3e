"""QEMU user emulation through binfmt_misc, so that this machine builds and runs another architecture's
image (`make image ARCH=arm64` on x86): Debian's qemu-user-static and binfmt-support, installed as root when
missing or too old, and binfmt_misc mounted when it is not. The interpreter is registered with the F flag
(the kernel opens it once, at registration), so containers, which do not see the host's /usr/libexec, use it;
after an upgrade it is registered again, or the kernel keeps running the old binary.

Why QEMU 10: bookworm's QEMU 7.2 passes the host's /proc/cpuinfo (x86) through to the arm64 program, and
ONNX Runtime 1.32's aarch64 extension segfaults while importing; QEMU 10.0 (bookworm-backports) emulates an
ARM /proc/cpuinfo and the import works (tried 2026-12-03). The function's container runs with
`QEMU_CPU=neoverse-n1`, the core of Graviton2, which Lambda's arm64 runs on, so ONNX Runtime picks kernels
Graviton2 has (no SVE, SME or bf16; QEMU's default `max` CPU has them all)."""
# ruff: noqa: S603, S607  (mount, apt-get, update-binfmts and qemu with fixed argument lists)

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from imagebuild.architectures import Architecture
from imagebuild.docker_engine import EngineError

BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
PACKAGES = ("qemu-user-static", "binfmt-support")
QEMU_NAMES = {"aarch64": "qemu-aarch64", "x86_64": "qemu-x86_64"}
MINIMUM_QEMU = (10, 0)
"""The QEMU this was tried with that runs ONNX Runtime's aarch64 wheel (7.2 segfaults: see above)."""
LAMBDA_CPUS = {"arm64": "neoverse-n1"}
"""QEMU_CPU per emulated architecture: the core Lambda runs it on (arm64: Graviton2, a Neoverse N1)."""
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
MIRROR = "http://deb.debian.org/debian"


def _registration(target: Architecture) -> Path:
    return BINFMT_MISC / QEMU_NAMES[target.machine]


def registered_flags(target: Architecture) -> str | None:
    """The binfmt_misc flags of the target's QEMU interpreter, or None when it is not registered/enabled."""
    entry = _registration(target)
    if not entry.exists():
        return None
    lines = entry.read_text().splitlines()
    if not lines or lines[0].strip() != "enabled":
        return None
    for line in lines:
        if line.startswith("flags:"):
            return line.split(":", 1)[1].strip()
    return ""


def qemu_version(target: Architecture) -> tuple[int, ...] | None:
    """The installed qemu-user-static's (major, minor) for `target`, or None when it is not installed."""
    try:
        result = subprocess.run(
            [f"{QEMU_NAMES[target.machine]}-static", "--version"], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return None
    found = re.search(r"version (\d+)\.(\d+)", result.stdout)
    return (int(found[1]), int(found[2])) if found else None


def _codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise EngineError("cannot tell this Debian's release (no VERSION_CODENAME in /etc/os-release)")


def _install_qemu() -> None:
    """qemu-user-static and binfmt-support from this release's backports (bookworm's QEMU is 7.2), through a
    temporary source list: the machine's apt configuration is left as it was."""
    codename = _codename()
    if os.geteuid() != 0:
        raise EngineError(
            f"QEMU {'.'.join(map(str, MINIMUM_QEMU))}+ user emulation is needed: as root, apt-get install"
            f" -t {codename}-backports {' '.join(PACKAGES)}"
        )
    print(f"installing {', '.join(PACKAGES)} from {codename}-backports (apt-get) ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="apt-backports-") as scratch:
        parts = Path(scratch) / "sources.list.d"
        parts.mkdir()
        (parts / "backports.sources").write_text(
            f"Types: deb\nURIs: {MIRROR}\nSuites: {codename}-backports\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
        if DEBIAN_SOURCES.exists():
            (parts / "debian.sources").write_text(DEBIAN_SOURCES.read_text())
        lists = Path(scratch) / "lists"
        (lists / "partial").mkdir(parents=True)
        options = ["-o", f"Dir::Etc::SourceParts={parts}", "-o", f"Dir::State::Lists={lists}"]
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", *options, "update", "-q"],
            ["apt-get", *options, "install", "-y", "-q", "--no-install-recommends"]
            + ["-t", f"{codename}-backports", *PACKAGES],
        ):
            result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
            if result.returncode != 0:
                raise EngineError(f"apt-get {command[5]} failed: {result.stderr.strip()[-1500:]}")


def _mount_binfmt_misc() -> None:
    result = subprocess.run(
        ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_MISC)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise EngineError(
            f"binfmt_misc is not mounted and mounting it failed ({result.stderr.strip()}): as root,"
            f" mount -t binfmt_misc binfmt_misc {BINFMT_MISC}"
        )


def ensure_emulation(target: Architecture) -> str:
    """Make `target`'s binaries run here, installing what is missing; returns a one-line summary."""
    if not (BINFMT_MISC / "register").exists():
        _mount_binfmt_misc()
    name = QEMU_NAMES[target.machine]
    version = qemu_version(target)
    if version is None or version < MINIMUM_QEMU:
        _install_qemu()
        version = qemu_version(target)
        if version is None or version < MINIMUM_QEMU:
            found = "none" if version is None else ".".join(map(str, version))
            raise EngineError(
                f"{name}-static is {found} after installing {', '.join(PACKAGES)} from backports; QEMU"
                f" {'.'.join(map(str, MINIMUM_QEMU))} or newer is needed (older ones crash ONNX Runtime's"
                " arm64 import): install a newer qemu-user-static (the tooling assumes a Debian 12 host)"
            )
        # Registered with F, the kernel holds the binary it opened: register again to run the new one.
        subprocess.run(["update-binfmts", "--disable", name], capture_output=True, check=False)
    if registered_flags(target) is None:
        subprocess.run(["update-binfmts", "--enable", name], capture_output=True, check=False)
    flags = registered_flags(target)
    if flags is None:
        raise EngineError(
            f"{name} is not registered with binfmt_misc after installing {', '.join(PACKAGES)}:"
            f" see `update-binfmts --display {name}`"
        )
    if "F" not in flags:
        raise EngineError(
            f"{name} is registered without the F flag (flags {flags!r}), so containers cannot use it:"
            " install Debian's qemu-user-static (it registers with F)"
        )
    shown = ".".join(map(str, version or ()))
    return f"{target.name} under QEMU {shown} user emulation ({name}, binfmt flags {flags})"
