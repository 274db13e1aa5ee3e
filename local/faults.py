"""Faults injected into the function's own boto3 clients through botocore's `before-send` event, so
boto3's standard retries and the handler's error handling run for real: some faults are absorbed by a
retry, some surface as transient errors (`batchItemFailures` -> redelivery -> maybe the DLQ).

`error_responder` answers a request the way S3 or DynamoDB answers an error; `RandomFaults` fails a
share of GetObject and DynamoDB write calls with the kinds in FAULTS and kills one worker once.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from captioning.contract.constants import TABLE_KEY
from local.event_source import WorkerCrash

if TYPE_CHECKING:
    from captioning.function.processing import CaptionHandler

S3_READ_OPERATIONS = ("GetObject",)
DYNAMODB_WRITE_OPERATIONS = ("PutItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems")

Responder = Callable[[AWSPreparedRequest], AWSResponse]


class _RawBody:
    """The `raw` an AWSResponse reads its body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs: Any) -> Any:
        yield self._body

    def read(self, *args: Any) -> bytes:
        return self._body


def error_responder(service: str, code: str, status: int, message: str = "injected") -> Responder:
    """A `before-send` answer: the HTTP error `service` ("s3" or "dynamodb") sends for `code`."""
    if service == "s3":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            "<RequestId>INJECTED</RequestId></Error>"
        ).encode()
        headers = {"Content-Type": "application/xml"}
    elif service == "dynamodb":
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "INJECTED"}
    else:
        raise ValueError(f"error responses are made for s3 and dynamodb, not {service!r}")
    return lambda request: AWSResponse(request.url, status, headers, _RawBody(body))


def _connection_reset(request: AWSPreparedRequest) -> AWSResponse:
    raise ConnectionClosedError(endpoint_url=request.url)


def _read_timeout(request: AWSPreparedRequest) -> AWSResponse:
    raise ReadTimeoutError(endpoint_url=request.url)


def _landed_then_timed_out(request: AWSPreparedRequest) -> AWSResponse:
    """The write reaches the table but its response is lost: the client retries an applied write.

    (The injector sends the request itself before raising; see RandomFaults._on_dynamodb_send.)
    """
    raise ReadTimeoutError(endpoint_url=request.url)


WRITE_LANDED = "write landed, response lost"
_SESSION = URLLib3Session()


FAULTS: dict[str, dict[str, Responder]] = {
    "s3": {
        "SlowDown 503": error_responder("s3", "SlowDown", 503, "Please reduce your request rate."),
        "InternalError 500": error_responder(
            "s3", "InternalError", 500, "We encountered an internal error. Please try again."
        ),
        "ServiceUnavailable 503": error_responder(
            "s3", "ServiceUnavailable", 503, "Service is unable to handle request."
        ),
        "connection reset": _connection_reset,
        "read timeout": _read_timeout,
    },
    "dynamodb": {
        "ProvisionedThroughputExceededException 400": error_responder(
            "dynamodb",
            "ProvisionedThroughputExceededException",
            400,
            "The level of configured provisioned throughput was exceeded.",
        ),
        "ThrottlingException 400": error_responder(
            "dynamodb", "ThrottlingException", 400, "Rate of requests exceeds the allowed throughput."
        ),
        "InternalServerError 500": error_responder(
            "dynamodb", "InternalServerError", 500, "Internal server error"
        ),
        "connection reset": _connection_reset,
        "read timeout": _read_timeout,
        WRITE_LANDED: _landed_then_timed_out,
    },
}


@dataclass
class RandomFaults:
    """Fails a share of the function's GetObject and DynamoDB write calls; kills one worker once."""

    rate: float
    rng: random.Random
    crash_at_write: int  # the n-th DynamoDB write attempt raises WorkerCrash instead of being sent
    injected: Counter[str] = field(default_factory=Counter)
    written: dict[str, set[tuple[Any, ...]]] = field(default_factory=lambda: defaultdict(set))
    write_attempts: int = 0
    crashed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, function: CaptionHandler) -> None:
        """Inject into the function's own clients (the in-process function's CaptionHandler)."""
        for operation in S3_READ_OPERATIONS:
            function.s3_client.meta.events.register(f"before-send.s3.{operation}", self._on_s3_send)
        events = function.dynamodb_client.meta.events
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

    def _pick_fault(self, service: str) -> tuple[str, Responder] | None:
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
                self._note_landed(written_items(_json_body(request.body)))
        return fault[1](request) if fault else None

    def _remember_items(self, params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        context["injected_fault_items"] = written_items(_json_body(params.get("body")))

    def _on_write_answered(self, http_response: Any, context: dict[str, Any], **kwargs: Any) -> None:
        if http_response.status_code == 200:
            self._note_landed(context.get("injected_fault_items", []))

    def _note_landed(self, items: list[dict[str, Any]]) -> None:
        """Remember what each applied write stored for its key, to spot a caption changing under redelivery.

        Writes the table refused (the function's condition against duplicates) are not counted.
        """
        for item in items:
            key = item.get(TABLE_KEY, {}).get("S")
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


def written_items(body: dict[str, Any]) -> list[dict[str, Any]]:
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
