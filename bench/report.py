"""Turn raw figures into ratios, a table, a chart and the JSON summary line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# (key, project figure, baseline figure, higher is better, target default, target reduced/half)
THROUGHPUT_TARGETS = {"throughput_ratio": 2.0, "throughput_ratio_reduced_precision": 4.0}
LOWER_IS_BETTER_TARGETS = {
    "latency_ratio": 0.9,
    "latency_ratio_reduced_precision": 0.5,
    "cold_start_bytes_ratio": 0.65,
    "cold_start_bytes_ratio_half_weights": 0.45,
    "peak_rss_ratio": 1.1,
}
RATIO_KEYS = (
    "throughput_ratio",
    "throughput_ratio_reduced_precision",
    "latency_ratio",
    "latency_ratio_reduced_precision",
    "cold_start_bytes_ratio",
    "cold_start_bytes_ratio_half_weights",
    "cold_start_seconds_ratio",
    "peak_rss_ratio",
)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 4)


def compute_ratios(raw: dict[str, Any]) -> dict[str, float | None]:
    """Project ÷ baseline for every figure; None where the baseline cold start was not measured."""
    warm = raw["warm"]
    cold = raw["cold_start"]
    baseline_cold = cold.get("baseline")
    cold_baseline_ok = baseline_cold is not None and raw.get("baseline_env", True)

    def cold_figure(name: str, key: str) -> float | None:
        entry = cold.get(name)
        return None if entry is None else entry[key]

    return {
        "throughput_ratio": _ratio(warm["project"]["images_per_s"], warm["baseline"]["images_per_s"]),
        "throughput_ratio_reduced_precision": _ratio(
            warm["project_reduced"]["images_per_s"], warm["baseline"]["images_per_s"]
        ),
        "latency_ratio": _ratio(warm["project"]["latency_s"], warm["baseline"]["latency_s"]),
        "latency_ratio_reduced_precision": _ratio(
            warm["project_reduced"]["latency_s"], warm["baseline"]["latency_s"]
        ),
        "cold_start_bytes_ratio": _ratio(
            cold_figure("project", "read_bytes"), cold_figure("baseline", "read_bytes")
        )
        if cold_baseline_ok
        else None,
        "cold_start_bytes_ratio_half_weights": _ratio(
            cold_figure("project_half_weights", "read_bytes"), cold_figure("baseline", "read_bytes")
        )
        if cold_baseline_ok
        else None,
        "cold_start_seconds_ratio": _ratio(
            cold_figure("project", "total_s"), cold_figure("baseline", "total_s")
        )
        if cold_baseline_ok
        else None,
        "peak_rss_ratio": _ratio(
            cold_figure("project", "peak_rss_bytes"), cold_figure("baseline", "peak_rss_bytes")
        ),
    }


def target_met(key: str, value: float | None) -> bool | None:
    if value is None:
        return None
    if key in THROUGHPUT_TARGETS:
        return value >= THROUGHPUT_TARGETS[key]
    if key in LOWER_IS_BETTER_TARGETS:
        return value <= LOWER_IS_BETTER_TARGETS[key]
    return None


def build_summary(raw: dict[str, Any]) -> dict[str, Any]:
    """The JSON object printed last: every ratio key, targets met, and the raw figures."""
    ratios = compute_ratios(raw)
    summary: dict[str, Any] = dict(ratios)
    summary["targets_met"] = {key: target_met(key, value) for key, value in ratios.items()}
    summary["cpu_model"] = raw["machine"]["cpu_model"]
    summary["threads"] = raw["machine"]["threads"]
    summary["reduced_precision"] = raw["reduced_precision"]
    summary["raw"] = raw
    return summary


def summary_line(summary: dict[str, Any]) -> str:
    return json.dumps(summary, separators=(",", ":"), sort_keys=False)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}{unit}" if abs(value) < 100 else f"{value:,.0f}{unit}"


def _fmt_bytes(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1e9:.3f} GB"


def render_table(summary: dict[str, Any]):
    """A rich Table: one row per figure, baseline vs project, the ratio and its target."""
    from rich.table import Table

    raw = summary["raw"]
    warm, cold = raw["warm"], raw["cold_start"]
    reduced = raw["reduced_precision"]
    baseline_cold = cold.get("baseline") or {}
    project_cold = cold.get("project") or {}
    half_cold = cold.get("project_half_weights") or {}
    table = Table(
        title=f"Captioning benchmark — {raw['machine']['cpu_model']}, {raw['machine']['threads']} threads"
    )
    for column in ("figure", "baseline", "project", "ratio", "target", "met"):
        table.add_column(column, justify="left" if column == "figure" else "right")

    def row(name: str, base: str, proj: str, key: str | None) -> None:
        value = summary.get(key) if key else None
        target = THROUGHPUT_TARGETS.get(key, LOWER_IS_BETTER_TARGETS.get(key)) if key else None
        met = summary["targets_met"].get(key) if key else None
        table.add_row(
            name,
            base,
            proj,
            "n/a" if value is None else f"{value:.3f}×",
            "" if target is None else (f"≥ {target}×" if key in THROUGHPUT_TARGETS else f"≤ {target}×"),
            {True: "yes", False: "NO", None: ""}[met],
        )

    row(
        "throughput, batch of 10 (img/s), fp32",
        _fmt(warm["baseline"]["images_per_s"]),
        _fmt(warm["project"]["images_per_s"]),
        "throughput_ratio",
    )
    row(
        f"throughput, batch of 10 (img/s), {reduced}",
        _fmt(warm["baseline"]["images_per_s"]),
        _fmt(warm["project_reduced"]["images_per_s"]),
        "throughput_ratio_reduced_precision",
    )
    row(
        "latency, one 12 MP JPEG (s), fp32",
        _fmt(warm["baseline"]["latency_s"]),
        _fmt(warm["project"]["latency_s"]),
        "latency_ratio",
    )
    row(
        f"latency, one 12 MP JPEG (s), {reduced}",
        _fmt(warm["baseline"]["latency_s"]),
        _fmt(warm["project_reduced"]["latency_s"]),
        "latency_ratio_reduced_precision",
    )
    row(
        "cold start: bytes read",
        _fmt_bytes(baseline_cold.get("read_bytes")),
        _fmt_bytes(project_cold.get("read_bytes")),
        "cold_start_bytes_ratio",
    )
    row(
        "cold start: bytes read, fp16-stored weights",
        _fmt_bytes(baseline_cold.get("read_bytes")),
        _fmt_bytes(half_cold.get("read_bytes")),
        "cold_start_bytes_ratio_half_weights",
    )
    row(
        "cold start: seconds to first caption",
        _fmt(baseline_cold.get("total_s")),
        _fmt(project_cold.get("total_s")),
        "cold_start_seconds_ratio",
    )
    for phase in ("import_s", "load_s", "first_inference_s"):
        row(
            f"  {phase.removesuffix('_s').replace('_', ' ')} (s)",
            _fmt(baseline_cold.get(phase)),
            _fmt(project_cold.get(phase)),
            None,
        )
    row(
        "peak RSS",
        _fmt_bytes(baseline_cold.get("peak_rss_bytes")),
        _fmt_bytes(project_cold.get("peak_rss_bytes")),
        "peak_rss_ratio",
    )
    return table


def draw_chart(summary: dict[str, Any], path: Path) -> None:
    """Bar chart of every ratio with its target; the baseline is 1.0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [key for key in RATIO_KEYS if summary.get(key) is not None]
    values = [summary[key] for key in keys]
    colors = []
    for key in keys:
        met = summary["targets_met"].get(key)
        colors.append({True: "#2a9d8f", False: "#e76f51", None: "#8d99ae"}[met])
    figure, axis = plt.subplots(figsize=(9, 4.8), dpi=110)
    positions = range(len(keys))
    axis.barh(list(positions), values, color=colors)
    for position, key, value in zip(positions, keys, values, strict=True):
        target = THROUGHPUT_TARGETS.get(key, LOWER_IS_BETTER_TARGETS.get(key))
        if target is not None:
            axis.plot([target, target], [position - 0.4, position + 0.4], color="black", linewidth=2)
        axis.text(max(value, target or 0), position, f"  {value:.2f}×", va="center", fontsize=9)
    axis.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    axis.set_yticks(list(positions))
    labels = [
        key.replace("_", " ")
        + ("  (higher is better)" if key in THROUGHPUT_TARGETS else "  (lower is better)")
        for key in keys
    ]
    axis.set_yticklabels(labels, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("project ÷ baseline (dashed: baseline = 1; black tick: target)")
    raw = summary["raw"]
    axis.set_title(
        f"Project vs original design (reduced precision = {raw['reduced_precision']})\n"
        f"{raw['machine']['cpu_model']}, {raw['machine']['threads']} threads",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def markdown_results(summary: dict[str, Any]) -> str:
    """The same rows as the rich table, as markdown (for the README)."""
    from rich.console import Console

    table = render_table(summary)
    console = Console(width=200, record=True)
    header = "| " + " | ".join(column.header for column in table.columns) + " |"
    rule = "| " + " | ".join("---" if index == 0 else "---:" for index in range(len(table.columns))) + " |"
    rows = []
    for row_index in range(table.row_count):
        cells = []
        for column in table.columns:
            cell = list(column.cells)[row_index]
            cells.append(console.render_str(str(cell)).plain.replace("|", "\\|"))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join([header, rule, *rows])


DEFAULT_RESULTS = Path(__file__).resolve().parent / "results.json"


def results_argument_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The command line shared by `python -m bench.report` and `python -m bench.sizing`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "results",
        nargs="?",
        type=Path,
        default=DEFAULT_RESULTS,
        help="a results.json written by `make bench` (default: bench/results.json)",
    )
    return parser


def read_results(parser: argparse.ArgumentParser, path: Path) -> dict[str, Any]:
    """The summary in ``path``, or a usage error naming what is wrong with the file."""
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        parser.error(f"{path}: no such file (run `make bench` first, or name a results.json)")
    except IsADirectoryError:
        parser.error(f"{path} is a directory; name a results.json file")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        parser.error(f"{path} is not a JSON file written by `make bench` ({error})")
    if not isinstance(summary, dict) or "raw" not in summary:
        parser.error(f"{path} is JSON but not a benchmark summary (no 'raw' figures)")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = results_argument_parser(
        "python -m bench.report", "Print a benchmark run's table as markdown (for docs/performance.md)."
    )
    args = parser.parse_args(argv)
    print(markdown_results(read_results(parser, args.results)))


if __name__ == "__main__":
    main()
