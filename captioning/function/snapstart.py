"""SnapStart runtime hooks: what the snapshot holds, and what each environment restored from it renews.

With SnapStart on, Lambda runs the INIT once, when a version is published; then the runtime (awslambdaric's
bootstrap, because AWS_LAMBDA_INITIALIZATION_TYPE is "snap-start") runs the hooks registered with
snapshot_restore_py before the snapshot is taken, and in every environment restored from it the
after-restore hooks, before that environment's first invocation. With SnapStart off nothing calls them:
registering is appending to two lists.

- Before the snapshot: one caption of a small synthetic image, so the snapshot holds a model that has
  captioned (ONNX Runtime's arenas grown, torch's kernels chosen, the code paths imported) and the first
  real invocation after a restore does not pay for it. It calls the captioner only: no AWS call, no trace
  segment, no metric, and the caption-time estimate keeps its cold default (a warm-up's time on the
  publishing host is no measure of a restored environment's first call).
- After a restore: new boto3 clients (credentials and connection pools are per environment; the INIT's
  were resolved where the snapshot was made) and a fresh seed for `random` (botocore's retry jitter draws
  from it; every environment restored from one snapshot would draw the same sequence). uuid4 and
  random.SystemRandom read the kernel's entropy and need nothing.

snapshot_restore_py is imported unconditionally: it is pinned in both image requirement files and is a
dependency of the runtime interface client itself, so its absence is a broken image, which should fail
the INIT loudly rather than publish a snapshot that restores with the INIT's clients.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image
from snapshot_restore_py import register_after_restore, register_before_snapshot

if TYPE_CHECKING:
    from captioning.function.processing import CaptionHandler

WARM_UP_IMAGE_SIZE = (64, 64)
"""The warm-up image's size: the captioner resizes every image to the model's input anyway."""


def warm_up_image() -> Image.Image:
    """A small synthetic image (a grey gradient): something to caption that no one uploaded."""
    return Image.linear_gradient("L").convert("RGB").resize(WARM_UP_IMAGE_SIZE)


@dataclass
class SnapStartHooks:
    """The function's two runtime hooks, and what they did (for logs and tests)."""

    function: CaptionHandler
    warm_up_ms: float | None = None
    restores: int = 0

    def before_snapshot(self) -> None:
        started = time.monotonic()
        self.function.captioner.caption([warm_up_image()])
        self.warm_up_ms = (time.monotonic() - started) * 1000
        self.function.logger.info(
            "warm-up caption before the snapshot", extra={"warm_up_ms": round(self.warm_up_ms)}
        )

    def after_restore(self) -> None:
        started = time.monotonic()
        self.function.renew_clients()
        random.seed()  # from os.urandom: this environment's own entropy, not the snapshot's
        self.restores += 1
        self.function.logger.info(
            "environment restored from a snapshot",
            extra={"after_restore_ms": round((time.monotonic() - started) * 1000)},
        )


def register(function: CaptionHandler) -> SnapStartHooks:
    """Register the function's hooks with snapshot_restore_py (the runtime calls them, or never)."""
    hooks = SnapStartHooks(function)
    register_before_snapshot(hooks.before_snapshot)
    register_after_restore(hooks.after_restore)
    return hooks
