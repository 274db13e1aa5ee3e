"""Reading the dead-letter queue without taking its messages away from anyone else.

A message is received (hidden for a moment) and made visible again at once, so `aws sqs
receive-message` on the DLQ, `python -m ops redrive` or a person always find every parked event.
Each message is reported once, by its message id.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from botocore.exceptions import ClientError

from captioning.function.events import MalformedEvent, objects_in_notification
from local.resources import EmulatedResources
from ops.aws import SQS_MESSAGES_PER_CALL

logger = logging.getLogger(__name__)

PEEK_VISIBILITY_S = 30  # only while one sweep runs; visibility is reset to 0 right after


@dataclass(frozen=True)
class DeadLetter:
    """One parked message: the keys its S3 notification names, or why it names none."""

    message_id: str
    keys: tuple[str, ...]
    problem: str | None = None
    """Why the body is not an S3 notification (then `keys` is empty)."""


def keys_in_notification(body: str) -> tuple[list[str], str | None]:
    """The object keys an SQS message body names (the function's own parser), or why it names none."""
    try:
        return [ref.key for ref in objects_in_notification(json.loads(body))], None
    except MalformedEvent as error:
        return [], str(error)
    except ValueError as error:  # not JSON
        return [], f"message body is not JSON: {error}"


class DeadLetterPeek:
    """Reports messages newly parked in the dead-letter queue, leaving every one of them visible."""

    def __init__(self, resources: EmulatedResources) -> None:
        self._queue_url = resources.dead_letter_queue_url
        self._sqs = resources.client("sqs")
        self.seen: dict[str, DeadLetter] = {}

    @property
    def keys(self) -> set[str]:
        """Every object key named by a message seen so far."""
        return {key for letter in self.seen.values() for key in letter.keys}

    def new_messages(self) -> list[DeadLetter]:
        """One sweep over the queue; returns the messages not reported before."""
        new: list[DeadLetter] = []
        handles: list[str] = []
        try:
            while True:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=SQS_MESSAGES_PER_CALL,
                    WaitTimeSeconds=0,
                    VisibilityTimeout=PEEK_VISIBILITY_S,
                ).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    handles.append(message["ReceiptHandle"])
                    if message["MessageId"] not in self.seen:
                        keys, problem = keys_in_notification(message["Body"])
                        letter = DeadLetter(message["MessageId"], tuple(keys), problem)
                        self.seen[letter.message_id] = letter
                        new.append(letter)
        finally:
            self._release(handles)
        return new

    def _release(self, handles: list[str]) -> None:
        """Make the swept messages visible again."""
        for start in range(0, len(handles), SQS_MESSAGES_PER_CALL):
            entries = [
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for index, handle in enumerate(handles[start : start + SQS_MESSAGES_PER_CALL])
            ]
            try:
                self._sqs.change_message_visibility_batch(QueueUrl=self._queue_url, Entries=entries)
            except ClientError as error:  # e.g. the queue was deleted meanwhile: nothing left to release
                logger.warning("could not make dead-lettered messages visible again: %s", error)
