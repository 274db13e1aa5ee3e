"""The function image's base: AWS's `public.ecr.aws/lambda/python` when it can be pulled, otherwise a
stand-in with the same layout built offline from Debian packages (debootstrap) and cached as a Docker image.

The stand-in differs from AWS's image: Debian 12 and Python 3.11 instead of Amazon Linux 2023 and 3.12
(the CPU torch wheel on this machine is for 3.11), no boto3 preinstalled, the RIE from the aws-sam-cli wheel.

For another architecture than this machine's (arm64 on x86), debootstrap makes that architecture's root
filesystem under QEMU user emulation (imagebuild.emulation), and BuildKit builds the image for that one
platform from it (`FROM scratch` + `ADD rootfs.tar`: Debian's 20.10 daemon ignores `docker import
--platform`).
"""
# ruff: noqa: S603, S607  (debootstrap, tar and docker with fixed argument lists)

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from imagebuild import wheelhouse
from imagebuild.architectures import Architecture, host
from imagebuild.docker_engine import apt_install, docker, docker_cli, image_exists, image_label

AWS_BASE_IMAGE = "public.ecr.aws/lambda/python:3.12"
STAND_IN_BASE_IMAGE = "captioning-lambda-base:python3.11"
ROOTFS_IMAGE = "captioning-lambda-rootfs:bookworm"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
ROOTFS_PACKAGES = ("python3", "python3-venv", "ca-certificates")
SAM_CLI = "aws-sam-cli==1.170.0"
BASE_DIR = Path(__file__).resolve().parent / "base"
FINGERPRINT_LABEL = "captioning.base-fingerprint"
PULL_TIMEOUT_S = 60


def _suffix(target: Architecture) -> str:
    """Names of this machine's architecture stay as they were; another architecture's carry its name."""
    return "" if target == host() else f"-{target.name}"


def stand_in_tag(target: Architecture) -> str:
    return f"{STAND_IN_BASE_IMAGE}{_suffix(target)}"


def rootfs_image(target: Architecture) -> str:
    return f"{ROOTFS_IMAGE}{_suffix(target)}"


def _fingerprint(target: Architecture) -> str:
    digest = hashlib.sha256(f"{SUITE} {ROOTFS_PACKAGES} {SAM_CLI} {target.platform}".encode())
    for path in sorted(BASE_DIR.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _rootfs_tarball(target: Architecture) -> Path:
    """A minimal Debian root filesystem with Python 3.11, made once with debootstrap and kept as a tarball."""
    tarball = wheelhouse.CACHE_DIR / f"rootfs-{SUITE}{_suffix(target)}-{'-'.join(ROOTFS_PACKAGES)}.tar"
    if tarball.exists():
        return tarball
    if not shutil.which("debootstrap"):
        apt_install("debootstrap")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=tarball.parent) as root:
        print(
            f"debootstrap {SUITE} {target.debian} (minbase + {', '.join(ROOTFS_PACKAGES)}) ...",
            file=sys.stderr,
        )
        result = subprocess.run(
            [
                "debootstrap",
                f"--arch={target.debian}",
                "--variant=minbase",
                f"--include={','.join(ROOTFS_PACKAGES)}",
                SUITE,
                root,
                MIRROR,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"debootstrap failed: {(result.stdout + result.stderr)[-2000:]}")
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
            for path in (Path(root) / leftover).glob("*"):
                if path.is_symlink() or path.is_file():
                    path.unlink()
                elif path.is_dir() and path.name != "partial":
                    shutil.rmtree(path)
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", root, "-cf", str(partial), "."], check=True)
        partial.rename(tarball)
    return tarball


def _rie(into: Path, target: Architecture) -> None:
    """Extract the Runtime Interface Emulator from the aws-sam-cli wheel (downloaded once by the host pip)."""
    cache = wheelhouse.CACHE_DIR / "rie"
    wheels = sorted(cache.glob("aws_sam_cli-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
            + ["--dest", str(cache), SAM_CLI],
            check=True,
        )
        wheels = sorted(cache.glob("aws_sam_cli-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        into.write_bytes(wheel.read(target.rie))
    into.chmod(0o755)


def _import_rootfs(target: Architecture) -> None:
    """The root filesystem as a Docker image of the target's platform."""
    tarball = _rootfs_tarball(target)
    if target == host():
        with tarball.open("rb") as stream:
            subprocess.run(
                [docker_cli(), "import", "-", rootfs_image(target)],
                stdin=stream,
                check=True,
                capture_output=True,
            )
        return
    with tempfile.TemporaryDirectory(prefix="rootfs-context-", dir=tarball.parent) as context:
        os.link(tarball, Path(context) / "rootfs.tar")  # same file system: no copy of the tarball
        (Path(context) / "Dockerfile").write_text('FROM scratch\nADD rootfs.tar /\nCMD ["/bin/sh"]\n')
        docker(
            "build",
            "--platform",
            target.platform,
            "-t",
            rootfs_image(target),
            context,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )


def build_stand_in(index_url: str, target: Architecture) -> str:
    """Build (or reuse) the stand-in base image for `target`; `index_url` serves awslambdaric to the build."""
    tag = stand_in_tag(target)
    fingerprint = _fingerprint(target)
    if image_exists(tag) and image_label(tag, FINGERPRINT_LABEL) == fingerprint:
        return tag
    if not image_exists(rootfs_image(target)):
        _import_rootfs(target)
    foreign = target != host()
    with tempfile.TemporaryDirectory(prefix="lambda-base-") as context:
        shutil.copytree(BASE_DIR, context, dirs_exist_ok=True)
        _rie(Path(context) / "aws-lambda-rie", target)
        print(f"building the stand-in base image {tag} ({target.platform}) ...", file=sys.stderr)
        docker(
            "build",
            "--network",
            "host",
            *(("--platform", target.platform) if foreign else ()),
            "--build-arg",
            f"ROOTFS={rootfs_image(target)}",
            "--build-arg",
            f"PIP_INDEX_URL={index_url}",
            "--label",
            f"{FINGERPRINT_LABEL}={fingerprint}",
            "-t",
            tag,
            context,
            env={**os.environ, "DOCKER_BUILDKIT": "1" if foreign else "0"},
        )
    return tag


def aws_base_available() -> bool:
    """True when AWS's base image is present or can be pulled (not on machines without a registry)."""
    if image_exists(AWS_BASE_IMAGE):
        return True
    try:
        return docker("pull", "--quiet", AWS_BASE_IMAGE, check=False, timeout=PULL_TIMEOUT_S).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def python_version(image: str) -> str:
    """`X.Y` of the image's Python (decides which wheels the wheelhouse holds)."""
    result = docker(
        "run",
        "--rm",
        "--entrypoint",
        "python3",
        image,
        "-c",
        "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')",
    )
    return result.stdout.strip()
