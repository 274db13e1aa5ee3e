"""The function's telemetry, with AWS Lambda Powertools: metrics (EMF), traces (X-Ray), request ids in logs.

Metrics and traces exist only when switched on (Settings.metrics_enabled / tracing_enabled, read from
POWERTOOLS_METRICS_DISABLED / POWERTOOLS_TRACE_DISABLED). Off, no Metrics or Tracer object is built:
nothing is buffered, aws_xray_sdk is never imported and botocore is not patched. Powertools honours the
same variables, but not at no cost: with POWERTOOLS_METRICS_DISABLED=true its Metrics still collects
every value and only skips the print when flushing; a Tracer built disabled still imports the X-Ray SDK
(to switch it off globally), and its `disabled` flag is class-wide and sticky (once one Tracer in a
process is disabled, every later one is). On, Powertools' own environment checks still apply: outside
Lambda (no LAMBDA_TASK_ROOT, e.g. the local pipeline) its Tracer disables itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger

from captioning.contract.constants import DEFAULT_METRICS_NAMESPACE, SERVICE_NAME, MetricName
from captioning.contract.environment import Variable

Handler = Callable[[dict[str, Any], Any], Any]


class Telemetry:
    """The function's logger, and its metrics and tracer when they are switched on."""

    def __init__(
        self,
        *,
        metrics_enabled: bool,
        tracing_enabled: bool,
        service: str = SERVICE_NAME,
        namespace: str | None = None,
        function_name: str | None = None,
    ) -> None:
        self.logger = Logger(service=service)
        self.metrics: Any = None
        self.tracer: Any = None
        if metrics_enabled:
            from aws_lambda_powertools import Metrics

            self.metrics = Metrics(namespace=namespace or DEFAULT_METRICS_NAMESPACE, service=service)
            if function_name:
                # The same dimension Powertools gives its cold-start metric: one stack's function apart
                # from another's in a shared namespace.
                self.metrics.set_default_dimensions(function_name=function_name)
        if tracing_enabled:
            from aws_lambda_powertools import Tracer

            self.tracer = Tracer(service=service)

    @classmethod
    def from_environment(cls, *, metrics_enabled: bool, tracing_enabled: bool) -> Telemetry:
        return cls(
            metrics_enabled=metrics_enabled,
            tracing_enabled=tracing_enabled,
            service=os.environ.get(Variable.POWERTOOLS_SERVICE_NAME) or SERVICE_NAME,
            namespace=os.environ.get(Variable.POWERTOOLS_METRICS_NAMESPACE),
            function_name=os.environ.get(Variable.AWS_LAMBDA_FUNCTION_NAME),
        )

    def instrument(self, handler: Handler) -> Handler:
        """The handler with the request id in every log line, its trace (cold start annotated) and its
        metrics flushed as one EMF line at the end of each invocation (plus the cold-start metric)."""
        wrapped = handler
        if self.metrics is not None:
            wrapped = self.metrics.log_metrics(wrapped, capture_cold_start_metric=True)
        if self.tracer is not None:
            wrapped = self.tracer.capture_lambda_handler(wrapped)
        return self.logger.inject_lambda_context(wrapped)

    @contextmanager
    def step(self, name: str, **annotations: str | int) -> Iterator[None]:
        """A subsegment named `## name` around one step of the invocation (nothing when tracing is off)."""
        if self.tracer is None:
            yield
            return
        with self.tracer.provider.in_subsegment(name=f"## {name}") as subsegment:
            if subsegment is not None:  # None when the X-Ray SDK has no segment to hang it on
                for key, value in annotations.items():
                    subsegment.put_annotation(key=key, value=value)
            yield

    def record_invocation(
        self,
        *,
        batch_size: int,
        captioned: int,
        failed: int,
        duplicates: int,
        retries: int,
        latencies_ms: Iterable[float],
    ) -> None:
        """This invocation's metrics: objects in the event, outcomes by kind (zeros included, so sums per
        minute are right), and each captioned image's caption latency."""
        if self.metrics is None:
            return
        for name, value in (
            (MetricName.BATCH_SIZE, batch_size),
            (MetricName.IMAGES_CAPTIONED, captioned),
            (MetricName.IMAGES_FAILED, failed),
            (MetricName.DUPLICATES, duplicates),
            (MetricName.RETRIES, retries),
        ):
            self.metrics.add_metric(name=name, unit="Count", value=value)
        for latency in latencies_ms:
            self.metrics.add_metric(name=MetricName.CAPTION_LATENCY, unit="Milliseconds", value=latency)
