"""The image's SnapStart hooks run by the image's own runtime, as Lambda runs them (docs/snapstart.md).

The runtime emulator does not do SnapStart: its Runtime API answers 404 to `GET
/2018-06-01/runtime/restore/next`, the call with which the runtime interface client (awslambdaric),
when AWS_LAMBDA_INITIALIZATION_TYPE is "snap-start", says "INIT and before-snapshot hooks done" and
waits to be restored. So the container runs with that variable set, and its runtime talks to the
emulator through `RestoreGate`, a proxy on 127.0.0.1 that forwards every Runtime API call and answers
that one itself, as Lambda does once an environment is restored from the snapshot. Everything in the
container is the image's own: its bootstrap, its runtime interface client calling the hooks registered
in snapshot_restore_py, its handler. What is not emulated: no snapshot is taken (the same process goes
on), nothing is restored on another host, credentials and the network stay the INIT's.
"""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import http.client
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from captioning.aws_events import s3_notification_event, s3_notification_record
from local.function_container import RUNTIME_BOOTSTRAP, FunctionContainer, docker_cli, free_port
from tests.image.conftest import BUCKET, TABLE, function_environment, record

pytestmark = [pytest.mark.image, pytest.mark.slow]

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
EXPECTED = json.loads((SAMPLES / "captions.json").read_text())
RESTORE_NEXT = "/2018-06-01/runtime/restore/next"


