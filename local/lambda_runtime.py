"""The Lambda function as the emulated pipeline runs it: in this process (the function's INIT,
`CaptionHandler.from_environment()`, as importing captioning.function.main runs it) or, with
--function-image, the real image under the Lambda runtime emulator.

Both give the event source mapping a `handler(event, context)` and report, per object key, why the function
last gave it back for a retry: in process from the outcomes of each invocation; from the image, from the
`key`, `status` and `error` fields of its JSON log lines (Lambda's SQS response carries message ids only).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from captioning.aws_events import s3_notification_event, s3_notification_record
from captioning.contract.constants import DEFAULT_PRECISION, SERVICE_NAME, TABLE_KEY, ObjectStatus
from captioning.contract.environment import OFFLINE_ENVIRONMENT, Variable
from captioning.function.captioner import directory_precision, directory_runtime
from local.resources import EmulatedResources
from local.settings import LocalSettings
from ops.aws import MOTO_ACCOUNT_ID, MOTO_CREDENTIALS, MOTO_REGION

if TYPE_CHECKING:
    from captioning.function.processing import CaptionHandler, Invocation

FUNCTION_NAME = "captioning-local"
WARM_UP_BATCH = 4

LambdaHandler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes and method of the context object Lambda passes to a Python handler."""

    timeout_s: float
    region: str = MOTO_REGION
    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 4096
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "local"
    _deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{MOTO_ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_environment(
    resources: EmulatedResources, settings: LocalSettings, log_level: str
) -> dict[str, str]:
    """What the deployed function's environment would hold (see captioning/component/function.py), pointed at
    the emulator. Metrics and traces are off: there is no CloudWatch or X-Ray daemon to send them to."""
    environment = {
        **MOTO_CREDENTIALS,
        **OFFLINE_ENVIRONMENT,
        "AWS_ENDPOINT_URL": resources.endpoint_url,
        "AWS_DEFAULT_REGION": resources.region,
        "AWS_REGION": resources.region,
        Variable.AWS_LAMBDA_FUNCTION_NAME: FUNCTION_NAME,
        Variable.AWS_LAMBDA_FUNCTION_TIMEOUT: str(settings.function_timeout_s),
        Variable.TABLE_NAME: resources.table,
        Variable.POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        Variable.POWERTOOLS_LOG_LEVEL: log_level,
        Variable.POWERTOOLS_METRICS_DISABLED: "true",
        Variable.POWERTOOLS_TRACE_DISABLED: "true",
    }
    if settings.caption_events:
        environment[Variable.CAPTION_EVENTS] = "true"  # to the default bus, as the component's default
    if settings.function_image is None:  # the image carries its model, runtime and precision
        environment[Variable.MODEL_DIR] = str(settings.model_dir)
        environment[Variable.MODEL_ID] = settings.model_dir.name
        environment.update(directory_choices(settings.model_dir))
    return {str(name): value for name, value in environment.items()}


def directory_choices(model_dir: Path) -> dict[str, str]:
    """RUNTIME and PRECISION as an image built from the model directory would set them, so the function
    has nothing to warn about (the local command line chooses neither): ONNX graphs with the precision
    they were built with, a torch model at the default precision."""
    return {
        Variable.RUNTIME: directory_runtime(model_dir),
        Variable.PRECISION: directory_precision(model_dir) or DEFAULT_PRECISION,
    }


def retry_reason(fields: Mapping[str, Any]) -> tuple[str, str] | None:
    """(key, error) from one of the image's JSON log lines, if it gives a key back."""
    key = fields.get("key")
    if fields.get("status") == ObjectStatus.RETRY and isinstance(key, str):
        return key, str(fields.get("error") or fields.get("message") or ObjectStatus.RETRY)
    return None


class InProcessFunction:
    """The function's INIT run here after its environment is set, then warmed up.

    `caption_handler` is the function (captioning/function/processing.py): its boto3 clients
    (`s3_client`, `dynamodb_client`) are where the soak injects faults; every invocation's outcomes
    come back through its `on_invocation`.
    """

    def __init__(self, resources: EmulatedResources, settings: LocalSettings) -> None:
        self.resources = resources
        self.settings = settings
        self.caption_handler: CaptionHandler | None = None
        self._reasons: dict[str, str] = {}

    def __enter__(self) -> InProcessFunction:
        from captioning.function.processing import CaptionHandler

        environment = function_environment(self.resources, self.settings, self.settings.log_level)
        os.environ.update(environment)
        self.caption_handler = CaptionHandler.from_environment()
        # Its log lines (JSON) to stderr through its own handler only, not a second time through root; at
        # this pipeline's level even when an earlier one in this process set up the logger.
        function_logger = logging.getLogger(SERVICE_NAME)
        function_logger.propagate = False
        function_logger.setLevel(self.settings.log_level)
        self.caption_handler.on_invocation = self._remember_retries
        _warm_up(self.caption_handler)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.caption_handler is not None:
            self.caption_handler.on_invocation = None

    @property
    def handler(self) -> LambdaHandler:
        assert self.caption_handler is not None, "used outside its with block"  # noqa: S101
        return self.caption_handler.handler

    @property
    def retry_reasons(self) -> Mapping[str, str]:
        """Per object key, why the function last gave it back for a retry."""
        return self._reasons

    def _remember_retries(self, invocation: Invocation) -> None:
        self._reasons.update(invocation.retry_reasons)


def _warm_up(function: CaptionHandler) -> None:
    """Caption calls before any event, as a warm (provisioned) environment has made them.

    The function's timeout guard starts from a cold-start guess of seconds per image and learns from
    its calls; without this, a short local function timeout sends a first batch back to the queue.
    The first call pays one-off costs; the second, a small batch, gives the estimate.
    """
    captioner, estimate = function.captioner, function.caption_time
    from PIL import Image

    blank = Image.new("RGB", (224, 224), (255, 255, 255))
    captioner.caption([blank])
    started = time.monotonic()
    captioner.caption([blank] * WARM_UP_BATCH)
    estimate.record(WARM_UP_BATCH, (time.monotonic() - started) * 1000)


class _ContainerRetryReasons(Mapping[str, str]):
    """Retry reasons read from the container's log lines when asked."""

    def __init__(self, logs: Callable[[], str]) -> None:
        self._logs = logs

    def _read(self) -> dict[str, str]:
        reasons: dict[str, str] = {}
        for line in self._logs().splitlines():
            try:
                fields = json.loads(line)
            except ValueError:
                continue
            found = retry_reason(fields) if isinstance(fields, dict) else None
            if found:
                reasons[found[0]] = found[1]
        return reasons

    def __getitem__(self, key: str) -> str:
        return self._read()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


class ContainerFunction:
    """The function image under the Lambda runtime emulator (local/function_container.py), invoked
    once at start so its INIT (model load) happens before the first upload."""

    def __init__(self, resources: EmulatedResources, settings: LocalSettings) -> None:
        from local.function_container import FunctionContainer

        assert settings.function_image is not None  # noqa: S101  the caller chose this runtime
        # AWS_LAMBDA_FUNCTION_TIMEOUT in it is the runtime emulator's own timeout setting.
        environment = function_environment(resources, settings, settings.log_level)
        self._container = FunctionContainer(settings.function_image, environment)
        self._lock = threading.Lock()  # the runtime emulator runs one invocation at a time
        self._show_logs = settings.verbose
        self._resources = resources
        self.retry_reasons: Mapping[str, str] = _ContainerRetryReasons(self._container.logs)

    def __enter__(self) -> ContainerFunction:
        self._container.__enter__()
        try:
            self._container.invoke(s3_notification_event([]))  # INIT, then an empty event
            self._warm_up()
        except BaseException:
            self._container.__exit__(None, None, None)
            raise
        return self

    def _warm_up(self) -> None:
        """Caption calls before any upload, as in-process (see _warm_up): one image, then a few.

        Direct S3 events for blank images in a bucket of their own (no notification); their items are
        deleted afterwards, so the captions table starts empty.
        """
        import io

        from PIL import Image

        s3, dynamodb = self._resources.client("s3"), self._resources.client("dynamodb")
        bucket = f"{self._resources.bucket}-warm-up"
        buffer = io.BytesIO()
        Image.new("RGB", (224, 224), (255, 255, 255)).save(buffer, format="PNG")
        s3.create_bucket(Bucket=bucket)
        keys = [f"warm-up/{index}.png" for index in range(1 + WARM_UP_BATCH)]
        try:
            for batch in (keys[:1], keys[1:]):
                records = []
                for key in batch:
                    etag = s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())["ETag"]
                    size = len(buffer.getvalue())
                    records.append(
                        s3_notification_record(
                            bucket, key, size=size, etag=etag, region=self._resources.region
                        )
                    )
                self._container.invoke(s3_notification_event(records))
        finally:
            for key in keys:
                dynamodb.delete_item(TableName=self._resources.table, Key={TABLE_KEY: {"S": key}})
                s3.delete_object(Bucket=bucket, Key=key)
            s3.delete_bucket(Bucket=bucket)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._show_logs:  # --verbose: the function's log lines, as the in-process function shows them
            try:
                sys.stderr.write(self._container.logs())
            except Exception as error:  # noqa: BLE001  the logs are a courtesy; stopping matters more
                sys.stderr.write(f"(no container logs: {error})\n")
        self._container.__exit__(exc_type, exc, traceback)

    @property
    def init_duration_ms(self) -> float | None:
        return getattr(self._container, "init_duration_ms", None)

    def handler(self, event: dict[str, Any], context: Any) -> Any:
        with self._lock:
            return self._container.invoke(event)
