"""Pacing and stopping: a rate limit for what commands send, and Ctrl-C that lets the step in hand finish.

A command's unit of work (send a batch, then delete what was sent) must not be cut in half, or a message
could be moved twice. The first Ctrl-C (or SIGTERM) only asks the command to stop after that unit; a
second one interrupts at once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

SLEEP_SLICE_S = 0.1
"""A wait checks this often whether a stop was asked for."""


class RateLimit:
    """At most `per_second` units on average; `wait(n)` sleeps until n more may go (or a stop is asked)."""

    def __init__(self, per_second: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_second <= 0:
            raise ValueError(f"the rate must be positive, got {per_second}")
        self.per_second = per_second
        self._clock = clock
        self._next = clock()

    def wait(self, units: int = 1, stop: StopRequested | None = None) -> None:
        while (now := self._clock()) < self._next:
            if stop is not None and stop.requested:
                return
            time.sleep(min(SLEEP_SLICE_S, self._next - now))
        self._next = max(self._next, now) + units / self.per_second


class StopRequested:
    """Context manager: SIGINT/SIGTERM set `requested` instead of raising; a second signal raises
    KeyboardInterrupt. The previous handlers come back on exit."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequested:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
