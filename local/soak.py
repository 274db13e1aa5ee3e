"""`python -m local soak`: caption generated objects while AWS fails the way it really fails, then count.

Faults are injected into the function's own boto3 clients through botocore's `before-send` event,
so boto3's standard retries and the handler's error handling run for real: some faults are absorbed
by a retry, some surface as transient errors (`batchItemFailures` -> redelivery -> maybe the DLQ).
One worker is killed in the middle of a batch, and a share of events is delivered twice.
Every uploaded object must end captioned, failed with a reason, or dead-lettered: `lost` is 0.
"""

from __future__ import annotations

import io
import json
import random
import struct
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.httpsession import URLLib3Session
from rich.console import Console
from rich.table import Table

from local.caption import stall_timeout_s
from local.function import LambdaHandler
from local.pipeline import LocalPipeline, PipelineSettings
from local.results import CAPTIONED, FAILED, Outcome, ProgressDisplay, keys_in_notification
from local.workers import WorkerCrash

BAD_OBJECT_SHARE = 0.1
DUPLICATE_EVENT_SHARE = 0.1
SOAK_VISIBILITY_TIMEOUT_S = 10
SOAK_MAX_RECEIVE_COUNT = 4
S3_READ_OPERATIONS = ("GetObject",)
DYNAMODB_WRITE_OPERATIONS = ("PutItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems")


