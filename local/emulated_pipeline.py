"""The whole emulated pipeline as one context manager: moto's server, the component's resources in it,
the function (in-process, or its image under the runtime emulator), Lambda's event source mapping."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from types import TracebackType

from local.emulator import Emulator
from local.event_source import BatchHook, EventSourceMapping
from local.lambda_runtime import ContainerFunction, InProcessFunction, LambdaHandler
from local.resources import EmulatedResources, create_resources
from local.settings import LocalSettings
from local.tracking import ResultTracker

logger = logging.getLogger(__name__)

PrepareHook = Callable[[InProcessFunction], LambdaHandler]


class EmulatedPipeline:
    """Starts moto, creates the resources, runs the function's init and starts the workers.

    `on_batch` sees every batch a worker receives (the soak sends duplicates from it); `prepare`
    gets the in-process function after its init and returns the handler the workers invoke (the
    soak wraps it and hooks faults into the function's clients).
    """

    def __init__(
        self,
        settings: LocalSettings,
        *,
        on_batch: BatchHook | None = None,
        prepare: PrepareHook | None = None,
    ) -> None:
        if prepare is not None and settings.function_image is not None:
            raise ValueError("faults can only be injected into the in-process function, not an image")
        self.settings = settings
        self._on_batch = on_batch
        self._prepare = prepare
        self._stack = ExitStack()
        self.resources: EmulatedResources
        self.function: InProcessFunction | ContainerFunction
        self.mapping: EventSourceMapping
        self.tracker: ResultTracker

    def __enter__(self) -> EmulatedPipeline:
        settings = self.settings
        with ExitStack() as stack:
            endpoint_url = stack.enter_context(Emulator(settings.port))
            self.resources = create_resources(
                endpoint_url,
                visibility_timeout_s=settings.function_timeout_s,
                max_receive_count=settings.max_receive_count,
                key_filters=settings.filters,
                trigger=settings.trigger,
                caption_events=settings.caption_events,
            )
            if settings.function_image is not None:
                logger.info("starting the function image %s", settings.function_image)
                self.function = stack.enter_context(ContainerFunction(self.resources, settings))
                handler = self.function.handler
            else:
                logger.info("loading the function (model %s)", settings.model_dir)
                in_process = stack.enter_context(InProcessFunction(self.resources, settings))
                self.function = in_process
                handler = self._prepare(in_process) if self._prepare is not None else in_process.handler
            logger.info("function initialised")
            self.mapping = EventSourceMapping(
                self.resources,
                handler,
                workers=settings.workers,
                batch_size=settings.batch_size,
                function_timeout_s=settings.function_timeout_s,
                on_batch=self._on_batch,
            )
            self.tracker = ResultTracker(self.resources, self.function.retry_reasons)
            self.mapping.start()
            self._stack = stack.pop_all()
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
            self._stack.__exit__(exc_type, exc, traceback)
            logger.info("emulator stopped")
