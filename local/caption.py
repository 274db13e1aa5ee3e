"""`python -m local caption`: upload files, let the workers caption them, print what became of each."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import TextIO

from rich.console import Console

from captioning.contract.constants import ItemStatus
from local.emulated_pipeline import EmulatedPipeline
from local.rendering import ProgressDisplay, print_results
from local.settings import DEMO_MODEL_HINT, LocalSettings
from local.tracking import SKIPPED, KeyResult, ResultTracker, in_upload_order
from local.uploader import Upload, upload_all


def peak_rss_mb() -> float:
    """This process's peak resident memory (emulator, function and model included)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _upload(pipeline: EmulatedPipeline, uploads: Sequence[Upload], progress: ProgressDisplay) -> None:
    tracker = pipeline.tracker
    failures = upload_all(
        pipeline.resources.client("s3"),
        pipeline.resources.bucket,
        uploads,
        on_uploaded=lambda upload: tracker.uploaded(upload.key),
    )
    for key, reason in failures.items():
        tracker.settle(key, KeyResult(key=key, status=ItemStatus.FAILED, error=reason))
    progress.update([tracker.results[key] for key in failures])


def _settle_skipped(tracker: ResultTracker, skipped: dict[str, str], progress: ProgressDisplay) -> None:
    for key, reason in skipped.items():
        tracker.settle(key, KeyResult(key=key, status=SKIPPED, error=reason))
    progress.update([tracker.results[key] for key in skipped])


def run_caption(
    uploads: Sequence[Upload], settings: LocalSettings, *, results: TextIO, status: Console
) -> int:
    """Caption `uploads` through the emulated pipeline; 0 when every one is accounted for.

    A file the deployed notification's key filters would not deliver is not uploaded: it is reported
    as skipped, with the reason (--all-keys captions it anyway).
    """
    keys = [upload.key for upload in uploads]
    skipped = {key: reason for key in keys if (reason := settings.skip_reason(key)) is not None}
    to_upload = [upload for upload in uploads if upload.key not in skipped]
    with ExitStack() as stack:
        with status.status("Starting the emulator and loading the model…"):
            pipeline = stack.enter_context(EmulatedPipeline(settings))
        tracker = pipeline.tracker
        tracker.expect(upload.key for upload in to_upload)
        started = time.monotonic()
        with ProgressDisplay(len(keys), status) as progress:
            _settle_skipped(tracker, skipped, progress)
            # Upload in the background while results are counted, as files keep arriving in a bucket.
            uploading = threading.Thread(
                target=_upload, args=(pipeline, to_upload, progress), name="uploads", daemon=True
            )
            uploading.start()
            complete = tracker.wait(settings.stall_timeout_s, progress.update)
            uploading.join()
        seconds = time.monotonic() - started
    outcomes = in_upload_order(keys, tracker.results)
    print_results(outcomes, results, as_json=settings.as_json)
    captioned = sum(1 for outcome in outcomes if outcome.status == ItemStatus.CAPTIONED)
    failed = sum(1 for outcome in outcomes if outcome.status == ItemStatus.FAILED)
    uploaded = len(outcomes) - len(skipped)
    status.print(
        f"{captioned} captioned, {failed} failed, {uploaded} uploaded"
        + (f", {len(skipped)} skipped (key filters; --all-keys captions them)" if skipped else "")
        + f"; {seconds:.1f} s from first upload to last result ({uploaded / seconds:.2f} files/s) "
        f"with {settings.workers} worker(s); peak RSS {peak_rss_mb():.0f} MB",
        highlight=False,
        soft_wrap=True,
    )
    if settings.uses_demo_model:
        status.print(DEMO_MODEL_HINT, highlight=False, soft_wrap=True, style="dim")
    if not complete:
        status.print(f"[red]gave up: {len(tracker.pending)} upload(s) not accounted for[/]")
        return 1
    return 0
