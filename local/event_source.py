"""Lambda's SQS event source mapping, emulated: N pollers that receive batches and invoke the function.

Each worker plays one concurrent execution environment. Like the real mapping it sends the record
shape Lambda documents, deletes the messages the function did not report in `batchItemFailures`, and
leaves the rest to reappear after the visibility timeout; the queue's redrive policy moves a message
to the dead-letter queue once its receive count passes `maxReceiveCount`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient

from captioning.aws_events import sqs_record
from captioning.component.settings import PipelineSettings
from local.lambda_runtime import LambdaContext, LambdaHandler
from local.resources import EmulatedResources
from ops.aws import SQS_MESSAGES_PER_CALL

logger = logging.getLogger(__name__)

POLL_WAIT_S = 1


class WorkerCrash(BaseException):
    """Raised to kill a worker mid-batch, as a Lambda environment dies: nothing after it runs.

    A BaseException, so the function's own `except Exception` handlers cannot swallow it.
    """


@dataclass
class DeliveryStats:
    """Counters the mapping keeps; read by the soak's accounting."""

    invocations: int = 0
    function_errors: int = 0
    messages_received: int = 0
    redeliveries: int = 0
    messages_deleted: int = 0
    messages_returned: int = 0
    crashes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


BatchHook = Callable[[int, Sequence[dict[str, Any]]], None]


def lambda_sqs_record(message: dict[str, Any], resources: EmulatedResources) -> dict[str, Any]:
    """The record Lambda's SQS event source mapping makes of one ReceiveMessage entry."""
    return sqs_record(
        message["Body"],
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        queue_arn=resources.queue_arn,
        attributes=message.get("Attributes", {}),
        message_attributes=message.get("MessageAttributes", {}),
        md5_of_body=message.get("MD5OfBody"),
    )


def failed_message_ids(response: Any, message_ids: set[str]) -> set[str]:
    """Which messages the mapping must keep, read from the function's response.

    As in Lambda: an identifier that is empty or not in the batch fails the whole batch.
    """
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return set()
    failed = {failure.get("itemIdentifier") for failure in response["batchItemFailures"]}
    if not failed <= message_ids:
        return set(message_ids)
    return failed


class EventSourceMapping:
    """Polls the queue with `workers` threads and invokes the function with batches of messages."""

    def __init__(
        self,
        resources: EmulatedResources,
        function: LambdaHandler,
        *,
        workers: int = 1,
        batch_size: int = PipelineSettings.batch_size,  # the component's default, Lambda's
        batching_window_s: float = 0.5,
        function_timeout_s: float | None = None,
        on_batch: BatchHook | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        self.resources = resources
        self.function = function
        self.workers = workers
        self.batch_size = batch_size
        self.batching_window_s = batching_window_s
        # AWS requires the queue's visibility timeout to be at least the function timeout.
        self.function_timeout_s = function_timeout_s or resources.visibility_timeout_s
        self.on_batch = on_batch
        self.stats = DeliveryStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        self._next_worker_id = 0

    def start(self) -> None:
        for _ in range(self.workers):
            self._spawn()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop polling; a batch in flight is finished first, as Lambda lets an invocation end."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        while True:
            with self._threads_lock:
                alive = [thread for thread in self._threads if thread.is_alive()]
            if not alive:
                return
            alive[0].join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                logger.warning("%d worker(s) still busy after %.0f s; leaving them", len(alive), timeout_s)
                return

    def __enter__(self) -> EventSourceMapping:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self) -> None:
        with self._threads_lock:
            worker_id = self._next_worker_id
            self._next_worker_id += 1
            thread = threading.Thread(
                target=self._run, args=(worker_id,), name=f"worker-{worker_id}", daemon=True
            )
            self._threads.append(thread)
        thread.start()

    def _run(self, worker_id: int) -> None:
        sqs = self.resources.client("sqs")
        while not self._stop.is_set():
            try:
                messages = self._receive_batch(sqs)
                if messages:
                    self._invoke(sqs, worker_id, messages)
            except WorkerCrash:
                self.stats.add(crashes=1)
                logger.warning(
                    "worker %d crashed mid-batch; its messages reappear after the visibility timeout",
                    worker_id,
                )
                if not self._stop.is_set():
                    self._spawn()  # Lambda starts a fresh execution environment
                return
            except Exception:
                # The mapping itself must survive anything (emulator hiccups included) and keep polling.
                logger.exception("worker %d: polling error", worker_id)
                time.sleep(0.5)

    def _receive_batch(self, sqs: BaseClient) -> list[dict[str, Any]]:
        """Up to batch_size messages: one receive, topped up within the batching window when it is bigger."""
        messages = self._receive(sqs, min(self.batch_size, SQS_MESSAGES_PER_CALL), POLL_WAIT_S)
        window_ends = time.monotonic() + self.batching_window_s
        while messages and len(messages) < self.batch_size and time.monotonic() < window_ends:
            more = self._receive(sqs, min(self.batch_size - len(messages), SQS_MESSAGES_PER_CALL), 0)
            if not more:
                break
            messages.extend(more)
        return messages

    def _receive(self, sqs: BaseClient, count: int, wait_s: int) -> list[dict[str, Any]]:
        if self._stop.is_set():
            return []
        response = sqs.receive_message(
            QueueUrl=self.resources.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return response.get("Messages", [])

    def _invoke(self, sqs: BaseClient, worker_id: int, messages: list[dict[str, Any]]) -> None:
        redelivered = sum(
            1 for m in messages if int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")) > 1
        )
        self.stats.add(messages_received=len(messages), redeliveries=redelivered, invocations=1)
        if self.on_batch is not None:
            self.on_batch(worker_id, messages)
        event = {"Records": [lambda_sqs_record(message, self.resources) for message in messages]}
        message_ids = {message["MessageId"] for message in messages}
        try:
            response = self.function(
                event, LambdaContext(timeout_s=self.function_timeout_s, region=self.resources.region)
            )
            failed = failed_message_ids(response, message_ids)
        except Exception:
            # A function error: the whole batch returns to the queue.
            logger.exception(
                "worker %d: the function raised; %d message(s) will be retried", worker_id, len(messages)
            )
            self.stats.add(function_errors=1)
            failed = message_ids
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=self.resources.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(done)
                ],
            )
        self.stats.add(messages_deleted=len(done), messages_returned=len(failed))