class RestoreGate:
    """A Runtime API proxy on 127.0.0.1: every call forwarded to the emulator's Runtime API, except
    RESTORE_NEXT, which calls `on_restore` (the snapshot would be taken now) and then answers 200."""

    def __init__(self, upstream_port: int, on_restore: Callable[[], None]) -> None:
        self.restores = 0
        gate = self

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.path == RESTORE_NEXT:
                    on_restore()
                    gate.restores += 1
                    self._answer(200, [], b"")
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=None)
                headers = {name: value for name, value in self.headers.items() if name.lower() != "host"}
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    payload = response.read()
                except (OSError, http.client.HTTPException):  # the emulator is going away
                    self.close_connection = True
                    return
                passed = [
                    (n, v)
                    for n, v in response.getheaders()
                    if n.lower() not in ("content-length", "connection", "transfer-encoding")
                ]
                self._answer(response.status, passed, payload)
                upstream.close()

            def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _forward

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  the base class's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Forward)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RestoreGate:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class SnapStartContainer(FunctionContainer):
    """The function container whose runtime reaches the emulator through a RestoreGate."""

    def __init__(self, *args: Any, on_restore: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_restore = on_restore
        self.gate: RestoreGate | None = None

    def _run_arguments(self, handler: str) -> list[str]:
        arguments = super()._run_arguments(handler)
        assert arguments[-2:] == [RUNTIME_BOOTSTRAP, handler], arguments[-2:]
        assert self.runtime_api_port is not None
        self.gate = RestoreGate(self.runtime_api_port, self.on_restore).__enter__()
        # The emulator sets AWS_LAMBDA_RUNTIME_API to its own Runtime API: the bootstrap gets the gate's.
        point_at_gate = f"AWS_LAMBDA_RUNTIME_API=127.0.0.1:{self.gate.port} exec {RUNTIME_BOOTSTRAP}"
        return [*arguments[:-2], "/bin/sh", "-c", point_at_gate, handler]

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            if self.gate is not None:
                self.gate.__exit__(None, None, None)
                self.gate = None


def json_lines(logs: str) -> list[dict[str, Any]]:
    lines = []
    for line in logs.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            fields = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(fields, dict):
            lines.append(fields)
    return lines


def messages(logs: str) -> list[str]:
    return [line["message"] for line in json_lines(logs) if "message" in line]


@pytest.fixture(scope="module")
def restored(image_present: str, aws: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The container started with SnapStart's initialization type, its first invocation served (the
    INIT, the before-snapshot hooks, the restore, the after-restore hooks, then the event), and what its
    log said when the restore was asked for."""
    at_restore: dict[str, Any] = {}
    keys = {f"snapstart/{name}": name for name in sorted(EXPECTED)}
    records = []
    for key, name in keys.items():
        aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=(SAMPLES / "images" / name).read_bytes())
        head = aws["s3"].head_object(Bucket=BUCKET, Key=key)
        records.append(s3_notification_record(BUCKET, key, size=head["ContentLength"], etag=head["ETag"]))
    environment = {
        **function_environment(aws["endpoint_url"]),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
    }
    container: SnapStartContainer

    def snapshot() -> None:
        at_restore["messages"] = messages(container.logs())

    container = SnapStartContainer(image_present, environment, memory_mb=3008, on_restore=snapshot)
    with container:
        result = container.invoke(s3_notification_event(records))
        second = container.invoke(s3_notification_event(records))
        assert container.gate is not None
        yield {
            "result": result,
            "second": second,
            "keys": keys,
            "at_restore": at_restore,
            "restores": container.gate.restores,
            "logs": container.logs(),
            "init_duration_ms": container.init_duration_ms,
        }


def test_the_runtime_runs_the_warm_up_after_init_and_before_the_snapshot(
    restored: dict[str, Any], image_tag: str
) -> None:
    assert restored["restores"] == 1
    assert restored["at_restore"]["messages"] == [
        "function initialised",
        "warm-up caption before the snapshot",
    ]
    (warm_up,) = [
        line for line in json_lines(restored["logs"]) if line.get("message", "").startswith("warm-up")
    ]
    record(
        image_tag,
        snapstart_warm_up_ms=warm_up["warm_up_ms"],
        snapstart_init_duration_ms=restored["init_duration_ms"],
    )


def test_after_the_restore_the_hooks_run_before_the_first_invocation(restored: dict[str, Any]) -> None:
    said = messages(restored["logs"])
    assert said.index("environment restored from a snapshot") < said.index("object processed")
    assert said.count("environment restored from a snapshot") == 1
    assert said.count("warm-up caption before the snapshot") == 1  # once, not per invocation


def test_captions_are_unchanged(restored: dict[str, Any], aws: dict[str, Any]) -> None:
    keys = restored["keys"]
    assert restored["result"] == {"captioned": len(keys), "failed": 0, "duplicate": 0}
    assert restored["second"] == {"captioned": 0, "failed": 0, "duplicate": len(keys)}
    for key, name in keys.items():
        item = aws["dynamodb"].get_item(TableName=TABLE, Key={"key": {"S": key}}, ConsistentRead=True)["Item"]
        assert (item["status"]["S"], item["caption"]["S"]) == ("captioned", EXPECTED[name]), key


def test_the_cold_start_metric_and_log_lines_say_restored(restored: dict[str, Any]) -> None:
    lines = json_lines(restored["logs"])
    cold = [line for line in lines if "ColdStart" in line and "_aws" in line]
    assert len(cold) == 1 and cold[0]["initialization_type"] == "snap-start"
    processed = [line for line in lines if line.get("message") == "object processed"]
    assert processed and {line["initialization_type"] for line in processed} == {"snap-start"}
    assert {line["cold_start"] for line in processed} == {True, False}  # the first invocation, then warm


def test_the_image_allows_snapstart_by_label(image_present: str) -> None:
    """Not AWS's Python 3.12+ base (the stand-in, any other): without the label, publishing fails."""
    inspected = subprocess.run(  # noqa: S603  the docker CLI, fixed arguments
        [docker_cli(), "image", "inspect", "--format", "{{json .Config.Labels}}", image_present],
        capture_output=True,
        text=True,
        check=True,
    )
    labels = json.loads(inspected.stdout) or {}
    assert labels.get("com.amazonaws.lambda.feature.snapstart") == "Allow", labels
