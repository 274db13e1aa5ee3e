"""`python -m local caption|serve --function-image TAG`: the real function image under the Lambda runtime
emulator gives the same output and the same accounting as the in-process function.

Needs Docker and the built image (`make image`): marked `image`, so `make test` leaves it out. The tag is
the first of $CAPTIONING_IMAGE_TAGS (default captioning-function:local).
"""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

pytestmark = [pytest.mark.image, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO_ROOT / "samples" / "images"
TAG = (os.environ.get("CAPTIONING_IMAGE_TAGS") or "captioning-function:local").split(",")[0].strip()


def caption(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  our own CLI, fixed arguments
        [sys.executable, "-m", "local", "caption", *args, "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("uploads")
    for sample in SAMPLES_DIR.iterdir():
        (folder / sample.name).write_bytes(sample.read_bytes())
    (folder / "notes.jpg").write_text("shopping list: eggs, milk\n")
    (folder / "scan.bmp").write_bytes((SAMPLES_DIR / "red circle.png").read_bytes())
    return folder


def test_caption_through_the_image_matches_the_in_process_function(uploads: Path) -> None:
    in_image = caption(str(uploads), "--function-image", TAG)
    assert in_image.returncode == 0, in_image.stderr[-3000:]
    in_process = caption(str(uploads))
    assert in_process.returncode == 0, in_process.stderr[-3000:]
    rows = json.loads(in_image.stdout)
    assert rows == json.loads(in_process.stdout)
    by_key = {row["key"]: row for row in rows}
    listed = json.loads((REPO_ROOT / "samples" / "captions.json").read_text())
    assert {name: by_key[name].get("caption") for name in listed} == listed
    assert by_key["notes.jpg"]["status"] == "failed" and "not an image" in by_key["notes.jpg"]["error"]
    assert by_key["scan.bmp"]["status"] == "skipped"
    assert f"{len(listed)} captioned, 1 failed, {len(listed) + 1} uploaded, 1 skipped" in in_image.stderr


def test_an_unknown_image_is_a_clear_error(uploads: Path) -> None:
    result = caption(str(uploads / "red circle.png"), "--function-image", "no-such-image:anywhere")
    assert result.returncode == 1 and result.stdout == ""
    assert "cannot run the function image no-such-image:anywhere" in result.stderr
    assert "Traceback" not in result.stderr


def _read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def _wait_for_line(lines: queue.Queue[str], needle: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if needle in line:
            return line
    raise AssertionError(f"no line containing {needle!r} within {timeout} s")


def test_serve_through_the_image_captions_an_upload(tmp_path: Path) -> None:
    process = subprocess.Popen(  # noqa: S603  our own CLI
        [sys.executable, "-m", "local", "serve", "--function-image", TAG],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "CAPTIONING_LOCAL_STATE": str(tmp_path / "serve.json")},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        endpoint = _wait_for_line(lines, "endpoint", 300).split()[-1]
        bucket = _wait_for_line(lines, "bucket", 5).split()[-1]
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",  # noqa: S106
        )
        s3.put_object(Bucket=bucket, Key="dropped in.png", Body=(SAMPLES_DIR / "red circle.png").read_bytes())
        captioned = _wait_for_line(lines, "dropped in.png", 60)
        assert captioned.split() == [
            "captioned",
            "dropped",
            "in.png",
            *"a red circle on a white background".split(),
        ]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
