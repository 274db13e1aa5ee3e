"""What building the function image for each Lambda architecture needs: the Docker platform, Debian's name
for the architecture (debootstrap), the wheel platform tags (the wheelhouse) and the Runtime Interface
Emulator's binary in the aws-sam-cli wheel. Another architecture than this machine's builds under QEMU user
emulation (imagebuild.emulation)."""

from __future__ import annotations

import platform
from dataclasses import dataclass

from captioning.contract.constants import ARCHITECTURES as LAMBDA_ARCHITECTURES
from captioning.contract.constants import PLATFORMS

DEFAULT_ARCHITECTURE = LAMBDA_ARCHITECTURES[0]


@dataclass(frozen=True)
class Architecture:
    name: str
    """Lambda's name (the component's `architecture` setting)."""
    platform: str
    """The Docker platform its image is built for (the contract's PLATFORMS, as the component builds it):
    one platform, so the image is a manifest, not an index."""
    debian: str
    """debootstrap --arch"""
    wheel_platforms: tuple[str, ...]
    """pip download --platform tags, newest first."""
    rie: str
    """The Runtime Interface Emulator binary in the aws-sam-cli wheel."""
    machine: str
    """`uname -m` inside the image."""


ARCHITECTURES = {
    "x86_64": Architecture(
        name="x86_64",
        platform=PLATFORMS["x86_64"],
        debian="amd64",
        wheel_platforms=(
            "manylinux_2_28_x86_64",
            "manylinux_2_27_x86_64",
            "manylinux_2_17_x86_64",
            "manylinux2014_x86_64",
        ),
        rie="samcli/local/rapid/aws-lambda-rie-x86_64",
        machine="x86_64",
    ),
    "arm64": Architecture(
        name="arm64",
        platform=PLATFORMS["arm64"],
        debian="arm64",
        wheel_platforms=(
            "manylinux_2_28_aarch64",
            "manylinux_2_27_aarch64",
            "manylinux_2_26_aarch64",
            "manylinux_2_17_aarch64",
            "manylinux2014_aarch64",
        ),
        rie="samcli/local/rapid/aws-lambda-rie-arm64",
        machine="aarch64",
    ),
}


def architecture(name: str) -> Architecture:
    """The architecture called `name`; a clear error naming the allowed ones otherwise."""
    if name not in ARCHITECTURES:
        raise ValueError(f"ARCH must be one of {', '.join(ARCHITECTURES)}; got {name!r}")
    return ARCHITECTURES[name]


def host() -> Architecture:
    """This machine's architecture (the one that builds and runs without emulation)."""
    machine = platform.machine().lower()
    for candidate in ARCHITECTURES.values():
        if machine in (candidate.machine, candidate.debian, candidate.name):
            return candidate
    raise RuntimeError(f"this machine's architecture {machine!r} is neither x86_64 nor arm64")
