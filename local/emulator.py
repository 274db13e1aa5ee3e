"""moto's server on 127.0.0.1: real AWS APIs over HTTP, so the function, the AWS CLI and any SDK can
talk to it through one endpoint. The resources in it are made by local/resources.py."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"

logger = logging.getLogger(__name__)


class EmulatorError(RuntimeError):
    """The emulator cannot start; the message says why and what to do."""


def check_port_free(port: int) -> None:
    """Raise EmulatorError when `port` (not 0, which means any free port) cannot be listened on."""
    if port == 0:
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
    try:
        probe.bind((HOST, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise EmulatorError(
                f"port {port} on {HOST} is already in use (another `python -m local serve`?); "
                "pick another with --port N, or leave --port out for any free port"
            ) from None
        raise EmulatorError(f"cannot listen on {HOST}:{port}: {error.strerror or error}") from None
    finally:
        probe.close()


class Emulator:
    """Context manager: moto's server on `port` (0: any free one) with an empty account; yields its URL."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._restore_clock: Callable[[], None] = lambda: None
        self.endpoint_url = ""

    def __enter__(self) -> str:
        # moto is slow to import: only once the arguments are known good.
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per API call otherwise
        check_port_free(self._port)
        try:
            # Made here, not in the serving thread: werkzeug exits the thread on a bind error, and a
            # caller waiting for the server would wait forever (moto's ThreadedMotoServer does).
            self._server = make_server(
                HOST,
                self._port,
                DomainDispatcherApplication(create_backend_app),
                threaded=True,
                request_handler=MotoRequestHandler,
            )
        except (OSError, SystemExit) as error:
            raise EmulatorError(f"cannot listen on {HOST}:{self._port}: {error}") from None
        self._restore_clock = _use_fast_sqs_clock()
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.endpoint_url = f"http://{host}:{port}"
        # moto keeps its state per process, not per server: start from an empty account.
        reset = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310  loopback http
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310  our own loopback server
        return self.endpoint_url

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._restore_clock()


def _use_fast_sqs_clock() -> Callable[[], None]:
    """Give moto's SQS a cheaper "now"; returns how to put moto's own back.

    moto checks every queued message's visibility on each ReceiveMessage, some thirty times per
    call, and its clock helper builds datetimes (so freezegun can move time). With a thousand
    uploads queued that is about a second per receive and throttles the whole pipeline; the same
    epoch time from time.time() makes it 15-20x faster. Calls with an explicit datetime keep moto's code.
    """
    import moto.sqs.models as sqs_models

    original_seconds, original_millis = sqs_models.unix_time, sqs_models.unix_time_millis

    def seconds(dt: Any = None) -> float:
        return time.time() if dt is None else original_seconds(dt)

    def millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else original_millis(dt)

    sqs_models.unix_time, sqs_models.unix_time_millis = seconds, millis

    def restore() -> None:
        sqs_models.unix_time, sqs_models.unix_time_millis = original_seconds, original_millis

    return restore
