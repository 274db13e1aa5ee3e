"""The function's telemetry, with AWS Lambda Powertools: metrics (EMF), traces (X-Ray), request ids in logs.

Metrics and traces exist only when switched on (Settings.metrics_enabled / tracing_enabled, read from
POWERTOOLS_METRICS_DISABLED / POWERTOOLS_TRACE_DISABLED). Off, no Metrics or Tracer object is built:
nothing is buffered, aws_xray_sdk is never imported and botocore is not patched. Powertools honours the
same variables, but not at no cost: with POWERTOOLS_METRICS_DISABLED=true its Metrics still collects
every value and only skips the print when flushing; a Tracer built disabled still imports the X-Ray SDK
(to switch it off globally), and its `disabled` flag is class-wide and sticky (once one Tracer in a
process is disabled, every later one is). On, Powertools' own environment checks still apply: outside
Lambda (no LAMBDA_TASK_ROOT, e.g. the local pipeline) its Tracer disables itself.

Whether an environment ran its own INIT or was restored from a SnapStart snapshot is Lambda's
AWS_LAMBDA_INITIALIZATION_TYPE: every log line carries it (`initialization_type`, beside Powertools'
`cold_start`), and so does the ColdStart metric's EMF document, as a property, not a dimension.
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

SNAPSTART_INITIALIZATION = "snap-start"
"""AWS_LAMBDA_INITIALIZATION_TYPE in an environment restored from a SnapStart snapshot (and in the INIT
that made the snapshot, which serves no invocation)."""

INITIALIZATION_TYPE_FIELD = "initialization_type"
"""The log field and ColdStart metric property that carry AWS_LAMBDA_INITIALIZATION_TYPE."""


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
        initialization_type: str | None = None,
    ) -> None:
        self.initialization_type = initialization_type
        self.logger = Logger(service=service)
        # Loggers of one service share their keys: set or clear it, whatever an earlier Telemetry left.
        if initialization_type:
            self.logger.append_keys(**{INITIALIZATION_TYPE_FIELD: initialization_type})
        else:
            self.logger.remove_keys([INITIALIZATION_TYPE_FIELD])
        self.metrics: Any = None
        self.tracer: Any = None
        if metrics_enabled:
            from aws_lambda_powertools import Metrics

            provider = _emf_provider(
                namespace=namespace or DEFAULT_METRICS_NAMESPACE,
                service=service,
                initialization_type=initialization_type,
            )
            self.metrics = Metrics(provider=provider)
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
            initialization_type=os.environ.get(Variable.AWS_LAMBDA_INITIALIZATION_TYPE),
        )

    @property
    def restored(self) -> bool:
        """This environment was restored from a SnapStart snapshot (its INIT ran elsewhere, earlier)."""
        return self.initialization_type == SNAPSTART_INITIALIZATION

    def log_init(self, *, load_ms: float, **fields: Any) -> None:
        """The INIT's log line: how long loading took, and `fields` (the initialization type is on every
        line)."""
        self.logger.info("function initialised", extra={"load_ms": round(load_ms), **fields})

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


def _emf_provider(*, namespace: str, service: str, initialization_type: str | None) -> Any:
    """Powertools' EMF provider, whose ColdStart metric also carries the initialization type."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric
    from aws_lambda_powertools.metrics.functions import resolve_cold_start_function_name
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    class ColdStartWithInitializationType(AmazonCloudWatchEMFProvider):
        def add_cold_start_metric(self, context: Any) -> None:
            # Powertools 3.37's own add_cold_start_metric (same name, value, namespace, dimensions: graphs
            # and alarms on ColdStart keep working), plus one property of its EMF document. A dimension
            # would have made it another metric. tests/function/test_snapstart_telemetry.py compares it
            # with Powertools' own.
            function_name = resolve_cold_start_function_name(
                function_name=self.function_name, context=context
            )
            with single_metric(
                name=MetricName.COLD_START, unit=MetricUnit.Count, value=1, namespace=self.namespace
            ) as metric:
                metric.add_dimension(name="function_name", value=function_name)
                if self.service:
                    metric.add_dimension(name="service", value=str(self.service))
                if initialization_type:
                    metric.add_metadata(key=INITIALIZATION_TYPE_FIELD, value=initialization_type)

    return ColdStartWithInitializationType(namespace=namespace, service=service)
