"""Lambda sizing and cost per 1,000 images from a benchmark run: `python -m bench.sizing [results.json]`.

Prints markdown. Lambda gives CPU in proportion to memory (1,769 MB = one full vCPU); the benchmark
ran on 2 full cores. Below 2 vCPUs' worth (3,538 MB) the per-image time is scaled up by the missing
CPU share; above it no speed-up is assumed (more vCPUs would help the batched encoder, but that was
not measured), so those costs are upper bounds.
"""

from __future__ import annotations

# AWS Lambda on-demand prices, US East (N. Virginia), first pricing tier; see the README for when and
# where they were read.
PRICE_PER_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PRICE_PER_REQUEST = 0.20 / 1_000_000
MB_PER_FULL_VCPU = 1769
MEASURED_CORES = 2
MEMORY_SIZES_MB = (2048, 3008, 3538, 4096, 6144, 10240)
# GUIDE §6: vCPUs a function sees by memory size.
VCPU_STEPS = ((3008, 2), (5307, 3), (7076, 4), (8845, 5), (10240, 6))


def vcpus_for(memory_mb: int) -> int:
    if not 128 <= memory_mb <= 10240:
        raise ValueError(f"Lambda memory must be 128-10240 MB; got {memory_mb}")
    return next(vcpus for limit, vcpus in VCPU_STEPS if memory_mb <= limit)


def seconds_at(memory_mb: int, measured_seconds: float) -> float:
    """Measured 2-core seconds, stretched where the function gets less than 2 full vCPUs of CPU time."""
    cpu_share = memory_mb / MB_PER_FULL_VCPU
    return measured_seconds * max(1.0, MEASURED_CORES / cpu_share)


def cost_per_thousand(
    memory_mb: int, seconds_per_image: float, images_per_request: int, architecture: str
) -> float:
    gb_seconds = memory_mb / 1024 * seconds_per_image * 1000
    requests = 1000 / images_per_request
    return gb_seconds * PRICE_PER_GB_SECOND[architecture] + requests * PRICE_PER_REQUEST


def sizing_rows(batch1_seconds: float, batch10_seconds_per_image: float) -> list[dict]:
    rows = []
    for memory_mb in MEMORY_SIZES_MB:
        one = seconds_at(memory_mb, batch1_seconds)
        ten = seconds_at(memory_mb, batch10_seconds_per_image)
        rows.append(
            {
                "memory_mb": memory_mb,
                "vcpus": vcpus_for(memory_mb),
                "cpu_share": memory_mb / MB_PER_FULL_VCPU,
                "seconds_batch1": one,
                "seconds_batch10": ten,
                **{
                    f"cost_{arch}_batch{size}": cost_per_thousand(memory_mb, secs, size, arch)
                    for arch in PRICE_PER_GB_SECOND
                    for size, secs in ((1, one), (10, ten))
                },
            }
        )
    return rows


def markdown_table(label: str, batch1_seconds: float, batch10_seconds_per_image: float) -> str:
    lines = [
        f"**{label}** (measured on 2 cores: {batch1_seconds:.3f} s for one image, "
        f"{batch10_seconds_per_image:.3f} s per image in a batch of 10)",
        "",
        "| memory (MB) | vCPUs | CPU share (vCPU) | s/image, batch 1 | s/image, batch 10 "
        "| $/1,000 images x86, batch 1 | x86, batch 10 | arm64, batch 1 | arm64, batch 10 |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in sizing_rows(batch1_seconds, batch10_seconds_per_image):
        lines.append(
            f"| {row['memory_mb']:,} | {row['vcpus']} | {row['cpu_share']:.2f} "
            f"| {row['seconds_batch1']:.2f} | {row['seconds_batch10']:.2f} "
            f"| {row['cost_x86_64_batch1']:.4f} | {row['cost_x86_64_batch10']:.4f} "
            f"| {row['cost_arm64_batch1']:.4f} | {row['cost_arm64_batch10']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from bench.report import read_results, results_argument_parser

    parser = results_argument_parser(
        "python -m bench.sizing", "Print Lambda sizing and cost tables (markdown) from a benchmark run."
    )
    args = parser.parse_args(argv)
    summary = read_results(parser, args.results)
    warm = summary["raw"]["warm"]
    reduced = summary["raw"]["reduced_precision"]
    for label, key in (
        ("baseline (original design)", "baseline"),
        ("project, fp32", "project"),
        (f"project, {reduced}", "project_reduced"),
    ):
        figures = warm[key]
        print(markdown_table(label, figures["latency_s"], figures["batch_s"] / figures["batch_size"]))
        print()


if __name__ == "__main__":
    main()