# --- the objects -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoakObject:
    key: str
    data: bytes
    expected_caption: str | None  # None: a bad object, expected to fail


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (a decompression bomb, as far as the header goes)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _bad_objects(good_jpeg: bytes) -> list[tuple[str, bytes]]:
    """(file extension, bytes) of objects no captioner should caption."""
    return [
        (".jpg", b""),
        (".jpg", b"This is a text file, named like a photo.\n"),
        (".jpg", good_jpeg[: len(good_jpeg) // 3]),
        (".png", _png_claiming(40_000, 40_000)),
        (".pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"),
        (".png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4),
    ]


def soak_objects(count: int, rng: random.Random) -> list[SoakObject]:
    """`count` objects: demo-spec images (see models/shapes.py) and about 10 % bad objects.

    Some keys carry a space, '+' and non-ASCII characters, which S3 URL-encodes in events.
    """
    from models.shapes import random_demo_image

    objects: list[SoakObject] = []
    for index in range(count):
        special = " photo+ü" if index % 7 == 3 else ""
        if rng.random() < BAD_OBJECT_SHARE:
            sample = random_demo_image(rng, image_format="JPEG").data
            extension, data = rng.choice(_bad_objects(sample))
            objects.append(SoakObject(f"soak/{index:04d}{special}-bad{extension}", data, None))
        else:
            image = random_demo_image(rng)
            objects.append(
                SoakObject(f"soak/{index:04d}{special}{image.extension}", image.data, image.caption)
            )
    return objects


# --- the faults --------------------------------------------------------------------------------


class _RawBody:
    """The `raw` an AWSResponse reads its body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs: Any) -> Any:
        yield self._body

    def read(self, *args: Any) -> bytes:
        return self._body


def _s3_error(code: str, status: int, message: str) -> Callable[[AWSPreparedRequest], AWSResponse]:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        "<RequestId>SOAK</RequestId></Error>"
    ).encode()
    return lambda request: AWSResponse(
        request.url, status, {"Content-Type": "application/xml"}, _RawBody(body)
    )


def _dynamodb_error(code: str, status: int, message: str) -> Callable[[AWSPreparedRequest], AWSResponse]:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "SOAK"}
    return lambda request: AWSResponse(request.url, status, headers, _RawBody(body))


def _connection_reset(request: AWSPreparedRequest) -> AWSResponse:
    raise ConnectionClosedError(endpoint_url=request.url)


def _read_timeout(request: AWSPreparedRequest) -> AWSResponse:
    raise ReadTimeoutError(endpoint_url=request.url)


def _landed_then_timed_out(request: AWSPreparedRequest) -> AWSResponse:
    """The write reaches the table but its response is lost: the client retries an applied write.

    (The injector sends the request itself before raising; see FaultInjector._on_dynamodb_send.)
    """
    raise ReadTimeoutError(endpoint_url=request.url)


WRITE_LANDED = "write landed, response lost"
_SESSION = URLLib3Session()


FaultKind = Callable[[AWSPreparedRequest], AWSResponse]

FAULTS: dict[str, dict[str, FaultKind]] = {
    "s3": {
        "SlowDown 503": _s3_error("SlowDown", 503, "Please reduce your request rate."),
        "InternalError 500": _s3_error(
            "InternalError", 500, "We encountered an internal error. Please try again."
        ),
        "ServiceUnavailable 503": _s3_error(
            "ServiceUnavailable", 503, "Service is unable to handle request."
        ),
        "connection reset": _connection_reset,
        "read timeout": _read_timeout,
    },
    "dynamodb": {
        "ProvisionedThroughputExceededException 400": _dynamodb_error(
            "ProvisionedThroughputExceededException",
            400,
            "The level of configured provisioned throughput was exceeded.",
        ),
        "ThrottlingException 400": _dynamodb_error(
            "ThrottlingException", 400, "Rate of requests exceeds the allowed throughput."
        ),
        "InternalServerError 500": _dynamodb_error("InternalServerError", 500, "Internal server error"),
        "connection reset": _connection_reset,
        "read timeout": _read_timeout,
        WRITE_LANDED: _landed_then_timed_out,
    },
}


@dataclass
class FaultInjector:
    """Fails a share of the function's GetObject and DynamoDB write calls; kills one worker once."""

    rate: float
    rng: random.Random
    crash_at_write: int  # the n-th DynamoDB write attempt raises WorkerCrash instead of being sent
    injected: Counter[str] = field(default_factory=Counter)
    written: dict[str, set[tuple[Any, ...]]] = field(default_factory=lambda: defaultdict(set))
    write_attempts: int = 0
    crashed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, function_module: ModuleType) -> None:
        for operation in S3_READ_OPERATIONS:
            function_module.s3_client.meta.events.register(f"before-send.s3.{operation}", self._on_s3_send)
        events = function_module.dynamodb_client.meta.events
        for operation in DYNAMODB_WRITE_OPERATIONS:
            events.register(f"before-call.dynamodb.{operation}", self._remember_items)
            events.register(f"before-send.dynamodb.{operation}", self._on_dynamodb_send)
            events.register(f"after-call.dynamodb.{operation}", self._on_write_answered)

    @property
    def faults_injected(self) -> int:
        return sum(self.injected.values())

    def crash_now(self) -> bool:
        """True once: the worker that asks dies now."""
        with self._lock:
            if self.crashed:
                return False
            self.crashed = True
            return True

    def _pick_fault(self, service: str) -> tuple[str, FaultKind] | None:
        with self._lock:
            if self.rng.random() >= self.rate:
                return None
            name = self.rng.choice(sorted(FAULTS[service]))
            self.injected[f"{service} {name}"] += 1
            return name, FAULTS[service][name]

    def _on_s3_send(self, request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse | None:
        fault = self._pick_fault("s3")
        return fault[1](request) if fault else None

    def _on_dynamodb_send(self, request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse | None:
        with self._lock:
            self.write_attempts += 1
            crash = self.write_attempts == self.crash_at_write and not self.crashed
            if crash:
                self.crashed = True
        if crash:
            raise WorkerCrash("killed mid-batch by the soak")
        fault = self._pick_fault("dynamodb")
        if fault is not None and fault[0] == WRITE_LANDED:
            landed = _SESSION.send(request)
            if landed.status_code == 200:
                self._note_landed(_written_items(_json_body(request.body)))
        return fault[1](request) if fault else None

    def _remember_items(self, params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        context["soak_items"] = _written_items(_json_body(params.get("body")))

    def _on_write_answered(self, http_response: Any, context: dict[str, Any], **kwargs: Any) -> None:
        if http_response.status_code == 200:
            self._note_landed(context.get("soak_items", []))

    def _note_landed(self, items: list[dict[str, Any]]) -> None:
        """Remember what each applied write stored for its key, to spot a caption changing under redelivery.

        Writes the table refused (the function's condition against duplicates) are not counted.
        """
        for item in items:
            key = item.get("key", {}).get("S")
            if key is not None:
                content = tuple(
                    sorted(
                        (name, json.dumps(item[name]))
                        for name in ("status", "caption", "error")
                        if name in item
                    )
                )
                with self._lock:
                    self.written[key].add(content)


def _json_body(body: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _written_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The items a PutItem / UpdateItem / BatchWriteItem / TransactWriteItems request body writes."""
    if "Item" in body:
        return [body["Item"]]
    if "Key" in body:  # UpdateItem: the new values sit in the expression attribute values
        values = body.get("ExpressionAttributeValues", {})
        names = {placeholder: name for placeholder, name in body.get("ExpressionAttributeNames", {}).items()}
        expression = body.get("UpdateExpression", "")
        item = dict(body["Key"])
        for assignment in expression.removeprefix("SET ").split(","):
            target, _, value = (part.strip() for part in assignment.partition("="))
            if value in values:
                item[names.get(target, target)] = values[value]
        return [item]
    items: list[dict[str, Any]] = []
    for requests in body.get("RequestItems", {}).values():
        items.extend(request["PutRequest"]["Item"] for request in requests if "PutRequest" in request)
    for transact in body.get("TransactItems", []):
        if "Put" in transact:
            items.append(transact["Put"]["Item"])
    return items


# --- the run -----------------------------------------------------------------------------------


SUMMARY_KEYS = (
    "uploaded",
    "captioned",
    "failed",
    "dead_lettered",
    "lost",
    "duplicates",
    "faults_injected",
    "redeliveries",
    "seconds",
)


@dataclass
class SoakSummary:
    uploaded: int
    captioned: int
    failed: int
    dead_lettered: int
    lost: int
    duplicates: int
    faults_injected: int
    redeliveries: int
    seconds: float
    # beyond the required keys: what else happened, for a person reading the run
    bad_objects: int = 0
    wrong_captions: int = 0
    duplicate_events_sent: int = 0
    workers_killed: int = 0
    fault_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def accounted(self) -> bool:
        return self.lost == 0 and self.captioned + self.failed + self.dead_lettered == self.uploaded


class _DuplicateDeliveries:
    """Sends a copy of a share of first-time S3 events back to the queue: S3 delivers at least once."""

    def __init__(self, share: float, rng: random.Random) -> None:
        self.share = share
        self.rng = rng
        self.sent = 0
        self._lock = threading.Lock()
        self._sqs: Any = None
        self._queue_url = ""

    def connect(self, pipeline: LocalPipeline) -> None:
        self._sqs = pipeline.deployment.client("sqs")
        self._queue_url = pipeline.deployment.queue_url

    def __call__(self, worker_id: int, messages: Any) -> None:
        for message in messages:
            first_delivery = message.get("Attributes", {}).get("ApproximateReceiveCount") == "1"
            if self._sqs is None or not first_delivery or not keys_in_notification(message["Body"]):
                continue
            with self._lock:
                duplicate = self.rng.random() < self.share
                if duplicate:
                    self.sent += 1
            if duplicate:
                self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=message["Body"])


def run_soak(
    *,
    images: int,
    fault_rate: float,
    workers: int,
    seed: int,
    model_dir: Path,
    batch_size: int,
    log_level: str,
    as_json: bool,
    results: TextIO,
    status: Console,
) -> int:
    """Run the soak and print its summary; 0 when nothing was lost and every object is accounted for."""
    summary = soak(
        images=images,
        fault_rate=fault_rate,
        workers=workers,
        seed=seed,
        model_dir=model_dir,
        batch_size=batch_size,
        log_level=log_level,
        status=status,
    )
    if as_json:
        results.write(json.dumps(asdict(summary), ensure_ascii=False) + "\n")
    else:
        Console(file=results).print(summary_table(summary))
    results.flush()
    return 0 if summary.accounted else 1


def soak(
    *,
    images: int,
    fault_rate: float,
    workers: int,
    seed: int,
    model_dir: Path,
    batch_size: int = 10,
    log_level: str = "ERROR",
    status: Console | None = None,
    visibility_timeout_s: int = SOAK_VISIBILITY_TIMEOUT_S,
) -> SoakSummary:
    """Upload `images` generated objects through the faulty pipeline and account for every one."""
    status = status or Console(stderr=True, quiet=True)
    # Seeded, reproducible draws for test data and fault timing; nothing here is security-relevant.
    objects = soak_objects(images, random.Random(seed))  # noqa: S311
    injector = FaultInjector(rate=fault_rate, rng=random.Random(seed + 1), crash_at_write=max(2, images // 3))  # noqa: S311
    duplicates = _DuplicateDeliveries(DUPLICATE_EVENT_SHARE, random.Random(seed + 2))  # noqa: S311

    def prepare(function_module: ModuleType) -> LambdaHandler:
        injector.install(function_module)
        return _crash_after_invocation(
            function_module.handler, injector, at_invocation=max(2, images // (3 * batch_size))
        )

    settings = PipelineSettings(
        model_dir=model_dir,
        workers=workers,
        batch_size=batch_size,
        visibility_timeout_s=visibility_timeout_s,
        max_receive_count=SOAK_MAX_RECEIVE_COUNT,
        log_level=log_level,
        on_batch=duplicates,
        prepare=prepare,
    )
    with ExitStack() as stack:
        with status.status("Starting the emulator and loading the model…"):
            pipeline = stack.enter_context(LocalPipeline(settings))
        duplicates.connect(pipeline)
        s3 = pipeline.deployment.client("s3")
        collector = pipeline.collector
        started = time.monotonic()
        for item in objects:
            collector.expect([item.key])
            s3.put_object(Bucket=pipeline.deployment.bucket, Key=item.key, Body=io.BytesIO(item.data))
        with ProgressDisplay(len(objects), status, description="Soak") as progress:
            collector.wait(stall_timeout_s(settings), progress.update)
        # Let redeliveries (the killed worker's batch) and duplicates finish, then read back.
        collector.wait_until_queue_drained(timeout_s=stall_timeout_s(settings))
        pipeline.mapping.stop()
        seconds = time.monotonic() - started
        final = collector.read_table([item.key for item in objects])
        collector.read_dead_letters()
        stats = pipeline.mapping.stats

    return summarize(
        objects,
        final,
        set(collector.dead_lettered),
        injector=injector,
        redeliveries=stats.redeliveries,
        workers_killed=stats.crashes,
        duplicate_events_sent=duplicates.sent,
        seconds=seconds,
    )


def summarize(
    objects: list[SoakObject],
    items: dict[str, Outcome],
    dead_lettered_keys: set[str],
    *,
    injector: FaultInjector,
    redeliveries: int,
    workers_killed: int,
    duplicate_events_sent: int,
    seconds: float,
) -> SoakSummary:
    """Account for every uploaded object from the final table read-back and the DLQ.

    An item in the table decides (captioned or failed); otherwise a dead-lettered event; otherwise lost.
    """
    captioned = [item for item in objects if item.key in items and items[item.key].status == CAPTIONED]
    failed = [item for item in objects if item.key in items and items[item.key].status == FAILED]
    dead_lettered = [item for item in objects if item.key not in items and item.key in dead_lettered_keys]
    changed = [key for key, contents in injector.written.items() if len(contents) > 1]
    wrong = [item for item in captioned if items[item.key].caption != item.expected_caption]
    return SoakSummary(
        uploaded=len(objects),
        captioned=len(captioned),
        failed=len(failed),
        dead_lettered=len(dead_lettered),
        lost=len(objects) - len(captioned) - len(failed) - len(dead_lettered),
        duplicates=len(changed),
        faults_injected=injector.faults_injected,
        redeliveries=redeliveries,
        seconds=round(seconds, 1),
        bad_objects=sum(1 for item in objects if item.expected_caption is None),
        wrong_captions=len(wrong),
        duplicate_events_sent=duplicate_events_sent,
        workers_killed=workers_killed,
        fault_kinds=dict(sorted(injector.injected.items())),
    )


def _crash_after_invocation(
    handler: LambdaHandler, injector: FaultInjector, at_invocation: int
) -> LambdaHandler:
    """Kill a worker after its handler returned and before the messages are deleted, unless the
    mid-write crash already happened (e.g. when faults leave no write to crash on)."""
    invocations = 0
    lock = threading.Lock()

    def invoke(event: dict[str, Any], context: Any) -> Any:
        nonlocal invocations
        response = handler(event, context)
        with lock:
            invocations += 1
            due = invocations >= at_invocation
        if due and injector.crash_now():
            raise WorkerCrash("killed after the handler returned, before the messages were deleted")
        return response

    return invoke


def summary_table(summary: SoakSummary) -> Table:
    table = Table(title="soak summary")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in asdict(summary).items():
        if name == "fault_kinds":
            continue
        table.add_row(name, str(value))
    for kind, count in summary.fault_kinds.items():
        table.add_row(f"  fault: {kind}", str(count))
    return table
