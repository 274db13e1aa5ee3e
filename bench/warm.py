"""Warm figures for a loaded pipeline: latency of one large JPEG, throughput of a batch of ten."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Protocol


class Pipeline(Protocol):
    def caption_jpeg(self, data: bytes) -> str: ...

    def caption_jpegs(self, blobs: list[bytes]) -> list[str]: ...


@dataclass(frozen=True)
class WarmFigures:
    latency_s: float
    latency_runs_s: list[float]
    batch_s: float
    batch_runs_s: list[float]
    batch_size: int
    large_caption: str
    batch_captions: list[str]

    @property
    def images_per_s(self) -> float:
        return self.batch_size / self.batch_s


def _timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def measure_warm(pipeline: Pipeline, large_jpeg: bytes, batch: list[bytes], repeats: int) -> WarmFigures:
    """One untimed warm-up of each workload, then the median of ``repeats`` timed runs."""
    large_caption = pipeline.caption_jpeg(large_jpeg)
    batch_captions = pipeline.caption_jpegs(batch)
    latency_runs = [_timed(lambda: pipeline.caption_jpeg(large_jpeg))[0] for _ in range(repeats)]
    batch_runs = [_timed(lambda: pipeline.caption_jpegs(batch))[0] for _ in range(repeats)]
    return WarmFigures(
        latency_s=statistics.median(latency_runs),
        latency_runs_s=latency_runs,
        batch_s=statistics.median(batch_runs),
        batch_runs_s=batch_runs,
        batch_size=len(batch),
        large_caption=large_caption,
        batch_captions=list(batch_captions),
    )
