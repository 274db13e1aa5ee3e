"""`python -m ops redrive`: send the dead-lettered events back through the pipeline once the cause is fixed.

Queue mode: the dead-letter queue holds the upload queue's messages (S3 notifications). SQS's own
message-move task moves them back where the API has it; elsewhere (the local emulator, or a role without
sqs:StartMessageMoveTask) each message is received, sent to the upload queue, and only then deleted:
a stop between the two leaves a copy in both queues (the function recognises the redelivery), never none.

Direct mode: the dead-letter queue holds Lambda's on-failure destination records; each keeps the
original S3 event as `requestPayload`, which is invoked again asynchronously, then the record deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.aws import SQS_MESSAGES_PER_CALL
from ops.backfill import Progress, describe_error
from ops.control import StopRequested
from ops.locate import Locations

HOLD_S = 60
"""Visibility timeout while a received message is being moved (it reappears if we die meanwhile)."""
EMPTY_RECEIVES_TO_STOP = 2
MOVE_TASK_POLL_S = 2.0
MOVE_TASK_TIMEOUT_S = 900.0
MOVE_TASK = "move task"
RECEIVE_SEND_DELETE = "receive/send/delete"
REINVOKE = "re-invoke"


@dataclass
class RedriveSummary:
    mode: str
    dry_run: bool
    waiting: int = 0
    """Messages in the dead-letter queue when the command started (approximate, as SQS counts)."""
    method: str = ""
    moved: int = 0
    left: dict[str, str] = field(default_factory=dict)
    """message id -> why it stays in the dead-letter queue."""
    note: str | None = None
    interrupted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"command": "redrive", **asdict(self)}


def queue_depth(locations: Locations, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue, as SQS approximates them."""
    attributes = locations.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def run_redrive(
    locations: Locations,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    stop: StopRequested | None = None,
) -> RedriveSummary:
    locations.require("dead_letter_queue_url")
    if locations.mode == "direct":
        locations.require("function_name")
    progress = progress or Progress()
    visible, in_flight = queue_depth(locations, locations.dead_letter_queue_url or "")
    summary = RedriveSummary(mode=locations.mode, dry_run=dry_run, waiting=visible + in_flight)
    if dry_run or summary.waiting == 0:
        return summary
    progress.start(summary.waiting)
    if locations.mode == "queue":
        if not locations.local and _move_task(locations, summary):
            return summary
        summary.method = RECEIVE_SEND_DELETE
        _drain(locations, summary, _to_upload_queue(locations), progress, stop)
    else:
        summary.method = REINVOKE
        _drain(locations, summary, _reinvoke(locations), progress, stop)
    return summary


def _queue_arn(locations: Locations, queue_url: str) -> str:
    return locations.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]


def _move_task(locations: Locations, summary: RedriveSummary) -> bool:
    """Move with SQS's message-move task; False (with a note) when the API cannot here."""
    sqs = locations.client("sqs", max_attempts=1)
    source = _queue_arn(locations, locations.dead_letter_queue_url or "")
    try:
        handle = sqs.start_message_move_task(
            SourceArn=source, DestinationArn=_queue_arn(locations, locations.queue_url or "")
        )["TaskHandle"]
    except (ClientError, BotoCoreError) as error:
        summary.note = f"SQS message-move task unavailable ({describe_error(error)[:120]}); moved one by one"
        return False
    summary.method = MOVE_TASK
    deadline = time.monotonic() + MOVE_TASK_TIMEOUT_S
    while time.monotonic() < deadline:
        tasks = sqs.list_message_move_tasks(SourceArn=source, MaxResults=10).get("Results", [])
        task = next((t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else {})
        summary.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        status = task.get("Status")
        if status in ("COMPLETED", "FAILED", "CANCELLED"):
            if status != "COMPLETED":
                summary.note = f"the move task ended {status}: {task.get('FailureReason', 'no reason given')}"
            return True
        time.sleep(MOVE_TASK_POLL_S)
    summary.note = f"the move task (handle {handle}) is still running; `status` shows the queue depths"
    return True


Mover = Callable[[list[dict[str, Any]]], tuple[list[dict[str, Any]], dict[str, str]]]
"""Messages -> (those handled, to delete; message id -> why the others stay)."""


def _drain(
    locations: Locations,
    summary: RedriveSummary,
    move: Mover,
    progress: Progress,
    stop: StopRequested | None,
) -> None:
    sqs = locations.client("sqs")
    empty = 0
    while empty < EMPTY_RECEIVES_TO_STOP:
        if stop is not None and stop.requested:
            summary.interrupted = True
            return
        messages = sqs.receive_message(
            QueueUrl=locations.dead_letter_queue_url,
            MaxNumberOfMessages=SQS_MESSAGES_PER_CALL,
            VisibilityTimeout=HOLD_S,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in summary.left]
        if len(fresh) < len(messages):
            _show_again(sqs, locations, [m for m in messages if m["MessageId"] in summary.left])
        if not fresh:
            empty += 1
            continue
        empty = 0
        handled, left = move(fresh)
        summary.left.update(left)
        # Those staying are visible again at once, for whoever looks next (a person; this loop skips them).
        _show_again(sqs, locations, [m for m in fresh if m["MessageId"] in left])
        if handled:
            response = sqs.delete_message_batch(
                QueueUrl=locations.dead_letter_queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(handled)],
            )
            for failed in response.get("Failed", []):
                # Moved but still parked: it will be moved again later, and recognised as a duplicate.
                message = handled[int(failed["Id"])]
                summary.left[message["MessageId"]] = f"moved, but not deleted: {failed.get('Message', '')}"
        summary.moved += len(handled)
        progress.advance(len(fresh))


def _show_again(sqs: Any, locations: Locations, messages: list[dict[str, Any]]) -> None:
    if messages:
        sqs.change_message_visibility_batch(
            QueueUrl=locations.dead_letter_queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages)
            ],
        )


def _to_upload_queue(locations: Locations) -> Mover:
    sqs = locations.client("sqs")

    def move(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        entries = []
        for index, message in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        try:
            response = sqs.send_message_batch(QueueUrl=locations.queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as error:
            return [], {m["MessageId"]: f"not sent: {describe_error(error)}" for m in messages}
        failed = {
            int(f["Id"]): f"not sent: {f.get('Code')}: {f.get('Message', '')}"
            for f in response.get("Failed", [])
        }
        handled = [m for i, m in enumerate(messages) if i not in failed]
        return handled, {messages[i]["MessageId"]: reason for i, reason in failed.items()}

    return move


def original_event(body: str) -> dict[str, Any] | None:
    """The event Lambda could not process, from an on-failure destination record; None if not one."""
    try:
        record = json.loads(body)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("requestPayload"), dict):
        return None
    return record["requestPayload"]


def _reinvoke(locations: Locations) -> Mover:
    lambda_client = locations.client("lambda")

    def move(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        handled, left = [], {}
        for message in messages:
            event = original_event(message["Body"])
            if event is None:
                left[message["MessageId"]] = (
                    "not a Lambda on-failure record (no requestPayload): left in place"
                )
                continue
            try:
                response = lambda_client.invoke(
                    FunctionName=locations.function_name,
                    InvocationType="Event",
                    Payload=json.dumps(event).encode(),
                )
            except (ClientError, BotoCoreError) as error:
                left[message["MessageId"]] = f"not invoked: {describe_error(error)}"
                continue
            if response.get("StatusCode") != 202:
                left[message["MessageId"]] = f"asynchronous invocation answered {response.get('StatusCode')}"
                continue
            handled.append(message)
        return handled, left

    return move
