"""Lambda sizing and cost per 1,000 images from a benchmark run: `python -m bench.sizing [results.json]`.

Prints markdown, one table per pipeline. Lambda gives CPU in proportion to memory (1,769 MB = one full
vCPU). Rows are of three kinds, each labelled:
- **measured**: the function image run with `docker run --cpus memory/1769 --memory M` (bench/container.py),
  per-image times taken inside it;
- **OOM**: that run was killed for running out of memory (the size cannot work);
- **extrapolated**: the warm figures measured on 2 full cores, stretched where the size gets less CPU
  than that; above 2 vCPUs' worth (3,538 MB) no speed-up is assumed (not measurable on a 2-core
  machine), so those costs are upper bounds.
"""

from __future__ import annotations

from ops.plan import MB_PER_FULL_VCPU, seconds_at, vcpus_for
from ops.prices import PRICES

# AWS Lambda on-demand prices, US East (N. Virginia), first pricing tier: their one home is ops/prices.py
# (where and when they were read); the CPU-share arithmetic is the planner's (ops/plan.py).
PRICE_PER_GB_SECOND = {architecture: prices.duration_gb_s for architecture, prices in PRICES.items()}
PRICE_PER_REQUEST = PRICES["x86_64"].request
MEMORY_SIZES_MB = (2048, 3008, 3538, 4096, 6144, 10240)
# Warm pipeline -> (label, the image configuration measured for it in bench/container.py).
PIPELINES = {
    "baseline": ("baseline (original design)", None),
    "project": ("project, PyTorch fp32", "torch"),
    "project_reduced": ("project, PyTorch {reduced}", "torch_{reduced}"),
    "onnx": ("project, ONNX Runtime fp32", "onnx"),
    "onnx_int8": ("project, ONNX Runtime int8", "onnx_int8"),
}
__all__ = ["MB_PER_FULL_VCPU", "PRICE_PER_GB_SECOND", "PRICE_PER_REQUEST", "seconds_at", "vcpus_for"]


def cost_per_thousand(
    memory_mb: int, seconds_per_image: float, images_per_request: int, architecture: str
) -> float:
    gb_seconds = memory_mb / 1024 * seconds_per_image * 1000
    requests = 1000 / images_per_request
    return gb_seconds * PRICE_PER_GB_SECOND[architecture] + requests * PRICE_PER_REQUEST


def _row(memory_mb: int, one: float | None, ten: float | None, source: str) -> dict:
    row = {
        "memory_mb": memory_mb,
        "vcpus": vcpus_for(memory_mb),
        "cpu_share": memory_mb / MB_PER_FULL_VCPU,
        "seconds_batch1": one,
        "seconds_batch10": ten,
        "source": source,
    }
    for arch in PRICE_PER_GB_SECOND:
        for size, seconds in ((1, one), (10, ten)):
            row[f"cost_{arch}_batch{size}"] = (
                None if seconds is None else cost_per_thousand(memory_mb, seconds, size, arch)
            )
    return row


def sizing_rows(
    batch1_seconds: float, batch10_seconds_per_image: float, measured: list[dict] | None = None
) -> list[dict]:
    """Measured rows where the image was run at that size (OOM rows where it ran out), extrapolated
    rows for the standard sizes that were not measured."""
    by_size = {run["memory_mb"]: run for run in measured or []}
    rows = []
    for memory_mb in sorted(set(MEMORY_SIZES_MB) | set(by_size)):
        run = by_size.get(memory_mb)
        if run is not None and "batch_s" in run:
            rows.append(_row(memory_mb, run["latency_s"], run["seconds_per_image_batch10"], "measured"))
        elif run is not None:
            source = "OOM" if run.get("oom_killed") else "timed out" if run.get("timed_out") else "failed"
            rows.append(_row(memory_mb, None, None, source))
        else:
            one = seconds_at(memory_mb, batch1_seconds)
            ten = seconds_at(memory_mb, batch10_seconds_per_image)
            rows.append(_row(memory_mb, one, ten, "extrapolated"))
    return rows


def _cell(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown_table(
    label: str,
    batch1_seconds: float,
    batch10_seconds_per_image: float,
    measured: list[dict] | None = None,
    smallest_mb: int | None = None,
) -> str:
    heading = (
        f"**{label}** (warm, 2 full cores: {batch1_seconds:.3f} s for one 12 MP image, "
        f"{batch10_seconds_per_image:.3f} s per image in a batch of 10"
    )
    if measured:
        heading += (
            f"; smallest measured memory that does not run out: "
            f"{'none of those measured' if smallest_mb is None else f'{smallest_mb:,} MB'}"
        )
    lines = [
        heading + ")",
        "",
        "| memory (MB) | vCPUs | CPU share (vCPU) | row | s/image, batch 1 | s/image, batch 10 "
        "| $/1,000 images x86, batch 1 | x86, batch 10 | arm64, batch 1 | arm64, batch 10 |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in sizing_rows(batch1_seconds, batch10_seconds_per_image, measured):
        lines.append(
            f"| {row['memory_mb']:,} | {row['vcpus']} | {row['cpu_share']:.2f} | {row['source']} "
            f"| {_cell(row['seconds_batch1'], 2)} | {_cell(row['seconds_batch10'], 2)} "
            f"| {_cell(row['cost_x86_64_batch1'], 4)} | {_cell(row['cost_x86_64_batch10'], 4)} "
            f"| {_cell(row['cost_arm64_batch1'], 4)} | {_cell(row['cost_arm64_batch10'], 4)} |"
        )
    return "\n".join(lines)


def sizing_markdown(summary: dict) -> str:
    """Every pipeline's table from a benchmark summary (results.json)."""
    raw = summary["raw"]
    warm, reduced = raw["warm"], raw["reduced_precision"]
    images = raw.get("images") or {}
    lambda_sizes = images.get("lambda_sizes") or {}
    smallest = images.get("smallest_memory_mb") or {}
    tables = []
    for key, (label, configuration) in PIPELINES.items():
        if key not in warm:
            continue
        configuration = configuration and configuration.format(reduced=reduced)
        figures = warm[key]
        tables.append(
            markdown_table(
                label.format(reduced=reduced),
                figures["latency_s"],
                figures["batch_s"] / figures["batch_size"],
                lambda_sizes.get(configuration),
                smallest.get(configuration),
            )
        )
    return "\n\n".join(tables)


def main(argv: list[str] | None = None) -> None:
    from bench.report import read_results, results_argument_parser

    parser = results_argument_parser(
        "python -m bench.sizing", "Print Lambda sizing and cost tables (markdown) from a benchmark run."
    )
    args = parser.parse_args(argv)
    print(sizing_markdown(read_results(parser, args.results)))


if __name__ == "__main__":
    main()
