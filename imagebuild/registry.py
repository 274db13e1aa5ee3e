"""A container registry on 127.0.0.1 (Debian's `docker-registry`), to push an image and read the manifest a
registry (ECR, for Lambda) would get: Lambda accepts a single-platform image manifest, not an index."""
# ruff: noqa: S603, S607  (docker-registry, apt-get and docker with fixed argument lists)

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from imagebuild.docker_engine import apt_install, docker

IMAGE_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
"""Single-platform image manifests: what Lambda accepts."""
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
ACCEPT = ", ".join(INDEX_TYPES + IMAGE_MANIFEST_TYPES)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _registry_binary() -> str:
    found = shutil.which("docker-registry")
    if found:
        return found
    apt_install("docker-registry")
    return shutil.which("docker-registry") or "/usr/bin/docker-registry"


@contextmanager
def local_registry() -> Iterator[str]:
    """A registry on 127.0.0.1 with its storage in a temporary directory; yields `127.0.0.1:PORT`."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="registry-") as storage:
        config = Path(storage) / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}/data\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
        process = subprocess.Popen(
            [_registry_binary(), "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2).close()  # noqa: S310
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"docker-registry did not start: {process.stderr.read().decode()[-1500:]}"
                        ) from None
                    time.sleep(0.2)
            yield f"127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def push(tag: str, registry: str) -> str:
    """Push `tag` to `registry` as `registry/NAME:TAG`; returns that reference (and untags it locally)."""
    reference = f"{registry}/{tag}"
    docker("tag", tag, reference)
    try:
        docker("push", "--quiet", reference, timeout=1800)
    finally:
        docker("rmi", reference, check=False)
    return reference


def manifest(reference: str) -> dict[str, Any]:
    """The manifest the registry serves for `reference`, asked for with index types accepted too."""
    registry, _, rest = reference.partition("/")
    name, _, tag = rest.rpartition(":")
    request = urllib.request.Request(  # noqa: S310  a 127.0.0.1 registry
        f"http://{registry}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        body = json.loads(response.read())
        body.setdefault("mediaType", response.headers.get("Content-Type", ""))
        return body
