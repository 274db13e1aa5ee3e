"""The SnapStart runtime hooks in-process (captioning/function/snapstart.py): registered at INIT and never
called without SnapStart; called as the runtime calls them, the warm-up runs once before the snapshot and
makes no AWS call, and after the restore the invocation runs on new clients with unchanged captions.

The runtime's side is awslambdaric 4.2.2's (bootstrap.on_init_complete, lambda_runtime_hooks_runner):
before-snapshot hooks popped from snapshot_restore_py's registry (last registered first), the snapshot,
then the after-restore hooks in registration order, then the invocation loop. `run_like_the_runtime`
does the same with the registry; tests/image/test_snapstart.py has the real runtime call them.
"""
# ruff: noqa: S101, S311  (plain asserts for pytest; `random` is what the restore hook reseeds)

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import snapshot_restore_py
from PIL import Image

from captioning.function import snapstart
from captioning.function.processing import CaptionHandler
from tests.function.conftest import ROOT, Deployment, FakeContext, noise_png


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any]]:
    """snapshot_restore_py's two registries, empty for this test (register_* append to the module's
    lists, get_* return them: the runtime reads the same objects)."""
    before: list[Any] = []
    after: list[Any] = []
    monkeypatch.setattr(snapshot_restore_py, "_before_snapshot_registry", before)
    monkeypatch.setattr(snapshot_restore_py, "_after_restore_registry", after)
    return before, after


def run_like_the_runtime(between: Callable[[], None] = lambda: None) -> None:
    """What awslambdaric does once the handler module is imported, with SnapStart on."""
    hooks = snapshot_restore_py.get_before_snapshot()
    while hooks:
        func, args, kwargs = hooks.pop()
        func(*args, **kwargs)
    between()  # the snapshot is taken; later, an environment is restored from it
    for func, args, kwargs in snapshot_restore_py.get_after_restore():
        func(*args, **kwargs)


class AwsCalls:
    """The operations each client sent (botocore's before-send), by the client's id."""

    def __init__(self) -> None:
        self.sent: dict[int, list[str]] = {}

    def watch(self, *clients: Any) -> None:
        for client in clients:
            calls = self.sent.setdefault(id(client), [])

            def record(calls: list[str] = calls, *, event_name: str, **kwargs: Any) -> None:
                calls.append(event_name.rsplit(".", 1)[-1])  # before-send.s3.GetObject

            client.meta.events.register("before-send", record)

    def of(self, client: Any) -> list[str]:
        return self.sent.get(id(client), [])


@pytest.fixture
def log_lines(
    function: CaptionHandler, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], list[dict[str, Any]]]:
    stream = io.StringIO()
    monkeypatch.setattr(function.logger.registered_handler, "stream", stream)
    return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def counted_captions(function: CaptionHandler) -> Iterator[mock.MagicMock]:
    with mock.patch.object(function.captioner, "caption", wraps=function.captioner.caption) as caption:
        yield caption


def test_registering_adds_both_hooks_and_calls_neither(
    function: CaptionHandler, registry: tuple[list[Any], list[Any]], counted_captions: mock.MagicMock
) -> None:
    """SnapStart off: the runtime never reads the registry, so registering must do nothing else."""
    clients = (function.s3_client, function.dynamodb_client)
    hooks = snapstart.register(function)
    before, after = registry
    assert before == [(hooks.before_snapshot, (), {})]
    assert after == [(hooks.after_restore, (), {})]
    assert counted_captions.call_count == 0
    assert (hooks.warm_up_ms, hooks.restores) == (None, 0)
    assert (function.s3_client, function.dynamodb_client) == clients


