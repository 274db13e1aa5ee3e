"""The timeout guard: start no work that cannot finish, and persist, before Lambda's deadline."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class CaptionTimeEstimate:
    """Milliseconds one image adds to a caption call, learned from the calls this runtime made."""

    ms_per_image: float = 4000.0
    """Before any measurement: conservative for a 1–2 vCPU function on its first, coldest call."""

    def record(self, images: int, elapsed_ms: float) -> None:
        if images > 0:
            self.ms_per_image = elapsed_ms / images


@dataclass
class TimeGuard:
    remaining_ms: Callable[[], float]
    estimate: CaptionTimeEstimate
    reserve_ms: float = 2000.0
    """Kept for writing items and returning after the last caption call."""
    safety_factor: float = 1.5

    def images_that_fit(self, images: int) -> int:
        """How many of `images` one caption call can take and still leave the reserve."""
        available_ms = self.remaining_ms() - self.reserve_ms
        per_image_ms = self.estimate.ms_per_image * self.safety_factor
        if available_ms <= 0:
            return 0
        if per_image_ms <= 0:
            return images
        return max(0, min(images, math.floor(available_ms / per_image_ms)))

    def fits(self, images: int) -> bool:
        return self.images_that_fit(images) >= images


def no_deadline() -> float:
    return math.inf
