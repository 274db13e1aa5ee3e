"""`python -m local serve`: keep the emulated pipeline up so people can drop files in with their own tools.

Prints a line per caption item as it lands and per message parked in the dead-letter queue (which
stays readable: see local/dead_letters.py), and leaves its endpoints in a state file for
`python -m ops --local` (ops/serve_state.py).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from contextlib import ExitStack
from types import FrameType
from typing import TextIO

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from local.emulated_pipeline import EmulatedPipeline
from local.rendering import dead_letter_line, item_line
from local.resources import EmulatedResources, ResourceNames
from local.settings import DEMO_MODEL_HINT, LocalSettings, suffixes_text
from local.tracking import NewItemsWatcher
from ops import serve_state
from ops.aws import MOTO_CREDENTIALS, SQS_MESSAGES_PER_CALL

WATCH_INTERVAL_S = 1.0

logger = logging.getLogger(__name__)


def connection_help(resources: EmulatedResources, settings: LocalSettings) -> str:
    """Where things are and the AWS CLI lines that upload a photo and read its caption back."""
    cli = f"aws --endpoint-url {resources.endpoint_url}"
    variables = {**MOTO_CREDENTIALS, "AWS_DEFAULT_REGION": resources.region}
    credentials = "export " + " ".join(f"{name}={value}" for name, value in variables.items())
    key = '\'{"key": {"S": "photo.jpg"}}\''
    if not settings.delivers_every_key:
        suffixes = suffixes_text(settings.key_suffixes) or "any"
        delivered = f"keys starting with {settings.key_prefix!r}, " if settings.key_prefix else "keys "
        filters = (
            f"  captioned          {delivered}ending with {suffixes} (as deployed; --all-keys: every key)"
        )
    else:
        filters = "  captioned          every key (--all-keys)"
    return "\n".join(
        [
            "Local captioning pipeline running. Ctrl-C stops it.",
            f"  endpoint           {resources.endpoint_url}",
            f"  region             {resources.region}",
            f"  bucket             {resources.bucket}",
            f"  table              {resources.table}",
            f"  queue              {resources.queue_url}",
            f"  dead-letter queue  {resources.dead_letter_queue_url}",
            f"  trigger            {_trigger_text(resources)}",
            *(
                [f"  caption events     {resources.caption_events_queue_url}"]
                if resources.caption_events_queue_url
                else []
            ),
            filters,
            "",
            "Try it (moto accepts any credentials):",
            f"  {credentials}",
            f"  {cli} s3 cp photo.jpg s3://{resources.bucket}/",
            f"  {cli} dynamodb get-item --table-name {resources.table} --key {key}",
            f"  {cli} dynamodb scan --table-name {resources.table}",
            "Read the dead-letter queue (events that failed every delivery):",
            f"  {cli} sqs receive-message --queue-url {resources.dead_letter_queue_url} "
            f"--attribute-names All --max-number-of-messages {SQS_MESSAGES_PER_CALL}",
            "",
        ]
    )


def _trigger_text(resources: EmulatedResources) -> str:
    if resources.trigger == "eventbridge":
        return (
            f"eventbridge: bucket EventBridge notifications -> rule {ResourceNames().uploads_rule} "
            "(default bus) -> queue"
        )
    return "queue: bucket notification -> queue"


def state_of(resources: EmulatedResources, settings: LocalSettings) -> dict[str, object]:
    """What `python -m ops --local` needs to find this pipeline (keys: ops.serve_state.KEYS)."""
    filtered = not settings.delivers_every_key
    return {
        "endpoint_url": resources.endpoint_url,
        "region": resources.region,
        "bucket": resources.bucket,
        "table": resources.table,
        "queue_url": resources.queue_url,
        "dead_letter_queue_url": resources.dead_letter_queue_url,
        "trigger": resources.trigger,
        "key_prefix": settings.key_prefix if filtered else "",
        "key_suffixes": list(settings.key_suffixes) if filtered else [],
        "pid": os.getpid(),
    }


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class _Watch:
    """One look for new items and dead letters per call; an AWS error is reported once, not raised,
    so the endpoint stays up (e.g. someone deleted the table: the function's writes fail until it is back)."""

    def __init__(self, pipeline: EmulatedPipeline, results: TextIO, status: Console) -> None:
        self._watcher = NewItemsWatcher(pipeline.resources, pipeline.function.retry_reasons)
        self._resources = pipeline.resources
        self._reasons = pipeline.function.retry_reasons
        self._results = results
        self._status = status
        self._problem: str | None = None

    def once(self) -> None:
        lines: list[str] = []
        try:
            lines += [item_line(result) for result in self._watcher.new_items()]
            lines += [
                dead_letter_line(letter, self._resources.max_receive_count, self._reasons)
                for letter in self._watcher.new_dead_letters()
            ]
        except (ClientError, BotoCoreError) as error:
            self._report(_describe(error, self._resources))
        else:
            self._report(None)
        for line in lines:
            self._results.write(line + "\n")
        self._results.flush()

    def _report(self, problem: str | None) -> None:
        if problem == self._problem:
            return
        if problem is not None:
            self._status.print(f"[red]{problem}[/]", highlight=False, soft_wrap=True)
        else:
            self._status.print("[green]the emulator's resources answer again; watching for captions[/]")
        self._problem = problem


def _describe(error: Exception, resources: EmulatedResources) -> str:
    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
    if code == "ResourceNotFoundException":
        return (
            f"the captions table {resources.table} no longer exists (deleted?): the function's writes fail "
            "and uploads end in the dead-letter queue. Recreate it (hash key `key`, type S) or restart "
            "`python -m local serve`. Still serving."
        )
    if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
        queue = resources.dead_letter_queue_url
        return f"the dead-letter queue {queue} no longer exists (deleted?). Still serving."
    return f"cannot read the emulator's table or dead-letter queue: {error}. Still serving."


def run_serve(settings: LocalSettings, *, results: TextIO, status: Console) -> int:
    """Run until Ctrl-C (SIGINT) or SIGTERM, printing each caption as it lands; 0 on a clean stop."""
    # Installed explicitly: a process started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with ExitStack() as stack:
            with status.status("Starting the emulator and loading the model…"):
                pipeline = stack.enter_context(EmulatedPipeline(settings))
            # The state file first: once the banner is out, `python -m ops --local` finds this pipeline.
            state_file = serve_state.write(state_of(pipeline.resources, settings))
            stack.callback(serve_state.remove, state_file, pid=os.getpid())
            results.write(connection_help(pipeline.resources, settings) + "\n")
            results.flush()
            if settings.uses_demo_model:
                status.print(DEMO_MODEL_HINT, highlight=False, soft_wrap=True, style="dim")
            watch = _Watch(pipeline, results, status)
            while True:
                watch.once()
                time.sleep(WATCH_INTERVAL_S)
    except KeyboardInterrupt:
        # Leaving the `with` stopped the workers (a batch in flight gets a few seconds) and the server.
        status.print("stopped")
        return 0
