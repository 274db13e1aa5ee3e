"""`python -m local soak`: caption generated objects while AWS fails the way it really fails, then count.

Faults (local/faults.py) hit the function's own boto3 clients; one worker is killed in the middle of a
batch, and a share of events is delivered twice. Every uploaded object must end captioned, failed
with a reason, or dead-lettered: `lost` is 0.
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TextIO

from rich.console import Console

from captioning.contract.constants import ItemStatus
from local.dead_letters import keys_in_notification
from local.emulated_pipeline import EmulatedPipeline
from local.event_source import WorkerCrash
from local.faults import RandomFaults
from local.lambda_runtime import InProcessFunction, LambdaHandler
from local.rendering import ProgressDisplay, summary_table
from local.settings import LocalSettings
from local.soak_objects import SoakObject, soak_objects
from local.tracking import KeyResult

DUPLICATE_EVENT_SHARE = 0.1

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

    def connect(self, pipeline: EmulatedPipeline) -> None:
        self._sqs = pipeline.resources.client("sqs")
        self._queue_url = pipeline.resources.queue_url

    def __call__(self, worker_id: int, messages: Any) -> None:
        for message in messages:
            first_delivery = message.get("Attributes", {}).get("ApproximateReceiveCount") == "1"
            if self._sqs is None or not first_delivery or not keys_in_notification(message["Body"])[0]:
                continue
            with self._lock:
                duplicate = self.rng.random() < self.share
                if duplicate:
                    self.sent += 1
            if duplicate:
                self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=message["Body"])


def run_soak(settings: LocalSettings, *, results: TextIO, status: Console) -> int:
    """Run the soak and print its summary; 0 when nothing was lost and every object is accounted for."""
    summary = soak(settings, status=status)
    if settings.as_json:
        results.write(json.dumps(asdict(summary), ensure_ascii=False) + "\n")
    else:
        measures = {name: value for name, value in asdict(summary).items() if name != "fault_kinds"}
        Console(file=results).print(summary_table(measures, summary.fault_kinds))
    results.flush()
    return 0 if summary.accounted else 1


def soak(settings: LocalSettings, *, status: Console | None = None) -> SoakSummary:
    """Upload `settings.images` generated objects through the faulty pipeline and account for every one."""
    status = status or Console(stderr=True, quiet=True)
    images, seed = settings.images, settings.seed
    if settings.function_image is not None:
        settings = replace(settings, function_image=None)  # faults need the in-process function's clients
    # Seeded, reproducible draws for test data and fault timing; nothing here is security-relevant.
    objects = soak_objects(images, random.Random(seed))  # noqa: S311
    fault_rng = random.Random(seed + 1)  # noqa: S311
    faults = RandomFaults(rate=settings.fault_rate, rng=fault_rng, crash_at_write=max(2, images // 3))
    duplicates = _DuplicateDeliveries(DUPLICATE_EVENT_SHARE, random.Random(seed + 2))  # noqa: S311

    def prepare(function: InProcessFunction) -> LambdaHandler:
        faults.install(function.caption_handler)
        return _crash_after_invocation(
            function.handler, faults, at_invocation=max(2, images // (3 * settings.batch_size))
        )

    with ExitStack() as stack:
        with status.status("Starting the emulator and loading the model…"):
            pipeline = stack.enter_context(EmulatedPipeline(settings, on_batch=duplicates, prepare=prepare))
        duplicates.connect(pipeline)
        s3 = pipeline.resources.client("s3")
        tracker = pipeline.tracker
        started = time.monotonic()
        for item in objects:
            tracker.expect([item.key])
            s3.put_object(Bucket=pipeline.resources.bucket, Key=item.key, Body=io.BytesIO(item.data))
        with ProgressDisplay(len(objects), status, description="Soak") as progress:
            tracker.wait(settings.stall_timeout_s, progress.update)
        # Let redeliveries (the killed worker's batch) and duplicates finish, then read back.
        tracker.wait_until_queue_drained(timeout_s=settings.stall_timeout_s)
        pipeline.mapping.stop()
        seconds = time.monotonic() - started
        final = tracker.read_table([item.key for item in objects])
        tracker.dead_letters.new_messages()
        stats = pipeline.mapping.stats

    return summarize(
        objects,
        final,
        tracker.dead_letters.keys,
        faults=faults,
        redeliveries=stats.redeliveries,
        workers_killed=stats.crashes,
        duplicate_events_sent=duplicates.sent,
        seconds=seconds,
    )


def summarize(
    objects: list[SoakObject],
    items: dict[str, KeyResult],
    dead_lettered_keys: set[str],
    *,
    faults: RandomFaults,
    redeliveries: int,
    workers_killed: int,
    duplicate_events_sent: int,
    seconds: float,
) -> SoakSummary:
    """Account for every uploaded object from the final table read-back and the DLQ.

    An item in the table decides (captioned or failed); otherwise a dead-lettered event; otherwise lost.
    """
    captioned = [
        item for item in objects if item.key in items and items[item.key].status == ItemStatus.CAPTIONED
    ]
    failed = [item for item in objects if item.key in items and items[item.key].status == ItemStatus.FAILED]
    dead_lettered = [item for item in objects if item.key not in items and item.key in dead_lettered_keys]
    changed = [key for key, contents in faults.written.items() if len(contents) > 1]
    wrong = [item for item in captioned if items[item.key].caption != item.expected_caption]
    return SoakSummary(
        uploaded=len(objects),
        captioned=len(captioned),
        failed=len(failed),
        dead_lettered=len(dead_lettered),
        lost=len(objects) - len(captioned) - len(failed) - len(dead_lettered),
        duplicates=len(changed),
        faults_injected=faults.faults_injected,
        redeliveries=redeliveries,
        seconds=round(seconds, 1),
        bad_objects=sum(1 for item in objects if item.expected_caption is None),
        wrong_captions=len(wrong),
        duplicate_events_sent=duplicate_events_sent,
        workers_killed=workers_killed,
        fault_kinds=dict(sorted(faults.injected.items())),
    )


def _crash_after_invocation(
    handler: LambdaHandler, faults: RandomFaults, at_invocation: int
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
        if due and faults.crash_now():
            raise WorkerCrash("killed after the handler returned, before the messages were deleted")
        return response

    return invoke
