"""Turn raw figures into ratios, a table, a chart and the JSON summary line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

THROUGHPUT_TARGETS = {
    "throughput_ratio": 2.0,
    "throughput_ratio_reduced_precision": 4.0,
    "onnx_throughput_ratio": 4.0,
    "onnx_int8_throughput_ratio": 6.5,
}
LOWER_IS_BETTER_TARGETS = {
    "latency_ratio": 0.9,
    "latency_ratio_reduced_precision": 0.5,
    "cold_start_bytes_ratio": 0.65,
    "cold_start_bytes_ratio_half_weights": 0.45,
    "peak_rss_ratio": 1.1,
    "onnx_latency_ratio": 0.6,
    "onnx_int8_latency_ratio": 0.35,
    "onnx_cold_start_seconds_ratio": 0.40,
    "onnx_int8_cold_start_seconds_ratio": 0.25,
    "onnx_cold_start_bytes_ratio": 0.50,
    "onnx_int8_cold_start_bytes_ratio": 0.20,
    "onnx_peak_rss_ratio": 1.0,
    "image_libraries_bytes_ratio": 0.25,
}
# Ratio key -> (pipeline, figure): that pipeline's warm figure ÷ the baseline's.
WARM_RATIOS = {
    "throughput_ratio": ("project", "images_per_s"),
    "throughput_ratio_reduced_precision": ("project_reduced", "images_per_s"),
    "latency_ratio": ("project", "latency_s"),
    "latency_ratio_reduced_precision": ("project_reduced", "latency_s"),
    "onnx_throughput_ratio": ("onnx", "images_per_s"),
    "onnx_int8_throughput_ratio": ("onnx_int8", "images_per_s"),
    "onnx_latency_ratio": ("onnx", "latency_s"),
    "onnx_int8_latency_ratio": ("onnx_int8", "latency_s"),
}
# Ratio key -> (pipeline, figure): that pipeline's cold-start figure ÷ the baseline's. Seconds and bytes
# need the baseline's own environment (its torch wheel is what the original image read at start-up).
COLD_RATIOS_NEEDING_BASELINE_ENV = {
    "cold_start_bytes_ratio": ("project", "read_bytes"),
    "cold_start_bytes_ratio_half_weights": ("project_half_weights", "read_bytes"),
    "cold_start_seconds_ratio": ("project", "total_s"),
    "onnx_cold_start_seconds_ratio": ("onnx", "total_s"),
    "onnx_int8_cold_start_seconds_ratio": ("onnx_int8", "total_s"),
    "onnx_cold_start_bytes_ratio": ("onnx", "read_bytes"),
    "onnx_int8_cold_start_bytes_ratio": ("onnx_int8", "read_bytes"),
}
COLD_RATIOS = {
    "peak_rss_ratio": ("project", "peak_rss_bytes"),
    "onnx_peak_rss_ratio": ("onnx", "peak_rss_bytes"),
    "onnx_int8_peak_rss_ratio": ("onnx_int8", "peak_rss_bytes"),
}
RATIO_KEYS = (
    *WARM_RATIOS,
    *COLD_RATIOS_NEEDING_BASELINE_ENV,
    *COLD_RATIOS,
    "image_libraries_bytes_ratio",
)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 4)


def _figure(section: dict[str, Any], pipeline: str, figure: str) -> float | None:
    entry = section.get(pipeline)
    return None if entry is None else entry.get(figure)


def image_libraries_ratio(images: dict[str, Any] | None) -> float | None:
    """The onnx image's library layers ÷ the torch image's, when both images were measured."""
    library = (images or {}).get("library_bytes") or {}
    return _ratio(library.get("onnx"), library.get("torch"))


def compute_ratios(raw: dict[str, Any]) -> dict[str, float | None]:
    """Pipeline ÷ baseline for every figure; None where a side was not measured (no ONNX export, no
    baseline environment for cold-start seconds and bytes, no Docker for the image figures)."""
    warm, cold = raw["warm"], raw["cold_start"]
    cold_baseline_ok = "baseline" in cold and raw.get("baseline_env", True)
    ratios: dict[str, float | None] = {}
    for key, (pipeline, figure) in WARM_RATIOS.items():
        ratios[key] = _ratio(_figure(warm, pipeline, figure), _figure(warm, "baseline", figure))
    for key, (pipeline, figure) in COLD_RATIOS_NEEDING_BASELINE_ENV.items():
        value = _ratio(_figure(cold, pipeline, figure), _figure(cold, "baseline", figure))
        ratios[key] = value if cold_baseline_ok else None
    for key, (pipeline, figure) in COLD_RATIOS.items():
        ratios[key] = _ratio(_figure(cold, pipeline, figure), _figure(cold, "baseline", figure))
    ratios["image_libraries_bytes_ratio"] = image_libraries_ratio(raw.get("images"))
    return ratios


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


def _table_rows(summary: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    """(figure, baseline, project, ratio key) for every row of the table, in order."""
    raw = summary["raw"]
    warm, cold = raw["warm"], raw["cold_start"]
    reduced = raw["reduced_precision"]
    pipelines = {
        "project": "fp32",
        "project_reduced": reduced,
        "onnx": "ONNX fp32",
        "onnx_int8": "ONNX int8",
    }
    rows: list[tuple[str, str, str, str | None]] = []
    for figure, label, formatter in (
        ("images_per_s", "throughput, batch of 10 (img/s)", _fmt),
        ("latency_s", "latency, one 12 MP JPEG (s)", _fmt),
    ):
        for pipeline, name in pipelines.items():
            if pipeline in warm:
                key = next(k for k, v in WARM_RATIOS.items() if v == (pipeline, figure))
                rows.append(
                    (
                        f"{label}, {name}",
                        formatter(_figure(warm, "baseline", figure)),
                        formatter(_figure(warm, pipeline, figure)),
                        key,
                    )
                )
    cold_names = {
        "project": "fp32",
        "project_half_weights": "fp16-stored weights",
        "onnx": "ONNX fp32",
        "onnx_int8": "ONNX int8",
    }
    cold_keys = {**COLD_RATIOS_NEEDING_BASELINE_ENV, **COLD_RATIOS}
    for figure, label, formatter in (
        ("total_s", "cold start: seconds to first caption", _fmt),
        ("read_bytes", "cold start: bytes read", _fmt_bytes),
        ("peak_rss_bytes", "peak RSS", _fmt_bytes),
    ):
        for pipeline, name in cold_names.items():
            key = next((k for k, v in cold_keys.items() if v == (pipeline, figure)), None)
            if pipeline in cold and (key is not None or figure == "total_s"):
                rows.append(
                    (
                        f"{label}, {name}",
                        formatter(_figure(cold, "baseline", figure)),
                        formatter(_figure(cold, pipeline, figure)),
                        key,
                    )
                )
        if figure == "total_s":
            for pipeline, name in {"baseline": "baseline", **cold_names}.items():
                if pipeline in cold and pipeline != "project_half_weights":
                    phases = " / ".join(
                        _fmt(_figure(cold, pipeline, phase))
                        for phase in ("import_s", "load_s", "first_inference_s")
                    )
                    if pipeline == "baseline":
                        rows.append(("  import / load / first inference (s), baseline", phases, "", None))
                    else:
                        rows.append((f"  import / load / first inference (s), {name}", "", phases, None))
    library = ((raw.get("images") or {}).get("library_bytes")) or {}
    if library:
        rows.append(
            (
                "image library layers (baseline column: torch image)",
                _fmt_bytes(library.get("torch")),
                _fmt_bytes(library.get("onnx")),
                "image_libraries_bytes_ratio",
            )
        )
    return rows


def render_table(summary: dict[str, Any]):
    """A rich Table: one row per figure, baseline vs project, the ratio and its target."""
    from rich.table import Table

    raw = summary["raw"]
    table = Table(
        title=f"Captioning benchmark — {raw['machine']['cpu_model']}, {raw['machine']['threads']} threads"
    )
    for column in ("figure", "baseline", "project", "ratio", "target", "met"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for name, base, proj, key in _table_rows(summary):
        value = summary.get(key) if key else None
        target = THROUGHPUT_TARGETS.get(key, LOWER_IS_BETTER_TARGETS.get(key)) if key else None
        met = summary["targets_met"].get(key) if key else None
        table.add_row(
            name,
            base,
            proj,
            "" if key is None else ("n/a" if value is None else f"{value:.3f}×"),
            "" if target is None else (f"≥ {target}×" if key in THROUGHPUT_TARGETS else f"≤ {target}×"),
            {True: "yes", False: "NO", None: ""}[met],
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
    figure, axis = plt.subplots(figsize=(9, 1.6 + 0.3 * len(keys)), dpi=110)
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


IMAGE_CONFIGURATIONS = {
    "torch": ("torch", "fp32"),
    "torch_int8": ("torch", "int8"),
    "onnx": ("onnx", "fp32"),
    "onnx_int8": ("onnx", "int8"),
}


def markdown_images(summary: dict[str, Any]) -> str:
    """The function images side by side: sizes, layers, INIT, smallest memory, per-image times."""
    images = summary["raw"].get("images") or {}
    if not images.get("available"):
        return f"Function images not measured: {images.get('note', 'no image figures in this run')}."
    facts = images.get("images", {})
    lines = [
        "| image | size | base | libraries | model (as built) | code |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for runtime, image in facts.items():
        groups = image.get("layer_groups") or {}
        lines.append(
            f"| `{image['tag']}` (runtime {runtime}) | {_fmt_bytes(image['bytes'])} "
            f"| {_fmt_bytes(groups.get('base'))} | {_fmt_bytes(groups.get('libraries'))} "
            f"| {_fmt_bytes(groups.get('model'))} | {_fmt_bytes(groups.get('code'))} |"
        )
    lines += [
        "",
        "| runtime, precision | INIT (s) | smallest memory that does not run out | "
        "s/image batch 10 at 1,769 MB | at 3,538 MB | 12 MP latency at 1,769 MB | at 3,538 MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, (runtime, precision) in IMAGE_CONFIGURATIONS.items():
        if name not in images.get("lambda_sizes", {}):
            continue
        init = (images.get("init", {}).get(name) or {}).get("init_s")
        smallest = images.get("smallest_memory_mb", {}).get(name)
        runs = {run["memory_mb"]: run for run in images["lambda_sizes"][name]}

        def cell(memory_mb: int, figure: str, runs: dict = runs) -> str:
            run = runs.get(memory_mb)
            if run is None:
                return "not run"
            if figure not in run:
                return "OOM" if run.get("oom_killed") else "timed out" if run.get("timed_out") else "failed"
            return f"{run[figure]:.2f}"

        lines.append(
            f"| {runtime}, {precision} | {_fmt(init)} "
            f"| {'none measured' if smallest is None else f'{smallest:,} MB'} "
            f"| {cell(1769, 'seconds_per_image_batch10')} | {cell(3538, 'seconds_per_image_batch10')} "
            f"| {cell(1769, 'latency_s')} | {cell(3538, 'latency_s')} |"
        )
    return "\n".join(lines)


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
    summary = read_results(parser, args.results)
    print(markdown_results(summary))
    print()
    print(markdown_images(summary))
    if summary.get("families"):
        from bench.family_report import markdown_families

        print()
        print(markdown_families(summary["families"]))


if __name__ == "__main__":
    main()
