"""The packages of an image build, offline: the host's pip downloads them into a wheelhouse (the CPU torch
wheel comes from the host's find-links directory, e.g. /opt/wheels), which is served as a PEP 503 simple
index on 127.0.0.1 to a `--network host` build. No credentials: the index is local and anonymous.

Another architecture's wheelhouse (arm64 on x86) holds only what the image's libraries stage installs there
(the ONNX runtime's requirements and the stand-in base's awslambdaric): the model stage runs on this
machine's architecture, from this machine's wheelhouse, so torch is never needed for arm64. The build is
served both wheelhouses as one index; pip picks each stage's wheels by their platform tags."""
# ruff: noqa: S603  (runs this interpreter's pip with fixed arguments)

from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from imagebuild.architectures import Architecture, host

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = Path(os.environ.get("CAPTIONING_BUILD_CACHE", Path.home() / ".cache" / "captioning"))
REQUIREMENT_FILES = (
    "captioning/preparation/requirements-build.txt",
    "captioning/function/requirements-torch.txt",
    "captioning/function/requirements-onnx.txt",
)
FOREIGN_REQUIREMENT_FILES = ("captioning/function/requirements-onnx.txt",)
"""Another architecture's image installs only the ONNX runtime's libraries (`make image ARCH=arm64`)."""
FOREIGN_RUNTIMES = ("onnx",)
BASE_REQUIREMENTS = Path(__file__).resolve().parent / "base" / "requirements.txt"
"""What the stand-in base image installs (awslambdaric) besides the function's requirements."""
PREFERRED_PORT = 38417
"""A fixed port keeps the build args, and so Docker's layer cache, the same from one build to the next."""
_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-")


def requirement_files(target: Architecture | None = None) -> list[Path]:
    names = REQUIREMENT_FILES if target in (None, host()) else FOREIGN_REQUIREMENT_FILES
    return [REPO_ROOT / name for name in names] + [BASE_REQUIREMENTS]


def _fingerprint(python_version: str, target: Architecture) -> str:
    digest = hashlib.sha256(python_version.encode())
    for path in requirement_files(target):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def wheelhouse_dir(python_version: str, target: Architecture | None = None) -> Path:
    suffix = "" if target in (None, host()) else f"-{target.name}"
    return CACHE_DIR / f"wheelhouse-py{python_version}{suffix}"


def _platform_options(python_version: str, target: Architecture | None = None) -> list[str]:
    """This interpreter's own tags when it matches the base image; otherwise the target's Linux wheels
    (this machine's architecture by default)."""
    native = target in (None, host())
    target = target or host()
    if native and python_version == f"{sys.version_info.major}.{sys.version_info.minor}":
        return ["--only-binary=:all:"]
    return [
        "--only-binary=:all:",
        "--python-version",
        python_version,
        *(option for platform in target.wheel_platforms for option in ("--platform", platform)),
        *(("--extra-index-url", "https://download.pytorch.org/whl/cpu") if native else ()),
    ]


def download(python_version: str, target: Architecture | None = None) -> Path:
    """Fill the wheelhouse for `python_version` and the target architecture (this machine's by default;
    skipped when the requirement files have not changed)."""
    target = target or host()
    directory = wheelhouse_dir(python_version, target)
    stamp = directory / ".complete"
    fingerprint = _fingerprint(python_version, target)
    if stamp.exists() and stamp.read_text().strip() == fingerprint:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(directory)]
    command += ["--find-links", str(directory), *_platform_options(python_version, target)]
    for path in requirement_files(target):
        command += ["-r", str(path)]
    print(f"downloading the {target.name} wheelhouse into {directory} ...", file=sys.stderr)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        errors = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("WARNING"))
        raise RuntimeError(f"pip download failed:\n{errors[-3000:]}")
    cuda = sorted(path.name for path in directory.glob("nvidia_*.whl"))
    if cuda:
        raise RuntimeError(f"the wheelhouse has CUDA wheels ({cuda[0]} ...): torch must be the CPU build")
    write_simple_index(directory)
    stamp.write_text(fingerprint + "\n")
    return directory


def _project(filename: str) -> str:
    match = _WHEEL_NAME.match(filename)
    if not match:
        raise ValueError(f"not a wheel or sdist name: {filename}")
    return re.sub(r"[-_.]+", "-", match["name"]).lower()


def write_simple_index(directory: Path) -> None:
    """PEP 503: simple/<project>/index.html linking to the files beside it."""
    projects: dict[str, list[str]] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix == ".whl" or path.name.endswith(".tar.gz"):
            projects.setdefault(_project(path.name), []).append(path.name)
    simple = directory / "simple"
    for project, files in projects.items():
        (simple / project).mkdir(parents=True, exist_ok=True)
        links = "".join(
            f'<a href="../../{html.escape(name)}">{html.escape(name)}</a><br>\n' for name in files
        )
        (simple / project / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    root_links = "".join(f'<a href="{name}/">{name}</a><br>\n' for name in sorted(projects))
    (simple / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{root_links}</body></html>\n")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  the base class's name
        pass


@contextmanager
def serve(*directories: Path) -> Iterator[str]:
    """Serve the wheelhouse(s) as one index on 127.0.0.1 (the preferred port when free); yields the simple
    index's URL."""
    if len(directories) == 1:
        with _serve(directories[0]) as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="wheelhouses-", dir=CACHE_DIR) as merged:
        for directory in directories:
            for path in directory.iterdir():
                link = Path(merged) / path.name
                if path.is_file() and path.name != ".complete" and not link.exists():
                    link.symlink_to(path)
        write_simple_index(Path(merged))
        with _serve(Path(merged)) as url:
            yield url


@contextmanager
def _serve(directory: Path) -> Iterator[str]:
    handler = partial(_QuietHandler, directory=str(directory))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", PREFERRED_PORT), handler)
    except OSError:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        print(
            f"port {PREFERRED_PORT} is taken: serving the wheelhouse on {server.server_port}"
            " (the pip layers are rebuilt)",
            file=sys.stderr,
        )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/simple/"
    finally:
        server.shutdown()
        server.server_close()
