"""The whole local pipeline as one context manager: emulator, function init, event source mapping."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType

from local.emulator import Deployment, Emulator
from local.function import DEMO_MODEL_DIR, LambdaHandler, load_function
from local.results import ResultCollector
from local.workers import BatchHook, EventSourceMapping

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineSettings:
    """How the local deployment is sized; the defaults suit `caption`."""

    model_dir: Path = DEMO_MODEL_DIR
    workers: int = 1
    batch_size: int = 10
    # The function timeout, and the queue's visibility timeout (AWS requires it to be at least the
    # function timeout; we keep them equal so a failed message comes back as soon as allowed).
    # None: 30 s, or 3 s a message for bigger batches.
    visibility_timeout_s: int | None = None
    max_receive_count: int = 3
    log_level: str = "WARNING"
    port: int = 0
    on_batch: BatchHook | None = None
    # Called with the function's module after its init, before any worker starts; returns the
    # handler the workers invoke (the soak wraps it and hooks faults into the module's clients).
    prepare: Callable[[ModuleType], LambdaHandler] | None = None

    @property
    def function_timeout_s(self) -> int:
        if self.visibility_timeout_s is not None:
            return self.visibility_timeout_s
        return max(30, 3 * self.batch_size)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError(
                f"--batch-size must be 1-10000 (SQS event source mapping limit), got {self.batch_size}"
            )


class LocalPipeline:
    """Starts moto, creates the resources, runs the function's init and starts the workers."""

    def __init__(self, settings: PipelineSettings) -> None:
        self.settings = settings
        self._emulator = Emulator(
            port=settings.port,
            visibility_timeout_s=settings.function_timeout_s,
            max_receive_count=settings.max_receive_count,
        )
        self.deployment: Deployment
        self.function_module: ModuleType
        self.mapping: EventSourceMapping
        self.collector: ResultCollector

    def __enter__(self) -> LocalPipeline:
        self.deployment = self._emulator.__enter__()
        try:
            logger.info("loading the function (model %s)", self.settings.model_dir)
            self.function_module, self.retry_reasons = load_function(
                self.deployment, self.settings.model_dir, log_level=self.settings.log_level
            )
            logger.info("function initialised")
            handler = self.function_module.handler
            if self.settings.prepare is not None:
                handler = self.settings.prepare(self.function_module)
            self.mapping = EventSourceMapping(
                self.deployment,
                handler,
                workers=self.settings.workers,
                batch_size=self.settings.batch_size,
                function_timeout_s=self.settings.function_timeout_s,
                on_batch=self.settings.on_batch,
            )
            self.collector = ResultCollector(self.deployment, self.retry_reasons.by_key)
            self.mapping.start()
        except BaseException:
            self._emulator.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            # On Ctrl-C do not wait long for a batch in flight; the worker threads are daemons.
            self.mapping.stop(timeout_s=5.0 if exc_type is KeyboardInterrupt else 60.0)
            logger.info("workers stopped")
        finally:
            self._emulator.__exit__(exc_type, exc, traceback)
            logger.info("emulator stopped")