def test_hooks_run_in_order_the_warm_up_once_before_the_snapshot_with_no_aws_call(
    function: CaptionHandler,
    registry: tuple[list[Any], list[Any]],
    counted_captions: mock.MagicMock,
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    calls = AwsCalls()
    calls.watch(function.s3_client, function.dynamodb_client)
    estimate = function.caption_time.ms_per_image
    hooks = snapstart.register(function)
    at_snapshot: dict[str, Any] = {}

    def snapshot() -> None:
        at_snapshot.update(captions=counted_captions.call_count, restores=hooks.restores)

    run_like_the_runtime(between=snapshot)

    assert at_snapshot == {"captions": 1, "restores": 0}  # the warm-up before, the restore after
    assert counted_captions.call_count == 1 and hooks.restores == 1
    (images,) = counted_captions.call_args.args
    assert [image.size for image in images] == [snapstart.WARM_UP_IMAGE_SIZE]
    assert hooks.warm_up_ms is not None and hooks.warm_up_ms > 0
    assert len(calls.sent) == 2 and all(not sent for sent in calls.sent.values())
    assert function.caption_time.ms_per_image == estimate  # the warm-up teaches the estimate nothing
    messages = [line["message"] for line in log_lines()]
    assert messages == ["warm-up caption before the snapshot", "environment restored from a snapshot"]


def test_after_the_restore_the_invocation_runs_on_new_clients_with_unchanged_captions(
    aws: Deployment,
    function: CaptionHandler,
    registry: tuple[list[Any], list[Any]],
    tiny_model_dir: Path,
) -> None:
    image = noise_png(70)
    expected = function.captioner.caption([Image.open(io.BytesIO(image)).convert("RGB")])[0]
    before_snapshot = (function.s3_client, function.dynamodb_client)
    calls = AwsCalls()
    calls.watch(*before_snapshot)
    snapstart.register(function)

    run_like_the_runtime()
    after_restore = (function.s3_client, function.dynamodb_client)
    calls.watch(*after_restore)
    message = aws.upload("restored.png", image)
    function.handler(aws.sqs_event(message), FakeContext())

    assert all(new is not old for new, old in zip(after_restore, before_snapshot, strict=True))
    assert [calls.of(client) for client in before_snapshot] == [[], []]
    assert calls.of(function.s3_client) == ["GetObject"]
    assert "PutItem" in calls.of(function.dynamodb_client)
    item = aws.item("restored.png")
    assert item is not None and (item["status"], item["caption"]) == ("captioned", expected)


def test_after_the_restore_random_draws_from_fresh_entropy(
    function: CaptionHandler, registry: tuple[list[Any], list[Any]]
) -> None:
    """Environments restored from one snapshot share its `random` state: botocore's retry jitter would
    draw the same sequence in all of them."""
    random.seed(2112)
    snapshot_sequence = [random.random() for _ in range(4)]
    random.seed(2112)  # the state the snapshot holds
    snapstart.register(function)
    run_like_the_runtime()
    assert [random.random() for _ in range(4)] != snapshot_sequence


INIT_SCRIPT = """
import json, sys
import snapshot_restore_py
import captioning.function.main as main

registered = {
    "before": [f.__qualname__ for f, _, _ in snapshot_restore_py.get_before_snapshot()],
    "after": [f.__qualname__ for f, _, _ in snapshot_restore_py.get_after_restore()],
}
hooks = main.snapstart_hooks
report = {"registered": registered, "warm_up_ms": hooks.warm_up_ms, "restores": hooks.restores}
print("REPORT", json.dumps(report), file=sys.stderr)
"""


@pytest.mark.parametrize("initialization_type", [None, "on-demand", "snap-start"])
def test_importing_main_registers_the_hooks_logs_the_init_and_runs_no_hook(
    tiny_model_dir: Path, initialization_type: str | None
) -> None:
    """In a fresh interpreter, as Lambda's INIT: the two hooks registered, neither run (the runtime
    runs them), one INIT log line with its initialization type (none outside Lambda)."""
    env = {
        "PATH": os.environ["PATH"],
        "TABLE_NAME": "captions",
        "MODEL_DIR": str(tiny_model_dir),
        "RUNTIME": "torch",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        **({"AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type} if initialization_type else {}),
    }
    result = subprocess.run(  # noqa: S603  our own interpreter and script
        [sys.executable, "-c", INIT_SCRIPT], env=env, capture_output=True, text=True, cwd=ROOT, timeout=180
    )
    assert result.returncode == 0, result.stderr
    (report,) = [json.loads(line[7:]) for line in result.stderr.splitlines() if line.startswith("REPORT ")]
    assert report == {
        "registered": {
            "before": ["SnapStartHooks.before_snapshot"],
            "after": ["SnapStartHooks.after_restore"],
        },
        "warm_up_ms": None,
        "restores": 0,
    }
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    (init,) = [line for line in lines if line["message"] == "function initialised"]
    assert init["load_ms"] > 0 and init["runtime"] == "torch" and init["model"] == tiny_model_dir.name
    assert init.get("initialization_type") == initialization_type
    assert [line["message"] for line in lines] == ["function initialised"]
