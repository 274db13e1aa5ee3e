"""The Docker engine on this machine: find the CLI, start the daemon (installing Debian's docker.io as root
when it is missing), run docker commands."""
# ruff: noqa: S603, S607  (runs the docker CLI, apt-get and dockerd with fixed argument lists)

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

DAEMON_LOG = Path("/tmp/captioning-dockerd.log")  # noqa: S108  the daemon's own log, root-only machine
START_TIMEOUT_S = 60


class EngineError(RuntimeError):
    """The Docker engine is not available and could not be started; the message says what to do."""


def docker_cli() -> str:
    """The docker client: $DOCKER, else Debian's /usr/bin/docker (it can use BuildKit), else `docker`."""
    if os.environ.get("DOCKER"):
        return os.environ["DOCKER"]
    if Path("/usr/bin/docker").exists():
        return "/usr/bin/docker"
    found = shutil.which("docker")
    if not found:
        raise EngineError(
            "no docker client found: install Debian's docker.io (`make image-test` does, as root)"
        )
    return found


def docker(*args: str, check: bool = True, capture: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run `docker ARGS`; on failure raise with its stderr."""
    result = subprocess.run([docker_cli(), *args], capture_output=capture, text=True, check=False, **kwargs)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip() if capture else ""
        raise EngineError(f"docker {' '.join(args[:3])} ... failed ({result.returncode}): {detail[-2000:]}")
    return result


def engine_running() -> bool:
    try:
        return docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=20).returncode == 0
    except (EngineError, subprocess.TimeoutExpired):
        return False


def apt_install(*packages: str) -> None:
    """Install Debian packages (as root): what `make image-test` needs on a fresh machine."""
    if os.geteuid() != 0:
        raise EngineError(
            f"{', '.join(packages)} not installed; as root: apt-get install {' '.join(packages)}"
        )
    print(f"installing {', '.join(packages)} (apt-get) ...", file=sys.stderr)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
    ):
        result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
        if result.returncode != 0:
            raise EngineError(f"{' '.join(command)} failed: {result.stderr.strip()[-1500:]}")


def _install_engine() -> None:
    apt_install("docker.io", "iptables")


def ensure_engine() -> None:
    """Make `docker info` answer: start dockerd (overlay2) when it is not running, installing it if needed."""
    if engine_running():
        return
    if not shutil.which("dockerd"):
        _install_engine()
    if os.geteuid() != 0:
        raise EngineError("the Docker daemon is not running and only root can start it here: run as root")
    print(f"starting dockerd (log: {DAEMON_LOG}) ...", file=sys.stderr)
    with DAEMON_LOG.open("ab") as log:
        subprocess.Popen(
            ["dockerd", "--storage-driver=overlay2"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the daemon outlives this command, like a service
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if engine_running():
            return
        time.sleep(0.5)
    raise EngineError(f"dockerd did not answer `docker info` within {START_TIMEOUT_S} s; see {DAEMON_LOG}")


def image_exists(reference: str) -> bool:
    return docker("image", "inspect", reference, check=False).returncode == 0


def image_label(reference: str, label: str) -> str | None:
    result = docker(
        "image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', reference, check=False
    )
    value = result.stdout.strip() if result.returncode == 0 else ""
    return value if value and value != "<no value>" else None


def main(argv: list[str] | None = None) -> int:
    """`python -m imagebuild engine`: make sure the Docker engine answers (as root: installs, starts it)."""
    argparse.ArgumentParser(prog="python -m imagebuild engine", description=main.__doc__).parse_args(argv)
    ensure_engine()
    print(docker("info", "--format", "Docker engine {{.ServerVersion}} ({{.Driver}})").stdout.strip())
    return 0
