"""`python -m local caption`: upload files, let the workers caption them, print what became of each."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import TextIO

from rich.console import Console

from local.pipeline import LocalPipeline, PipelineSettings
from local.results import (
    CAPTIONED,
    FAILED,
    Outcome,
    ProgressDisplay,
    in_upload_order,
    results_json,
    results_table,
)
from local.uploader import Upload, upload_all


def peak_rss_mb() -> float:
    """This process's peak resident memory (emulator, function and model included)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def stall_timeout_s(settings: PipelineSettings) -> float:
    """How long to wait without any key being accounted for before giving up.

    A message may need every delivery (each up to a visibility timeout) before the DLQ takes it.
    """
    return max(120.0, 2.0 * settings.function_timeout_s * (settings.max_receive_count + 1))


def _upload(pipeline: LocalPipeline, uploads: Sequence[Upload], progress: ProgressDisplay) -> None:
    collector = pipeline.collector
    failures = upload_all(
        pipeline.deployment.client("s3"),
        pipeline.deployment.bucket,
        uploads,
        on_uploaded=lambda upload: collector.uploaded(upload.key),
    )
    for key, reason in failures.items():
        collector.settle(key, Outcome(key=key, status=FAILED, error=reason))
    progress.update([collector.outcomes[key] for key in failures])


def run_caption(
    uploads: Sequence[Upload], settings: PipelineSettings, *, as_json: bool, results: TextIO, status: Console
) -> int:
    """Caption `uploads` through the emulated pipeline; 0 when every one is accounted for."""
    keys = [upload.key for upload in uploads]
    with ExitStack() as stack:
        with status.status("Starting the emulator and loading the model…"):
            pipeline = stack.enter_context(LocalPipeline(settings))
        collector = pipeline.collector
        collector.expect(keys)
        started = time.monotonic()
        with ProgressDisplay(len(keys), status) as progress:
            # Upload in the background while results are counted, as files keep arriving in a bucket.
            uploading = threading.Thread(
                target=_upload, args=(pipeline, uploads, progress), name="uploads", daemon=True
            )
            uploading.start()
            complete = collector.wait(stall_timeout_s(settings), progress.update)
            uploading.join()
        seconds = time.monotonic() - started
    outcomes = in_upload_order(keys, collector.outcomes)
    if as_json:
        results.write(results_json(outcomes) + "\n")
    else:
        table_console = Console(file=results)
        if not table_console.is_terminal:  # piped or redirected: long rows stay on one line
            table_console.width = 240
        table_console.print(results_table(outcomes))
    results.flush()
    captioned = sum(1 for outcome in outcomes if outcome.status == CAPTIONED)
    status.print(
        f"{captioned} captioned, {len(outcomes) - captioned} failed, {len(outcomes)} uploaded; "
        f"{seconds:.1f} s from first upload to last result ({len(outcomes) / seconds:.2f} files/s) "
        f"with {settings.workers} worker(s); peak RSS {peak_rss_mb():.0f} MB",
        highlight=False,
        soft_wrap=True,
    )
    if not complete:
        status.print(f"[red]gave up: {len(collector.pending)} upload(s) not accounted for[/]")
        return 1
    return 0
