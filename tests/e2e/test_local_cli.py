"""`python -m local caption|serve`: the offline pipeline end to end with the demo model, as a user runs it.

The pipeline runs in a child process: the function reads its environment and loads the model at
import, which must not leak into this test process. (Its parts: tests/tools/test_local_parts.py.)
"""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from captioning.component.settings import DEFAULT_IMAGE_SUFFIXES
from models.shapes import demo_images, draw, encode, random_spec
from ops import serve_state
from tests.conftest import ServeProcess, run_local, wait_for_line

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO_ROOT / "samples" / "images"
SAMPLE_CAPTIONS = REPO_ROOT / "samples" / "captions.json"
HELD_OUT_SEED = 20_240_611  # not a seed the training script draws from
HELD_OUT_COUNT = 50


SKIPPED_NAMES = ["icon.ico", "holiday.Jpg", "no-suffix"]  # the deployed keySuffixes never deliver these


# --- the main job: caption --json with the demo model -----------------------------------------------


SPECIAL_NAMES = ["red flower.png", "a+b=c.png", "100% café ☕.png", "sub dir/naïve + plus.png"]


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `caption --json` run over the samples, a held-out spec draw, odd keys and a non-image."""
    folder = tmp_path_factory.mktemp("uploads")
    expected: dict[str, str] = {}
    for index, image in enumerate(demo_images(HELD_OUT_SEED, HELD_OUT_COUNT)):
        key = f"held-out/{index:03d}{image.extension}"
        (folder / key).parent.mkdir(exist_ok=True)
        (folder / key).write_bytes(image.data)
        expected[key] = image.caption
    rng = random.Random(HELD_OUT_SEED + 1)  # noqa: S311  test data
    for name in SPECIAL_NAMES:
        spec = random_spec(rng)
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(encode(draw(spec), "PNG"))
        expected[name] = spec.caption
    (folder / "notes.jpg").write_text("shopping list: eggs, milk\n")
    sample = (SAMPLES_DIR / "red circle.png").read_bytes()
    for name in SKIPPED_NAMES:
        (folder / name).write_bytes(sample)
    result = run_local("caption", str(SAMPLES_DIR), str(folder), "--json", "--verbose")
    return {"result": result, "expected": expected, "folder": folder}


def _by_key(caption_run: dict[str, Any]) -> dict[str, dict[str, str]]:
    result = caption_run["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout)  # stdout holds the JSON array and nothing else
    return {row["key"]: row for row in rows}


def test_every_upload_appears_exactly_once_with_a_status(caption_run: dict[str, Any]) -> None:
    rows = json.loads(caption_run["result"].stdout)
    uploaded = sorted(path.name for path in SAMPLES_DIR.iterdir() if not path.name.startswith(".")) + sorted(
        path.relative_to(caption_run["folder"]).as_posix()
        for path in caption_run["folder"].rglob("*")
        if path.is_file()
    )
    assert sorted(row["key"] for row in rows) == sorted(uploaded)
    detail = {"captioned": "caption", "failed": "error", "skipped": "reason"}
    for row in rows:
        assert set(row) == {"key", "status", detail[row["status"]]}


def test_samples_get_the_captions_listed_in_captions_json(caption_run: dict[str, Any]) -> None:
    rows = _by_key(caption_run)
    listed = json.loads(SAMPLE_CAPTIONS.read_text())
    assert listed, "samples/captions.json lists no samples"
    assert {name: rows[name].get("caption") for name in listed} == listed


def test_held_out_spec_draws_score_at_least_98_percent(caption_run: dict[str, Any]) -> None:
    rows = _by_key(caption_run)
    held_out = {
        key: caption for key, caption in caption_run["expected"].items() if key.startswith("held-out/")
    }
    correct = sum(1 for key, caption in held_out.items() if rows[key].get("caption") == caption)
    assert correct / len(held_out) >= 0.98, f"{correct}/{len(held_out)} exact captions"


def test_keys_with_spaces_plus_percent_and_unicode_round_trip(caption_run: dict[str, Any]) -> None:
    rows = _by_key(caption_run)
    for name in SPECIAL_NAMES:
        assert rows[name]["status"] == "captioned", rows[name]
        assert rows[name]["caption"] == caption_run["expected"][name]


def test_a_non_image_is_failed_with_a_reason(caption_run: dict[str, Any]) -> None:
    row = _by_key(caption_run)["notes.jpg"]
    assert row["status"] == "failed"
    assert "not an image" in row["error"]


def test_files_the_deployed_filters_would_not_deliver_are_skipped_with_the_reason(
    caption_run: dict[str, Any],
) -> None:
    rows = _by_key(caption_run)
    for name in SKIPPED_NAMES:
        assert rows[name]["status"] == "skipped", rows[name]
        assert rows[name]["reason"].startswith("not delivered as deployed: keys must end with .jpg .jpeg")
        assert rows[name]["reason"].endswith("--all-keys captions it anyway")
    assert "3 skipped (key filters; --all-keys captions them)" in caption_run["result"].stderr


def test_the_demo_model_says_it_only_knows_the_shapes_spec(caption_run: dict[str, Any]) -> None:
    stderr = " ".join(caption_run["result"].stderr.split())
    assert "the demo model only knows the shapes spec" in stderr
    assert (
        "python -m captioning.preparation --model-id nlpconnect/vit-gpt2-image-captioning --output DIR"
        in stderr
    )


def test_all_keys_captions_what_the_filters_would_skip(tmp_path: Path) -> None:
    (tmp_path / "icon.ico").write_bytes((SAMPLES_DIR / "red circle.png").read_bytes())
    result = run_local("caption", str(tmp_path / "icon.ico"), "--json", "--all-keys")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == [
        {"key": "icon.ico", "status": "captioned", "caption": "a red circle on a white background"}
    ]


def test_stdout_is_the_json_array_and_nothing_else(caption_run: dict[str, Any]) -> None:
    stdout = caption_run["result"].stdout
    rows = json.loads(stdout)
    assert stdout == json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    assert '"level"' in caption_run["result"].stderr  # --verbose: the function's JSON log lines, on stderr


def test_the_table_has_a_row_per_file_with_its_caption_and_nothing_else_on_stdout() -> None:
    result = run_local("caption", str(SAMPLES_DIR))
    assert result.returncode == 0, result.stderr[-2000:]
    listed = json.loads(SAMPLE_CAPTIONS.read_text())
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "key" in line)
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")] == [
        "key",
        "status",
        "caption or error",
        "latency",
    ]
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == len(listed)
    for row, (name, caption) in zip(rows, listed.items(), strict=True):
        cells = [cell.strip() for cell in row.strip("│ ").split("│")]
        assert cells[:3] == [name, "captioned", caption]
        assert cells[3].endswith(" s")
    assert all(line[0] in "┏┃┡│└" for line in lines), result.stdout  # table lines only
    assert f"{len(listed)} captioned, 0 failed, {len(listed)} uploaded;" in result.stderr


# --- serve: starts, captions what arrives, stops on Ctrl-C -------------------------------------------


def test_serve_prints_how_to_use_it_captions_uploads_shows_dead_letters_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "serve.json"
    serve = ServeProcess(state_file)
    try:
        endpoint = wait_for_line(serve.stdout, "endpoint", 180).split()[-1]
        bucket = wait_for_line(serve.stdout, "bucket", 5).split()[-1]
        table = wait_for_line(serve.stdout, "table", 5).split()[-1]
        dead_letter_queue = wait_for_line(serve.stdout, "dead-letter queue", 5).split()[-1]
        copy_line = wait_for_line(serve.stdout, " s3 cp ", 5)
        assert f"aws --endpoint-url {endpoint} s3 cp" in copy_line and f"s3://{bucket}/" in copy_line
        assert f"--table-name {table}" in wait_for_line(serve.stdout, "dynamodb get-item", 5)
        read_dead_letters = wait_for_line(serve.stdout, "sqs receive-message", 5)
        assert (
            f"aws --endpoint-url {endpoint} sqs receive-message --queue-url {dead_letter_queue}"
            in read_dead_letters
        )

        state = serve_state.read(state_file)
        assert state == {
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "bucket": bucket,
            "table": table,
            "queue_url": state["queue_url"],
            "dead_letter_queue_url": dead_letter_queue,
            "trigger": "queue",
            "key_prefix": "",
            "key_suffixes": list(DEFAULT_IMAGE_SUFFIXES),
            "pid": serve.process.pid,
        }

        image = next(demo_images(7, 1))
        serve.client("s3", endpoint).put_object(Bucket=bucket, Key="dropped in.png", Body=image.data)
        captioned = wait_for_line(serve.stdout, "dropped in.png", 60)
        assert captioned.startswith("captioned") and image.caption in captioned

        # A parked event gets a line, and stays in the dead-letter queue for anyone to read.
        sqs = serve.client("sqs", endpoint)
        sqs.send_message(QueueUrl=dead_letter_queue, MessageBody="{not json")
        parked = wait_for_line(serve.stdout, "dead-lettered", 30)
        assert parked.startswith("dead-lettered message ") and "message body is not JSON" in parked
        time.sleep(2.5)  # two more watch rounds
        received = sqs.receive_message(QueueUrl=dead_letter_queue, WaitTimeSeconds=1).get("Messages", [])
        assert [message["Body"] for message in received] == ["{not json"]

        assert serve.stop() == 0
        assert not state_file.exists()
    finally:
        serve.kill()


def test_serve_survives_its_table_being_deleted_and_says_so(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path / "serve.json")
    try:
        endpoint = wait_for_line(serve.stdout, "endpoint", 180).split()[-1]
        table = wait_for_line(serve.stdout, "table", 5).split()[-1]
        serve.client("dynamodb", endpoint).delete_table(TableName=table)
        message = wait_for_line(serve.stderr, "no longer exists", 30)
        assert f"the captions table {table} no longer exists" in message
        time.sleep(2.5)
        assert serve.process.poll() is None  # still serving
        assert serve.client("s3", endpoint).list_buckets()["Buckets"]  # the endpoint answers
        assert serve.stop() == 0
        stderr = "".join(serve.stderr.queue)
        assert "Traceback" not in stderr and stderr.count("no longer exists") == 0  # reported once
    finally:
        serve.kill()


def test_ops_runs_from_any_directory_and_local_from_the_repository_root(tmp_path: Path) -> None:
    # ops is part of the installed package (pip install captioning[ops]); the local pipeline is a
    # repository tool, run from the repository root (no path trick puts the repository on sys.path).
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    for package, directory in (("ops", tmp_path), ("local", REPO_ROOT)):
        result = subprocess.run(  # noqa: S603 (our own interpreter and module names)
            [sys.executable, "-m", package, "--help"],
            cwd=directory,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"python -m {package}" in result.stdout


def test_serve_in_eventbridge_mode_captions_uploads_publishes_caption_events_and_backfills(
    tmp_path: Path,
) -> None:
    """`serve --trigger eventbridge --caption-events --key-prefix photos/`: moto's S3 -> EventBridge ->
    rule (the component's pattern) -> upload queue; caption events reach their rule's queue; `ops
    backfill --local` finds the upload queue and captions what was put while nothing listened."""
    state_file = tmp_path / "serve.json"
    serve = ServeProcess(
        state_file, "--trigger", "eventbridge", "--caption-events", "--key-prefix", "photos/"
    )
    try:
        endpoint = wait_for_line(serve.stdout, "endpoint", 180).split()[-1]
        bucket = wait_for_line(serve.stdout, "bucket", 5).split()[-1]
        assert "eventbridge" in wait_for_line(serve.stdout, "trigger", 5)
        events_queue = wait_for_line(serve.stdout, "caption events", 5).split()[-1]
        state = serve_state.read(state_file)
        assert state["trigger"] == "eventbridge" and state["key_prefix"] == "photos/"

        s3 = serve.client("s3", endpoint)
        image = next(demo_images(8, 1))
        s3.put_object(Bucket=bucket, Key="photos/a+b c.png", Body=image.data)
        s3.put_object(Bucket=bucket, Key="elsewhere/skipped.png", Body=image.data)  # outside the prefix
        captioned = wait_for_line(serve.stdout, "photos/a+b c.png", 60)
        assert captioned.startswith("captioned") and image.caption in captioned

        received = serve.client("sqs", endpoint).receive_message(QueueUrl=events_queue, WaitTimeSeconds=5)
        (event,) = [json.loads(m["Body"]) for m in received.get("Messages", [])]
        assert (event["detail-type"], event["detail"]["key"]) == ("Image Captioned", "photos/a+b c.png")
        assert event["detail"]["caption"] == image.caption

        # Put while the rule is disabled: EventBridge delivers nothing (moto ignores a rule's state, so
        # the rule is removed instead), and only a backfill gets it captioned.
        events = serve.client("events", endpoint)
        events.remove_targets(Rule="captioning-local-uploads", Ids=["upload-queue"])
        other = next(demo_images(9, 1))
        s3.put_object(Bucket=bucket, Key="photos/missed.png", Body=other.data)
        backfill = subprocess.run(  # noqa: S603  our own CLI
            [sys.executable, "-m", "ops", "backfill", "--local", "--json"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "CAPTIONING_LOCAL_STATE": str(state_file)},
            timeout=120,
            check=False,
        )
        assert backfill.returncode == 0, backfill.stderr[-2000:]
        summary = json.loads(backfill.stdout)
        assert (summary["mode"], summary["prefix"], summary["listed"]) == ("queue", "photos/", 2)
        assert (summary["already_done"], summary["sent"]) == (1, 1)
        assert other.caption in wait_for_line(serve.stdout, "photos/missed.png", 60)
        assert serve.stop() == 0
    finally:
        serve.kill()
