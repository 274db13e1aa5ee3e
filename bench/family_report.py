"""The families section of bench/results.json: per family, each pipeline's figures, ONNX ÷ torch (same
model) ratios, the issue's targets and whether each is met; a markdown table for docs/performance.md.

Keys of ``families.<family>`` (docs/performance.md, "Families: ONNX against torch, same model"):
- ``<pipeline>_cold_start_seconds``, ``_read_bytes``, ``_peak_rss_mb``, ``_images_per_s``,
  ``_latency_seconds`` for pipeline torch_fp32, onnx_fp32, onnx_int8 (medians over the rounds);
- ``onnx[_int8]_cold_start_seconds_ratio``, ``_cold_start_bytes_ratio``, ``_throughput_ratio``,
  ``_latency_ratio``, ``_peak_rss_ratio``: ONNX fp32 (``onnx_``) or int8 (``onnx_int8_``) ÷ torch fp32;
- for vit-gpt2 also ``onnx[_int8]_cold_start_seconds_ratio_vs_original_design``: ÷ the main benchmark's
  original-design cold start of the same model;
- ``targets`` and ``targets_met`` (None where a side was not measured), ``raw`` (every round's figures,
  the phases, captions, export seconds, notes).
"""

from __future__ import annotations

import statistics
from typing import Any

PIPELINES = ("torch_fp32", "onnx_fp32", "onnx_int8")
FIGURES = {
    "cold_start_seconds": "cold_start_s",
    "read_bytes": "read_bytes",
    "peak_rss_mb": "peak_rss_bytes",
    "images_per_s": "images_per_s",
    "latency_seconds": "latency_s",
}
"""Published figure -> the child's field (bench/family_child.py)."""
PHASES = ("import_s", "load_s", "first_inference_s", "batch_s")
# Ratio suffix -> the figure it divides (ONNX ÷ torch fp32 of the same model).
RATIOS = {
    "cold_start_seconds_ratio": "cold_start_seconds",
    "cold_start_bytes_ratio": "read_bytes",
    "throughput_ratio": "images_per_s",
    "latency_ratio": "latency_seconds",
    "peak_rss_ratio": "peak_rss_mb",
}
RATIO_PREFIXES = {"onnx_fp32": "onnx_", "onnx_int8": "onnx_int8_"}
HIGHER_IS_BETTER = {"onnx_throughput_ratio": 1.0, "onnx_int8_throughput_ratio": 1.5}
"""Issue 20 item 7's targets, every family."""
LOWER_IS_BETTER = {
    "onnx_cold_start_seconds_ratio": 0.35,
    "onnx_int8_cold_start_seconds_ratio": 0.2,
    "onnx_peak_rss_ratio": 1.0,
}
ORIGINAL_DESIGN_TARGETS = {
    "onnx_cold_start_seconds_ratio_vs_original_design": 0.30,
    "onnx_int8_cold_start_seconds_ratio_vs_original_design": 0.12,
}
"""The default model (vit-gpt2) against the original design's cold start."""
DEFAULT_FAMILY = "vit-gpt2"
MB = 2**20


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 4)


def median_figures(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """The median of each published figure and phase over a pipeline's rounds."""
    figures = {name: statistics.median(run[field] for run in rounds) for name, field in FIGURES.items()}
    figures["peak_rss_mb"] = figures["peak_rss_mb"] / MB  # unrounded: the ratio is of the measured bytes
    figures["read_bytes"] = int(figures["read_bytes"])
    for phase in PHASES:
        figures[phase] = statistics.median(run[phase] for run in rounds)
    return figures


def _met(key: str, value: float | None) -> bool | None:
    if value is None:
        return None
    if key in HIGHER_IS_BETTER:
        return value >= HIGHER_IS_BETTER[key]
    return value <= {**LOWER_IS_BETTER, **ORIGINAL_DESIGN_TARGETS}[key]


def family_summary(
    family: str,
    rounds: dict[str, list[dict[str, Any]]],
    *,
    original_design_cold_start_s: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``rounds``: pipeline -> the child's JSON of each round (pipelines not measured are absent)."""
    medians = {pipeline: median_figures(runs) for pipeline, runs in rounds.items() if runs}
    summary: dict[str, Any] = {}
    for pipeline in PIPELINES:
        for name in FIGURES:
            summary[f"{pipeline}_{name}"] = medians.get(pipeline, {}).get(name)
    torch = medians.get("torch_fp32", {})
    for pipeline, prefix in RATIO_PREFIXES.items():
        onnx = medians.get(pipeline, {})
        for suffix, name in RATIOS.items():
            summary[prefix + suffix] = ratio(onnx.get(name), torch.get(name))
    targets = {**HIGHER_IS_BETTER, **LOWER_IS_BETTER}
    if family == DEFAULT_FAMILY:
        for pipeline, prefix in RATIO_PREFIXES.items():
            key = f"{prefix}cold_start_seconds_ratio_vs_original_design"
            summary[key] = ratio(
                medians.get(pipeline, {}).get("cold_start_seconds"), original_design_cold_start_s
            )
        summary["original_design_cold_start_seconds"] = original_design_cold_start_s
        targets |= ORIGINAL_DESIGN_TARGETS
    summary["targets"] = targets
    summary["targets_met"] = {key: _met(key, summary.get(key)) for key in targets}
    summary["raw"] = {
        "phases_seconds": {p: {phase: m[phase] for phase in PHASES} for p, m in medians.items()},
        "rounds": rounds,
        **(extra or {}),
    }
    return summary


def _cell(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.3f}{unit}" if abs(value) < 100 else f"{value:,.0f}{unit}"


def markdown_families(families: dict[str, dict[str, Any]]) -> str:
    """One row per family and figure: torch fp32, ONNX fp32, ONNX int8, the two ratios, targets met."""
    lines = [
        "| family | figure | torch fp32 | ONNX fp32 | ONNX int8 | fp32 ratio | int8 ratio |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = (
        ("cold start (s)", "cold_start_seconds", "cold_start_seconds_ratio", 1),
        ("bytes read at cold start (MB)", "read_bytes", "cold_start_bytes_ratio", MB),
        ("throughput, batch of 10 (img/s)", "images_per_s", "throughput_ratio", 1),
        ("latency, one 12 MP JPEG, warm (s)", "latency_seconds", "latency_ratio", 1),
        ("peak RSS (MB)", "peak_rss_mb", "peak_rss_ratio", 1),
    )
    for family, summary in families.items():
        met = summary.get("targets_met", {})
        for label, figure, suffix, scale in rows:
            values = [summary.get(f"{p}_{figure}") for p in PIPELINES]
            cells = [_cell(None if v is None else v / scale) for v in values]
            ratios = []
            for prefix in RATIO_PREFIXES.values():
                key = prefix + suffix
                mark = {True: " (met)", False: " (MISSED)", None: ""}[met.get(key)]
                ratios.append(_cell(summary.get(key), "×") + mark)
            lines.append(f"| {family} | {label} | {' | '.join(cells)} | {' | '.join(ratios)} |")
        if "onnx_cold_start_seconds_ratio_vs_original_design" in summary:
            ratios = []
            for prefix in RATIO_PREFIXES.values():
                key = f"{prefix}cold_start_seconds_ratio_vs_original_design"
                mark = {True: " (met)", False: " (MISSED)", None: ""}[met.get(key)]
                ratios.append(_cell(summary.get(key), "×") + mark)
            original = _cell(summary.get("original_design_cold_start_seconds"))
            label = f"cold start vs the original design ({original} s)"
            lines.append(f"| {family} | {label} | | | | {' | '.join(ratios)} |")
    return "\n".join(lines)
