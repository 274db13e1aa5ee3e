"""`python -m ops plan`: which Lambda setup is cheapest for a workload, from the benchmark's measured figures
and AWS's published prices (ops/prices.py).

For x86_64 and arm64 and for each way of running the function (on demand, provisioned concurrency,
SnapStart, Lambda Managed Instances) it prices every memory size the benchmark measured or can stretch to,
keeps the cheapest per setup, and recommends one. Where each figure comes from is in the output:
- per-image time: **measured** where the function image ran at that memory size with Lambda's CPU share
  (`docker run --cpus M/1769`, bench/container.py); **extrapolated** above the largest measured size (the
  2-core figure, no speed-up assumed past 2 vCPUs, so those rows are upper bounds); memory sizes that ran
  out of memory or timed out are left out;
- arm64: **assumed** as fast as x86_64 (`--arm64-time-factor`); arm64 was run here only under emulation,
  which says nothing about Graviton's speed;
- cold start: on demand, the image's measured import + model load at that size; SnapStart's restore is
  **assumed** (`ASSUMED_RESTORE_S`; not measurable without AWS); provisioned concurrency and Managed
  Instances have none once scaled;
- Managed Instances: the benchmark's 2-vCPU time is **assumed** for the instance's 2 vCPUs, though
  m7i.large's are one hyper-threaded core (m7g.large's are two cores);
- concurrency, provisioned concurrency and Managed Instances' environments are sized at the peak with **no
  burst headroom**; SnapStart's snapshot cache is priced for one active version;
- how many cold starts a month: **estimated** from Poisson arrivals and an idle environment being kept
  `ENVIRONMENT_IDLE_S` (AWS does not publish it), plus one scale-up to peak concurrency a day.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from ops import prices as price_list
from ops.arguments import positive_int, positive_number

MB_PER_FULL_VCPU = 1769
"""Lambda gives CPU in proportion to memory: 1,769 MB = one full vCPU (GUIDE §6)."""
VCPU_STEPS = ((3008, 2), (5307, 3), (7076, 4), (8845, 5), (10240, 6))
"""vCPUs a function sees, by its memory size (MB, upper bound of each step)."""
MEASURED_CORES = 2
"""The benchmark machine's cores: the warm figures' CPU, and the most any measured row had."""
EXTRAPOLATED_SIZES_MB = (4096, 6144, 8192, 10240)
HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
ENVIRONMENT_IDLE_S = 600
"""Assumed: how long Lambda keeps an idle environment before a new request needs a cold start."""
SCALE_UPS_PER_DAY = 1
"""Assumed: the load rises to its peak once a day, starting that many environments afresh."""
ASSUMED_RESTORE_S = 1.0
"""Assumed SnapStart restore latency (snapshot resumed + after-restore hooks); not measured here."""
ASSUMED_BILLED_RESTORE_S = 0.1
"""Assumed billed part of a restore (the runtime's after-restore hooks: clients re-created)."""
MANAGED_MINIMUM_ENVIRONMENTS = 3
"""Lambda Managed Instances keep at least 3 execution environments (one per Availability Zone)."""
MANAGED_VCPUS = {
    "x86_64": "one hyper-threaded core: likely slower than measured",
    "arm64": "two physical cores",
}
"""What an instance's vCPUs are, against the benchmark's 2 vCPUs of 2 cores: said, not corrected for."""
IMAGES_PER_REQUEST = (1, 10)
"""The batch sizes the benchmark measured: 1 (direct trigger) and 10 (a queue batch of ten)."""
MODES = ("on-demand", "provisioned", "snapstart", "managed-instances")
RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results.json"
MEASURED_MODEL = "nlpconnect/vit-gpt2-image-captioning"
"""The model the benchmark measured (its architecture, random weights): bench/model.py."""
CONFIGURATIONS = {
    ("onnx", "fp32"): ("onnx", "onnx"),
    ("onnx", "int8"): ("onnx_int8", "onnx_int8"),
    ("torch", "fp32"): ("project", "torch"),
    ("torch", "int8"): ("project_reduced", "torch_int8"),
}
"""(runtime, precision) -> (results.json raw.warm key, raw.images.lambda_sizes key)."""


class PlanError(ValueError):
    """A workload or a results file the planner cannot price; the message says what is allowed."""


def vcpus_for(memory_mb: int) -> int:
    if not 128 <= memory_mb <= 10240:
        raise PlanError(f"Lambda memory must be 128-10240 MB; got {memory_mb}")
    return next(vcpus for limit, vcpus in VCPU_STEPS if memory_mb <= limit)


def seconds_at(memory_mb: int, measured_seconds: float) -> float:
    """Seconds measured on 2 full cores, stretched where the function gets less than 2 vCPUs of CPU time."""
    cpu_share = memory_mb / MB_PER_FULL_VCPU
    return measured_seconds * max(1.0, MEASURED_CORES / cpu_share)


@dataclass(frozen=True)
class Workload:
    images_per_month: int
    peak_per_minute: float
    images_per_request: int = 1
    arm64_time_factor: float = 1.0

    @property
    def requests_per_month(self) -> int:
        return math.ceil(self.images_per_month / self.images_per_request)


@dataclass(frozen=True)
class Timing:
    """Per-image seconds and cold-start seconds at one memory size, and where they come from."""

    memory_mb: int
    seconds_per_image: float
    cold_start_s: float
    source: str


@dataclass(frozen=True)
class Row:
    architecture: str
    mode: str
    memory_mb: int | None
    """None for Managed Instances (priced per instance: `instance`)."""
    monthly_usd: float
    seconds_per_image: float
    cold_start_s: float
    cold_starts_per_month: float
    concurrency: int
    """Peak concurrency: what to set as reserved concurrency (or the queue's maximum concurrency), the
    provisioned concurrency, or the Managed Instances' environments."""
    source: str
    """measured / extrapolated (per-image time), with the assumptions this row adds."""
    instance: str | None = None
    breakdown: dict[str, float] | None = None


def timings(results: dict[str, Any], runtime: str, precision: str, images_per_request: int) -> list[Timing]:
    """Per-image and cold-start seconds at every usable memory size, from bench/results.json."""
    if (runtime, precision) not in CONFIGURATIONS:
        allowed = ", ".join(f"{r} {p}" for r, p in CONFIGURATIONS)
        raise PlanError(
            f"no measured figures for runtime {runtime} at precision {precision}; measured: {allowed}"
        )
    warm_key, sizes_key = CONFIGURATIONS[(runtime, precision)]
    raw = results["raw"]
    if precision == "int8" and runtime == "torch" and raw.get("reduced_precision") != "int8":
        raise PlanError("the results file's reduced-precision torch run is not int8")
    try:
        warm = raw["warm"][warm_key]
        sizes = raw["images"]["lambda_sizes"][sizes_key]
        init = raw["images"]["init"][sizes_key]
        init_s, init_mb = init["init_s"], init["memory_mb"]
    except (KeyError, TypeError) as missing:
        raise PlanError(f"the results file has no figures for {runtime} {precision} ({missing})") from None
    two_core = warm["latency_s"] if images_per_request == 1 else warm["batch_s"] / warm["batch_size"]
    # The image's INIT was measured at one size: its part besides the model load (the runtime, the imports)
    # is stretched by CPU share like everything else; the model load is the one measured at each size.
    load_at_init = next(
        (run["load_s"] for run in sizes if run["memory_mb"] == init_mb and "load_s" in run), 0.0
    )
    rest_of_init = max(0.0, init_s - load_at_init)
    found = []
    for run in sizes:
        if "batch_s" not in run:
            continue  # out of memory or timed out at this size: it cannot work
        seconds = run["latency_s"] if images_per_request == 1 else run["seconds_per_image_batch10"]
        cold = seconds_at(run["memory_mb"], rest_of_init) + run["load_s"]
        found.append(Timing(run["memory_mb"], seconds, cold, "measured"))
    largest = max((timing.memory_mb for timing in found), default=0)
    for memory_mb in EXTRAPOLATED_SIZES_MB:
        if memory_mb > largest:
            found.append(Timing(memory_mb, seconds_at(memory_mb, two_core), init_s, "extrapolated"))
    if not found:
        raise PlanError(f"no memory size worked for {runtime} {precision} in the results file")
    return found


def _cold_starts(workload: Workload, concurrency: int) -> float:
    rate = workload.requests_per_month / SECONDS_PER_MONTH
    idle = workload.requests_per_month * math.exp(-rate * ENVIRONMENT_IDLE_S)
    return idle + concurrency * SCALE_UPS_PER_DAY * DAYS_PER_MONTH


def lambda_rows(
    workload: Workload, timing: Timing, architecture: str, prices: price_list.Prices
) -> list[Row]:
    """On demand, provisioned concurrency and SnapStart at one memory size."""
    factor = workload.arm64_time_factor if architecture == "arm64" else 1.0
    per_image = timing.seconds_per_image * factor
    cold_start = timing.cold_start_s * factor
    gigabytes = timing.memory_mb / 1024
    concurrency = max(1, math.ceil(workload.peak_per_minute / 60 * per_image))
    requests = workload.requests_per_month * prices.request
    compute_s = workload.images_per_month * per_image
    cold_starts = _cold_starts(workload, concurrency)
    source = timing.source + (f", arm64 assumed {factor:g}x x86_64's time" if architecture == "arm64" else "")
    common = {
        "architecture": architecture,
        "memory_mb": timing.memory_mb,
        "seconds_per_image": per_image,
        "concurrency": concurrency,
    }
    on_demand = {
        "requests": requests,
        "duration": compute_s * gigabytes * prices.duration_gb_s,
        "init": cold_starts * cold_start * gigabytes * prices.duration_gb_s,
    }
    provisioned = {
        "requests": requests,
        "provisioned": concurrency * gigabytes * SECONDS_PER_MONTH * prices.provisioned_gb_s,
        "duration": compute_s * gigabytes * prices.provisioned_duration_gb_s,
    }
    snapstart = {
        "requests": requests,
        "duration": compute_s * gigabytes * prices.duration_gb_s,
        "cache": gigabytes * SECONDS_PER_MONTH * prices.snapstart_cache_gb_s,
        "restores": cold_starts * gigabytes * prices.snapstart_restore_gb,
        "restore_duration": cold_starts * ASSUMED_BILLED_RESTORE_S * gigabytes * prices.duration_gb_s,
    }
    return [
        Row(
            mode="on-demand",
            monthly_usd=sum(on_demand.values()),
            cold_start_s=cold_start,
            cold_starts_per_month=cold_starts,
            source=source + ", cold starts estimated",
            breakdown=on_demand,
            **common,
        ),
        Row(
            mode="provisioned",
            monthly_usd=sum(provisioned.values()),
            cold_start_s=0.0,
            cold_starts_per_month=0.0,
            source=source + ", provisioned at peak concurrency",
            breakdown=provisioned,
            **common,
        ),
        Row(
            mode="snapstart",
            monthly_usd=sum(snapstart.values()),
            cold_start_s=ASSUMED_RESTORE_S,
            cold_starts_per_month=cold_starts,
            source=source + f", restore assumed {ASSUMED_RESTORE_S:g} s, restores estimated",
            breakdown=snapstart,
            **common,
        ),
    ]


def managed_row(
    workload: Workload, two_core_seconds: float, architecture: str, prices: price_list.Prices
) -> Row:
    """Managed Instances: one environment per 2-vCPU instance, captioning at the measured 2-core speed."""
    name, vcpus, _ = price_list.MANAGED_INSTANCE[architecture]
    factor = workload.arm64_time_factor if architecture == "arm64" else 1.0
    per_image = two_core_seconds * factor * MEASURED_CORES / vcpus
    environments = max(MANAGED_MINIMUM_ENVIRONMENTS, math.ceil(workload.peak_per_minute / 60 * per_image))
    breakdown = {
        "requests": workload.requests_per_month * prices.request,
        "instances": environments * HOURS_PER_MONTH * prices.managed_instance_hour,
        "management_fee": environments * HOURS_PER_MONTH * prices.managed_instance_hour * prices.managed_fee,
    }
    return Row(
        architecture=architecture,
        mode="managed-instances",
        memory_mb=None,
        monthly_usd=sum(breakdown.values()),
        seconds_per_image=per_image,
        cold_start_s=0.0,
        cold_starts_per_month=0.0,
        concurrency=environments,
        source="measured on the benchmark machine's 2 vCPUs (a KVM guest, 1 thread a core), assumed for"
        + f" {name}'s {vcpus} vCPUs ({MANAGED_VCPUS[architecture]})"
        + (f", arm64 assumed {factor:g}x x86_64's time" if architecture == "arm64" else "")
        + f", {environments} instances always on (at least {MANAGED_MINIMUM_ENVIRONMENTS}),"
        " sized at the peak with no burst headroom",
        instance=name,
        breakdown=breakdown,
    )


def plan(
    results: dict[str, Any],
    workload: Workload,
    *,
    runtime: str,
    precision: str,
    prices: dict[str, price_list.Prices],
) -> dict[str, Any]:
    """Every priced row, the cheapest per architecture and mode, and the recommendation."""
    found = timings(results, runtime, precision, workload.images_per_request)
    warm = results["raw"]["warm"][CONFIGURATIONS[(runtime, precision)][0]]
    two_core = warm["latency_s"] if workload.images_per_request == 1 else warm["batch_s"] / warm["batch_size"]
    rows: list[Row] = []
    for architecture in price_list.ARCHITECTURES:
        for timing in found:
            rows += lambda_rows(workload, timing, architecture, prices[architecture])
        rows.append(managed_row(workload, two_core, architecture, prices[architecture]))
    best = []
    for architecture in price_list.ARCHITECTURES:
        for mode in MODES:
            candidates = [row for row in rows if (row.architecture, row.mode) == (architecture, mode)]
            best.append(min(candidates, key=lambda row: (round(row.monthly_usd, 6), row.seconds_per_image)))
    cheapest = min(best, key=lambda row: row.monthly_usd)
    warm_only = min((row for row in best if row.cold_starts_per_month == 0), key=lambda row: row.monthly_usd)
    return {"rows": rows, "best": best, "cheapest": cheapest, "cheapest_without_cold_starts": warm_only}


def read_results(path: Path) -> dict[str, Any]:
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError(
            f"{path}: no such file: the planner reads the benchmark's results (bench/results.json in the"
            " repository; `make bench` writes it): name one with --results"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PlanError(f"{path} is not a results.json written by `make bench` ({error})") from None
    if not isinstance(results, dict) or "raw" not in results:
        raise PlanError(f"{path} is JSON but not a benchmark summary (no 'raw' figures)")
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `plan` subcommand's options (`python -m ops plan --help`)."""
    from captioning.contract.constants import DEFAULT_MODEL_ID, DEFAULT_PRECISION, DEFAULT_RUNTIME

    parser.add_argument("--images-per-month", type=positive_int, required=True, metavar="N")
    parser.add_argument(
        "--peak-per-minute",
        type=positive_number,
        metavar="P",
        help="images a minute at the busiest, at least the monthly average (default: the average: even load)",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL_ID, help=f"default {DEFAULT_MODEL_ID}")
    parser.add_argument(
        "--runtime", default=DEFAULT_RUNTIME, help=f"onnx or torch (default {DEFAULT_RUNTIME})"
    )
    parser.add_argument(
        "--precision", default=DEFAULT_PRECISION, help=f"fp32 or int8 (default {DEFAULT_PRECISION})"
    )
    parser.add_argument(
        "--images-per-request",
        type=int,
        choices=IMAGES_PER_REQUEST,
        default=1,
        help="1: the direct trigger, one image per invocation (advice: reservedConcurrency); 10: batches of"
        " ten from the upload queue, triggers queue and eventbridge (advice: maxConcurrency, at least 2);"
        " default 1",
    )
    parser.add_argument(
        "--arm64-time-factor",
        type=positive_number,
        default=1.0,
        metavar="F",
        help="arm64 time as a multiple of x86_64's (default 1: not measured; Graviton was not available)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, metavar="PATH", help="bench/results.json")
    parser.add_argument(
        "--markdown", action="store_true", help="print the cheapest-per-setup table as markdown"
    )
    price_list.add_price_options(parser)


def run_plan(args: argparse.Namespace, out: TextIO) -> None:
    if args.model.lower() != MEASURED_MODEL:
        raise PlanError(
            f"no measured figures for model {args.model!r}: the benchmark measured {MEASURED_MODEL}"
            " (bench/results.json); measure another with `make bench` and pass --results"
        )
    average = args.images_per_month / (SECONDS_PER_MONTH / 60)
    if args.peak_per_minute is not None and args.peak_per_minute < average:
        raise PlanError(
            f"--peak-per-minute {args.peak_per_minute:g} is below the monthly average of --images-per-month"
            f" {args.images_per_month:,} ({average:,.1f} a minute over {HOURS_PER_MONTH} hours): a plan sized"
            " for it could not carry the month; give a peak of at least the average, or leave it out"
        )
    workload = Workload(
        images_per_month=args.images_per_month,
        peak_per_minute=args.peak_per_minute or average,
        images_per_request=args.images_per_request,
        arm64_time_factor=args.arm64_time_factor,
    )
    prices = price_list.prices_from(args)
    result = plan(
        read_results(args.results), workload, runtime=args.runtime, precision=args.precision, prices=prices
    )
    inputs = {
        **asdict(workload),
        "peak_given": args.peak_per_minute is not None,
        "model": args.model,
        "runtime": args.runtime,
        "precision": args.precision,
        "results": str(args.results),
    }
    if getattr(args, "json", False):
        json.dump(_as_json(result, inputs, prices), out, indent=2)
        out.write("\n")
    elif args.markdown:
        out.write(markdown(result, inputs) + "\n")
    else:
        _print_text(result, inputs, out)


def _as_json(result: dict[str, Any], inputs: dict[str, Any], prices: dict[str, price_list.Prices]) -> dict:
    return {
        "inputs": inputs,
        "prices": {
            "region": price_list.REGION,
            "taken_on": price_list.TAKEN_ON,
            "sources": list(price_list.SOURCES),
            "verified": price_list.VERIFIED,
            **{architecture: asdict(value) for architecture, value in prices.items()},
        },
        "assumptions": _assumptions(),
        "recommendation": asdict(result["cheapest"]),
        "cheapest_without_cold_starts": asdict(result["cheapest_without_cold_starts"]),
        "best": [asdict(row) for row in result["best"]],
        "rows": [asdict(row) for row in result["rows"]],
    }


def _assumptions() -> dict[str, Any]:
    return {
        "environment_idle_s": ENVIRONMENT_IDLE_S,
        "scale_ups_per_day": SCALE_UPS_PER_DAY,
        "snapstart_restore_s": ASSUMED_RESTORE_S,
        "snapstart_billed_restore_s": ASSUMED_BILLED_RESTORE_S,
        "managed_instances_minimum": MANAGED_MINIMUM_ENVIRONMENTS,
        "managed_instance_vcpus": MANAGED_VCPUS,
        "burst_headroom": "none: concurrency and environments are sized at the peak",
        "snapstart_versions_cached": 1,
        "managed_instance_types": {arch: name for arch, (name, _, _) in price_list.MANAGED_INSTANCE.items()},
        "hours_per_month": HOURS_PER_MONTH,
        "not_included": "free tier, S3/DynamoDB/SQS/CloudWatch, Managed Instances' VPC (NAT or endpoints)",
    }


def _setting(row: Row) -> str:
    if row.mode == "managed-instances":
        return f"{row.concurrency} x {row.instance}"
    return f"{row.memory_mb:,} MB"


def _concurrency(row: Row, images_per_request: int) -> str:
    """The setting to give: reservedConcurrency for the direct trigger, and for queue batches the event
    source's maxConcurrency, which AWS allows only from 2."""
    from captioning.component.limits import SQS_MAXIMUM_CONCURRENCY

    limit = (
        f"reservedConcurrency {row.concurrency}"
        if images_per_request == 1
        else f"maxConcurrency {max(SQS_MAXIMUM_CONCURRENCY[0], row.concurrency)}"
    )
    return {
        "on-demand": limit,
        "provisioned": f"provisionedConcurrency {row.concurrency}",
        "snapstart": limit,
        "managed-instances": f"{row.concurrency} environments",
    }[row.mode]


def markdown(result: dict[str, Any], inputs: dict[str, Any]) -> str:
    per_request = inputs["images_per_request"]
    lines = [
        f"{inputs['images_per_month']:,} images a month, peak {inputs['peak_per_minute']:,.1f} a minute,"
        f" {inputs['images_per_request']} per request ({inputs['runtime']} {inputs['precision']})",
        "",
        "| architecture | mode | setting | $/month | s/image | cold start (s) | cold starts/month"
        " | concurrency | figures |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in result["best"]:
        lines.append(
            f"| {row.architecture} | {row.mode} | {_setting(row)} | {row.monthly_usd:,.2f}"
            f" | {row.seconds_per_image:.2f} | {row.cold_start_s:.1f} | {row.cold_starts_per_month:,.0f}"
            f" | {_concurrency(row, per_request)} | {row.source} |"
        )
    cheapest = result["cheapest"]
    warm = result["cheapest_without_cold_starts"]
    lines += [
        "",
        f"Recommended: {cheapest.architecture} {cheapest.mode} at {_setting(cheapest)},"
        f" {_concurrency(cheapest, per_request)} (${cheapest.monthly_usd:,.2f}/month). Without cold starts:"
        f" {warm.architecture} {warm.mode} at {_setting(warm)}, {_concurrency(warm, per_request)}"
        f" (${warm.monthly_usd:,.2f}/month).",
    ]
    return "\n".join(lines)


def _print_text(result: dict[str, Any], inputs: dict[str, Any], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, highlight=False, soft_wrap=True)
    per_request = inputs["images_per_request"]
    peak = "" if inputs["peak_given"] else " (not given: the monthly average)"
    console.print(
        f"{inputs['images_per_month']:,} images a month, peak {inputs['peak_per_minute']:,.1f} a minute"
        f"{peak}, {inputs['images_per_request']} per request; {inputs['model']} {inputs['runtime']}"
        f" {inputs['precision']}; prices {price_list.REGION}, taken {price_list.TAKEN_ON} (ops/prices.py)"
    )
    table = Table("arch", "mode", "setting", "$/month", "s/image", "cold s", "colds/mo", "concurrency")
    for row in result["best"]:
        short = (
            _concurrency(row, per_request)
            .replace("reservedConcurrency", "reserved")
            .replace("maxConcurrency", "max")
            .replace("provisionedConcurrency", "PC")
        )
        table.add_row(
            row.architecture,
            row.mode,
            _setting(row),
            f"{row.monthly_usd:,.2f}",
            f"{row.seconds_per_image:.2f}",
            f"{row.cold_start_s:.1f}",
            f"{row.cold_starts_per_month:,.0f}",
            short,
        )
    console.print(table)
    for row in result["best"]:
        console.print(f"  {row.architecture} {row.mode}: {row.source}")
    cheapest, warm = result["cheapest"], result["cheapest_without_cold_starts"]
    console.print(
        f"Recommended: {cheapest.architecture} {cheapest.mode}, {_setting(cheapest)},"
        f" {_concurrency(cheapest, per_request)}: ${cheapest.monthly_usd:,.2f} a month."
    )
    console.print(
        f"Without cold starts: {warm.architecture} {warm.mode}, {_setting(warm)},"
        f" {_concurrency(warm, per_request)}: ${warm.monthly_usd:,.2f} a month."
    )
    console.print(
        "Measured: per-image times at each memory size on x86_64 (bench/results.json); extrapolated: sizes"
        " above the largest measured; assumed: arm64 speed, SnapStart restore, idle lifetime"
        f" ({ENVIRONMENT_IDLE_S} s). Managed Instances need Python 3.13+ and a VPC (not priced). --json for"
        " every size."
    )
