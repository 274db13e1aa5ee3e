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


def _timed(call, *arguments) -> float:
    started = time.perf_counter()
    call(*arguments)
    return time.perf_counter() - started


def measure_warm_interleaved(
    pipelines: dict[str, Pipeline], large_jpeg: bytes, batch: list[bytes], repeats: int
) -> dict[str, WarmFigures]:
    """One untimed warm-up of each workload per pipeline, then ``repeats`` rounds in which every
    pipeline runs each workload once, in turn; the median of the rounds is reported.

    Interleaving puts every pipeline under the same background load, whatever it does meanwhile.
    """
    large_captions = {name: pipeline.caption_jpeg(large_jpeg) for name, pipeline in pipelines.items()}
    batch_captions = {name: pipeline.caption_jpegs(batch) for name, pipeline in pipelines.items()}
    latency_runs: dict[str, list[float]] = {name: [] for name in pipelines}
    batch_runs: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(repeats):
        for name, pipeline in pipelines.items():
            latency_runs[name].append(_timed(pipeline.caption_jpeg, large_jpeg))
    for _ in range(repeats):
        for name, pipeline in pipelines.items():
            batch_runs[name].append(_timed(pipeline.caption_jpegs, batch))
    return {
        name: WarmFigures(
            latency_s=statistics.median(latency_runs[name]),
            latency_runs_s=latency_runs[name],
            batch_s=statistics.median(batch_runs[name]),
            batch_runs_s=batch_runs[name],
            batch_size=len(batch),
            large_caption=large_captions[name],
            batch_captions=list(batch_captions[name]),
        )
        for name in pipelines
    }
