"""Run the function image as Lambda would, locally: the container under the Runtime Interface Emulator (RIE).

    with FunctionContainer("captioning-function:local", environment) as function:
        result = function.invoke(event)          # the handler's return value
        function.init_duration_ms                # from the RIE's `INIT REPORT` line

The container shares the host's network (so the function reaches a local moto server on 127.0.0.1) with the
RIE (and the Runtime API it serves the runtime) bound to 127.0.0.1 on free ports, so containers can run side
by side; its file system is read-only but /tmp, like Lambda's. It is removed when the block ends, whatever
happens. Works with AWS's Lambda base images and the stand-in (imagebuild/base): both have the RIE at
/usr/local/bin/aws-lambda-rie and the runtime at /var/runtime/bootstrap.
"""
# ruff: noqa: S603  (runs the docker CLI with argument lists built here)

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from types import TracebackType
from typing import Any

from imagebuild.docker_engine import EngineError, docker_cli

RIE = "/usr/local/bin/aws-lambda-rie"
RUNTIME_BOOTSTRAP = "/var/runtime/bootstrap"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
DEFAULT_TIMEOUT_S = 300
START_TIMEOUT_S = 60
_INIT_REPORT = re.compile(r"INIT REPORT\W*(?:durationMs:|Init Duration:)\s*([0-9.]+)")
"""The RIE's `INIT REPORT(durationMs: 7500.11)` line (Lambda's log: `INIT REPORT Init Duration: ...`)."""


class FunctionContainerError(RuntimeError):
    """The container could not be started or did not answer; the message carries its logs' tail."""


class FunctionError(RuntimeError):
    """The function failed an invocation (Lambda's "Unhandled" error); `.error` is its error object."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}")
        self.error = error


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        client = docker_cli()
    except EngineError as missing:
        raise FunctionContainerError(str(missing)) from missing
    return subprocess.run([client, *args], capture_output=True, text=True, check=False, timeout=timeout)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def image_handler(image_tag: str) -> str:
    """The handler the image names in its CMD (e.g. captioning.function.main.handler)."""
    result = _docker("image", "inspect", "--format", "{{json .Config.Cmd}}", image_tag)
    if result.returncode != 0:
        raise FunctionContainerError(
            f"image {image_tag!r} not found: build it first (make image){_tail(result.stderr)}"
        )
    command = json.loads(result.stdout.strip() or "null") or []
    if len(command) != 1:
        raise FunctionContainerError(f"image {image_tag!r} has no single-handler CMD: {command}")
    return command[0]


def _tail(text: str, lines: int = 30) -> str:
    text = text.strip()
    return "\n" + "\n".join(text.splitlines()[-lines:]) if text else ""


class FunctionContainer:
    """The function image running under the RIE on 127.0.0.1; a context manager."""

    def __init__(
        self,
        image_tag: str,
        environment: dict[str, str],
        *,
        timeout_s: int = DEFAULT_TIMEOUT_S,
        memory_mb: int | None = None,
        cpus: float | None = None,
    ) -> None:
        self.image_tag = image_tag
        self.environment = dict(environment)
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.port: int | None = None
        self.runtime_api_port: int | None = None
        self.container_id: str | None = None
        self._final_logs: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{INVOKE_PATH}"

    def __enter__(self) -> FunctionContainer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _run_arguments(self, handler: str) -> list[str]:
        environment = {
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.timeout_s),
            **({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb)} if self.memory_mb else {}),
            **self.environment,
            "_HANDLER": handler,
        }
        if "AWS_REGION" in environment:  # the RIE does not hand AWS_REGION on to the function; this it does
            environment.setdefault("AWS_DEFAULT_REGION", environment["AWS_REGION"])
        arguments = ["run", "--detach", "--network", "host", "--read-only", "--tmpfs", "/tmp:rw,exec"]  # noqa: S108
        if self.memory_mb:
            arguments += ["--memory", f"{self.memory_mb}m", "--memory-swap", f"{self.memory_mb}m"]
        if self.cpus:
            arguments += ["--cpus", str(self.cpus)]
        for name, value in environment.items():
            arguments += ["--env", f"{name}={value}"]
        arguments += ["--entrypoint", RIE, self.image_tag]
        # Both of the RIE's servers on free loopback ports: its Runtime API defaults to 127.0.0.1:9001,
        # which a second container on the host network could not bind.
        arguments += ["--runtime-interface-emulator-address", f"127.0.0.1:{self.port}"]
        arguments += [
            "--runtime-api-address",
            f"127.0.0.1:{self.runtime_api_port}",
            RUNTIME_BOOTSTRAP,
            handler,
        ]
        return arguments

    def start(self) -> None:
        handler = image_handler(self.image_tag)
        self.port, self.runtime_api_port = free_port(), free_port()
        result = _docker(*self._run_arguments(handler))
        if result.returncode != 0:
            raise FunctionContainerError(f"docker run {self.image_tag} failed:{_tail(result.stderr)}")
        self.container_id = result.stdout.strip()
        try:
            self._wait_until_listening()
        except BaseException:
            self.stop()
            raise

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.settimeout(0.5)
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if not self._running():
                raise FunctionContainerError(
                    f"the container exited before the RIE listened:{_tail(self.logs())}"
                )
            time.sleep(0.1)
        raise FunctionContainerError(f"the RIE did not listen on 127.0.0.1:{self.port}:{_tail(self.logs())}")

    def _running(self) -> bool:
        result = _docker("inspect", "--format", "{{.State.Running}}", self.container_id or "")
        return result.stdout.strip() == "true"

    def invoke(self, event: dict[str, Any]) -> Any:
        """Invoke the function with `event`; its return value, or FunctionError when it failed."""
        if self.container_id is None:
            raise FunctionContainerError("the container is not running: use `with FunctionContainer(...)`")
        request = urllib.request.Request(  # noqa: S310  a fixed http://127.0.0.1 URL
            self.url, data=json.dumps(event).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s + 30) as response:  # noqa: S310
                body = response.read()
                function_error = response.headers.get("X-Amz-Function-Error")
        except urllib.error.HTTPError as error:
            raise FunctionContainerError(
                f"the RIE answered {error.code}: {error.read().decode(errors='replace')}{_tail(self.logs())}"
            ) from error
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise FunctionContainerError(
                f"no answer from the function: {error}{_tail(self.logs())}"
            ) from error
        result = json.loads(body) if body.strip() else None
        if function_error or (
            isinstance(result, dict) and {"errorMessage", "errorType"} <= result.keys() and len(result) <= 4
        ):
            raise FunctionError(result if isinstance(result, dict) else {"errorMessage": str(result)})
        return result

    def logs(self) -> str:
        """Everything the container (RIE and function) wrote so far."""
        if self._final_logs is not None:
            return self._final_logs
        if self.container_id is None:
            return ""
        result = _docker("logs", self.container_id)
        return result.stdout + result.stderr

    @property
    def init_duration_ms(self) -> float | None:
        """The INIT phase's duration from the RIE's `INIT REPORT` line (None before the first invocation)."""
        match = _INIT_REPORT.search(self.logs())
        return float(match.group(1)) if match else None

    def stop(self) -> None:
        """Remove the container (its logs stay readable through `.logs()`)."""
        if self.container_id is None:
            return
        try:
            self._final_logs = self.logs()
        finally:
            _docker("rm", "--force", self.container_id)
            self.container_id = None
