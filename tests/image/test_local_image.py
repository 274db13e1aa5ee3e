"""`python -m local caption|serve --function-image TAG`: the real function image under the Lambda runtime
emulator gives the same output and the same accounting as the in-process function.

Needs Docker and the built image: an image test, run by `make image-test` (which builds it), not by
`make test`. The tag is the first of $CAPTIONING_IMAGE_TAGS (default captioning-function:local).
"""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ServeProcess, run_local, wait_for_line

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO_ROOT / "samples" / "images"
TAG = (os.environ.get("CAPTIONING_IMAGE_TAGS") or "captioning-function:local").split(",")[0].strip()


def caption(*args: str) -> subprocess.CompletedProcess[str]:
    return run_local("caption", *args, "--json", timeout=600)


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("uploads")
    for sample in SAMPLES_DIR.iterdir():
        (folder / sample.name).write_bytes(sample.read_bytes())
    (folder / "notes.jpg").write_text("shopping list: eggs, milk\n")
    (folder / "icon.ico").write_bytes((SAMPLES_DIR / "red circle.png").read_bytes())
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
    assert by_key["icon.ico"]["status"] == "skipped"
    assert f"{len(listed)} captioned, 1 failed, {len(listed) + 1} uploaded, 1 skipped" in in_image.stderr


def test_an_unknown_image_is_a_clear_error(uploads: Path) -> None:
    result = caption(str(uploads / "red circle.png"), "--function-image", "no-such-image:anywhere")
    assert result.returncode == 1 and result.stdout == ""
    assert "cannot run the function image no-such-image:anywhere" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_through_the_image_captions_an_upload(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path / "serve.json", "--function-image", TAG)
    try:
        endpoint = wait_for_line(serve.stdout, "endpoint", 300).split()[-1]
        bucket = wait_for_line(serve.stdout, "bucket", 5).split()[-1]
        image = (SAMPLES_DIR / "red circle.png").read_bytes()
        serve.client("s3", endpoint).put_object(Bucket=bucket, Key="dropped in.png", Body=image)
        captioned = wait_for_line(serve.stdout, "dropped in.png", 60)
        assert captioned.split() == [
            "captioned",
            "dropped",
            "in.png",
            *"a red circle on a white background".split(),
        ]
        assert serve.stop() == 0
    finally:
        serve.kill()
