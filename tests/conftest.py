"""Shared fixtures: a tiny captioning model on disk, a loaded Captioner, moto-backed AWS; the layers' marks.

A test's layer is its directory under tests/ (unit, component, function, tools, e2e, image); the marks
follow it: every e2e test is `slow`, every image test is `image`, and no other layer may be either.
"""

from __future__ import annotations

import io
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

from captioning.contract.environment import offline_environment
from models.tiny import build_vit_gpt2
from ops.aws import MOTO_CREDENTIALS, MOTO_REGION

if TYPE_CHECKING:
    from local.resources import EmulatedResources

# The marks each layer's tests get (image tests are slow too); `make test-fast` runs the layers with none.
LAYERS = ("unit", "component", "function", "tools", "e2e", "image")
LAYER_MARKS: dict[str, tuple[str, ...]] = {"e2e": ("slow",), "image": ("image", "slow")}
TESTS_DIR = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects by mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its layer; a test outside the layers, or marked slow or image outside theirs, is a
    usage error."""
    layer_marks = {mark for marks in LAYER_MARKS.values() for mark in marks}
    for item in items:
        layer = item.path.relative_to(TESTS_DIR).parts[0]
        if layer not in LAYERS:
            raise pytest.UsageError(
                f"{item.nodeid} is in no layer: tests live in tests/{{{','.join(LAYERS)}}}/"
            )
        own = LAYER_MARKS.get(layer, ())
        for mark in sorted(layer_marks - set(own)):
            if item.get_closest_marker(mark):
                raise pytest.UsageError(
                    f"{item.nodeid} is marked {mark} but is in tests/{layer}/: the layer decides "
                    f"(slow: tests/e2e/, image: tests/image/); move it, or make it fast"
                )
        for mark in own:
            item.add_marker(mark)


# No test reaches the Hub (the sizing check would otherwise try it for made-up model ids).
os.environ.update(offline_environment())

AWS_TEST_REGION = MOTO_REGION
REPO_ROOT = TESTS_DIR.parent


@pytest.fixture(scope="session", autouse=True)
def build_context_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The component assembles image build contexts here, not in the user's cache directory."""
    from captioning.component.build_context import CACHE_ENVIRONMENT

    path = tmp_path_factory.mktemp("build-contexts")
    previous = os.environ.get(CACHE_ENVIRONMENT)
    os.environ[CACHE_ENVIRONMENT] = str(path)
    yield path
    if previous is None:
        os.environ.pop(CACHE_ENVIRONMENT, None)
    else:
        os.environ[CACHE_ENVIRONMENT] = previous


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ViT + GPT-2 VisionEncoderDecoderModel directory, as save_pretrained writes it."""
    return build_vit_gpt2(tmp_path_factory.mktemp("models") / "tiny-vit-gpt2")


@pytest.fixture(scope="session")
def tiny_captioner(tiny_model_dir: Path):
    """The tiny model loaded through Captioner.load with the project defaults (fp32)."""
    from captioning.function.captioner import Captioner

    return Captioner.load(tiny_model_dir, num_beams=3, max_length=12)


def make_image_bytes(
    size: tuple[int, int] = (64, 48),
    *,
    image_format: str = "PNG",
    mode: str = "RGB",
    color: object = (200, 30, 40),
    **save_options: object,
) -> bytes:
    """An encoded image of one colour with a contrasting square, so different inputs look different."""
    image = Image.new(mode, size, color)
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **save_options)
    return buffer.getvalue()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a region so boto3 never looks for real ones."""
    for name, value in MOTO_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_TEST_REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def mocked_aws(aws_credentials: None) -> Iterator[None]:
    """moto's in-process AWS (S3, DynamoDB, SQS) for the duration of one test."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def emulated_resources(mocked_aws: None) -> EmulatedResources:
    """The deployed queue-mode resources (bucket notifying a queue with a dead-letter queue, captions table)
    in moto's in-process AWS, made by the local pipeline's own code (local/resources.py), which takes its
    policies, retention and filters from the component. The queue holds S3's test event."""
    from local.resources import create_resources

    # No endpoint: the default AWS endpoints, which mock_aws intercepts in-process.
    return create_resources(None, visibility_timeout_s=30, max_receive_count=3)


# --- `python -m local` in a child process, as a user runs it ---------------------------------------------


def run_local(*args: str, timeout: float = 240, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """`python -m local ARGS` to its end: exit code, stdout, stderr."""
    return subprocess.run(  # noqa: S603  our own CLI, fixed arguments
        [sys.executable, "-m", "local", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def wait_for_line(lines: queue.Queue[str], needle: str, timeout: float) -> str:
    """The next line holding `needle` (lines before it are consumed); AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if needle in line:
            return line
    raise AssertionError(f"no line containing {needle!r} within {timeout} s")


class ServeProcess:
    """`python -m local serve ARGS` in a child process, its stdout and stderr read line by line."""

    def __init__(self, state_file: Path, *args: str) -> None:
        self.process = subprocess.Popen(  # noqa: S603  our own CLI
            [sys.executable, "-m", "local", "serve", *args],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CAPTIONING_LOCAL_STATE": str(state_file)},
        )
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_read_lines, args=(self.process.stdout, self.stdout), daemon=True).start()
        threading.Thread(target=_read_lines, args=(self.process.stderr, self.stderr), daemon=True).start()

    @staticmethod
    def client(service: str, endpoint: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=AWS_TEST_REGION,
            aws_access_key_id="x",
            aws_secret_access_key="x",  # noqa: S106  moto ignores credentials
        )

    def stop(self) -> int:
        """Ctrl-C, and its exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
