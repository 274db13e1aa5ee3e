"""`python -m local serve`: keep the emulated pipeline up so people can drop files in with their own tools."""

from __future__ import annotations

import os
import signal
import time
from contextlib import ExitStack
from types import FrameType
from typing import TextIO

from rich.console import Console

from local import serve_state
from local.emulator import DUMMY_CREDENTIALS, Deployment
from local.pipeline import LocalPipeline, PipelineSettings
from local.results import CAPTIONED, TableWatcher

WATCH_INTERVAL_S = 1.0


def connection_help(deployment: Deployment) -> str:
    """Where things are and the AWS CLI lines that upload a photo and read its caption back."""
    endpoint = deployment.endpoint_url
    cli = f"aws --endpoint-url {endpoint}"
    return "\n".join(
        [
            "Local captioning pipeline running. Ctrl-C stops it.",
            f"  endpoint           {endpoint}",
            f"  region             {deployment.region}",
            f"  bucket             {deployment.bucket}",
            f"  table              {deployment.table}",
            f"  queue              {deployment.queue_url}",
            f"  dead-letter queue  {deployment.dead_letter_queue_url}",
            "",
            "Try it (moto accepts any credentials):",
            f"  export AWS_ACCESS_KEY_ID={DUMMY_CREDENTIALS['AWS_ACCESS_KEY_ID']} "
            f"AWS_SECRET_ACCESS_KEY={DUMMY_CREDENTIALS['AWS_SECRET_ACCESS_KEY']} AWS_DEFAULT_REGION={deployment.region}",
            f"  {cli} s3 cp photo.jpg s3://{deployment.bucket}/",
            f'  {cli} dynamodb get-item --table-name {deployment.table} --key \'{{"key": {{"S": "photo.jpg"}}}}\'',
            f"  {cli} dynamodb scan --table-name {deployment.table}",
            "",
        ]
    )


def state_of(deployment: Deployment) -> dict[str, object]:
    """What `python -m ops --local` needs to find this pipeline (see local/serve_state.py)."""
    return {
        "endpoint_url": deployment.endpoint_url,
        "region": deployment.region,
        "bucket": deployment.bucket,
        "table": deployment.table,
        "queue_url": deployment.queue_url,
        "dead_letter_queue_url": deployment.dead_letter_queue_url,
        "trigger": "queue",
        "key_prefix": "",
        "key_suffixes": [],
        "pid": os.getpid(),
    }


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_serve(settings: PipelineSettings, *, results: TextIO, status: Console) -> int:
    """Run until Ctrl-C (SIGINT) or SIGTERM, printing each caption as it lands; 0 on a clean stop."""
    # Installed explicitly: a process started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with ExitStack() as stack:
            with status.status("Starting the emulator and loading the model…"):
                pipeline = stack.enter_context(LocalPipeline(settings))
            results.write(connection_help(pipeline.deployment) + "\n")
            results.flush()
            state_file = serve_state.write(state_of(pipeline.deployment))
            stack.callback(serve_state.remove, state_file, pid=os.getpid())
            watcher = TableWatcher(pipeline.deployment, pipeline.retry_reasons.by_key)
            while True:
                for outcome in watcher.poll():
                    text = outcome.caption if outcome.status == CAPTIONED else outcome.error
                    results.write(f"{outcome.status:<10} {outcome.key}  {text}\n")
                    results.flush()
                time.sleep(WATCH_INTERVAL_S)
    except KeyboardInterrupt:
        # Leaving the `with` stopped the workers (a batch in flight gets a few seconds) and the server.
        status.print("stopped")
        return 0
