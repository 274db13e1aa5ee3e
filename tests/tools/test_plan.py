"""`python -m ops plan`: rows recomputed by hand from the benchmark's figures and AWS's prices, the
recommendation, price overrides, and bad arguments refused without a traceback.

The hand calculations copy the figures out of bench/results.json (raw.images.lambda_sizes.onnx at 2,048 MB,
raw.images.init.onnx, raw.warm.onnx) and the us-east-1 prices, and apply the formulas of docs/performance.md
("When each lever pays") to them; they never call the planner's own arithmetic.
"""
# ruff: noqa: S101

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from ops.__main__ import main

# bench/results.json, ONNX Runtime fp32 (the default runtime and precision)
LATENCY_2048_S = 0.799376189999748  # lambda_sizes.onnx, 2,048 MB: one 12 MP image, warm
LOAD_2048_S = 1.4681580199994642  # lambda_sizes.onnx, 2,048 MB: the model load
LOAD_3538_S = 1.0651164190003328  # lambda_sizes.onnx, 3,538 MB: the model load
INIT_3538_S = 2.4321840000000003  # images.init.onnx: the image's INIT at 3,538 MB
WARM_2CORE_S = 0.42163427299965406  # warm.onnx.latency_s: one image on 2 full cores
# us-east-1 prices
X86_GB_S, X86_PROVISIONED_GB_S, X86_PROVISIONED_DURATION_GB_S = 0.0000166667, 0.0000041667, 0.0000097222
REQUEST = 0.20 / 1_000_000
M7I_LARGE_HOUR, FEE = 0.1008, 0.15
SECONDS_PER_MONTH = 730 * 3600


def plan(*args: str) -> tuple[int, dict[str, Any] | str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["plan", *args], out=out, err=err)
    text = out.getvalue()
    return code, (json.loads(text) if "--json" in args and code == 0 else text), err.getvalue()


def row(result: dict[str, Any], architecture: str, mode: str, memory_mb: int | None) -> dict[str, Any]:
    (found,) = [
        candidate
        for candidate in result["rows"]
        if (candidate["architecture"], candidate["mode"], candidate["memory_mb"])
        == (architecture, mode, memory_mb)
    ]
    return found


@pytest.fixture(scope="module")
def million() -> dict[str, Any]:
    code, result, err = plan("--images-per-month", "1000000", "--peak-per-minute", "120", "--json")
    assert code == 0, err
    assert isinstance(result, dict)
    return result


def test_the_on_demand_x86_row_at_2048_mb_matches_a_hand_calculation(million: dict[str, Any]) -> None:
    found = row(million, "x86_64", "on-demand", 2048)
    # Peak: 120 images a minute = 2 a second, each 0.799 s: 1.6 busy environments, so 2.
    assert found["concurrency"] == 2
    # Cold starts: 1M requests a month arrive 0.38 a second, so an idle gap of 600 s never happens;
    # 2 environments start afresh once a day, 730/24 days.
    cold_starts = 2 * 730 / 24
    # INIT at 2,048 MB: the image's INIT besides the model load, measured on 2 vCPUs at 3,538 MB, gets
    # 2,048/3,538 of that CPU; plus the model load measured at 2,048 MB.
    cold_start_s = (INIT_3538_S - LOAD_3538_S) * 3538 / 2048 + LOAD_2048_S
    expected = (
        1_000_000 * REQUEST
        + 1_000_000 * LATENCY_2048_S * 2 * X86_GB_S
        + cold_starts * cold_start_s * 2 * X86_GB_S
    )
    assert found["monthly_usd"] == pytest.approx(expected, rel=1e-9)
    assert found["monthly_usd"] == pytest.approx(26.8537, abs=1e-4)
    assert found["cold_start_s"] == pytest.approx(3.8298, abs=1e-4)
    assert found["cold_starts_per_month"] == pytest.approx(60.8333, abs=1e-4)
    assert found["source"].startswith("measured")


def test_the_provisioned_x86_row_at_2048_mb_matches_a_hand_calculation(million: dict[str, Any]) -> None:
    found = row(million, "x86_64", "provisioned", 2048)
    expected = (
        1_000_000 * REQUEST
        + 2 * 2 * SECONDS_PER_MONTH * X86_PROVISIONED_GB_S
        + 1_000_000 * LATENCY_2048_S * 2 * X86_PROVISIONED_DURATION_GB_S
    )
    assert found["monthly_usd"] == pytest.approx(expected, rel=1e-9)
    assert (found["cold_start_s"], found["cold_starts_per_month"]) == (0.0, 0.0)


def test_managed_instances_keep_three_instances_and_add_the_fee(million: dict[str, Any]) -> None:
    found = row(million, "x86_64", "managed-instances", None)
    # 2 images a second at 0.42 s on 2 cores need 1 instance; Managed Instances keep at least 3.
    assert found["concurrency"] == 3 and found["instance"] == "m7i.large"
    assert found["monthly_usd"] == pytest.approx(3 * 730 * M7I_LARGE_HOUR * (1 + FEE) + 1_000_000 * REQUEST)
    assert found["seconds_per_image"] == pytest.approx(WARM_2CORE_S)


def test_arm64_is_the_x86_time_at_arm64_s_price(million: dict[str, Any]) -> None:
    x86, arm = row(million, "x86_64", "on-demand", 2048), row(million, "arm64", "on-demand", 2048)
    assert arm["seconds_per_image"] == x86["seconds_per_image"]
    assert "arm64 assumed 1x" in arm["source"]
    duration = (x86["monthly_usd"] - 1_000_000 * REQUEST) / X86_GB_S
    assert arm["monthly_usd"] == pytest.approx(duration * 0.0000133334 + 1_000_000 * REQUEST, rel=1e-9)


def test_sizes_that_ran_out_of_memory_are_never_priced_and_big_sizes_are_extrapolated(
    million: dict[str, Any],
) -> None:
    sizes = {candidate["memory_mb"]: candidate["source"] for candidate in million["rows"]}
    assert not {1024, 1536, 1769} & set(sizes), "ONNX fp32 ran out of memory (or timed out) at these sizes"
    assert sizes[3538].startswith("measured") and sizes[10240].startswith("extrapolated")
    big = row(million, "x86_64", "on-demand", 10240)
    assert big["seconds_per_image"] == pytest.approx(WARM_2CORE_S)  # no speed-up past 2 vCPUs


def test_the_recommendation_is_the_cheapest_setup_and_names_its_settings(million: dict[str, Any]) -> None:
    best = million["best"]
    assert len(best) == 8  # 2 architectures x 4 modes
    cheapest = min(best, key=lambda candidate: candidate["monthly_usd"])
    assert million["recommendation"] == cheapest
    warm = million["cheapest_without_cold_starts"]
    assert warm["cold_starts_per_month"] == 0 and warm["mode"] in ("provisioned", "managed-instances")
    assert million["prices"]["region"] == "us-east-1" and million["prices"]["taken_on"]
    assert "https://aws.amazon.com/lambda/pricing/" in million["prices"]["sources"]


def test_a_price_flag_overrides_the_published_price() -> None:
    code, result, err = plan(
        "--images-per-month", "1000000", "--peak-per-minute", "120", "--json",
        "--price-duration-gb-s-x86-64", "0.00002", "--price-request-x86-64", "0",
    )  # fmt: skip
    assert code == 0, err
    assert isinstance(result, dict)
    found = row(result, "x86_64", "on-demand", 2048)
    cold_start_s = (INIT_3538_S - LOAD_3538_S) * 3538 / 2048 + LOAD_2048_S
    expected = (1_000_000 * LATENCY_2048_S + 2 * 730 / 24 * cold_start_s) * 2 * 0.00002
    assert found["monthly_usd"] == pytest.approx(expected, rel=1e-9)
    assert result["prices"]["x86_64"]["duration_gb_s"] == 0.00002


def test_sparse_load_makes_most_requests_cold() -> None:
    """10k images a month: one every 263 s on average, so an environment idle 600 s is often gone."""
    code, result, _ = plan("--images-per-month", "10000", "--json")
    assert code == 0 and isinstance(result, dict)
    found = row(result, "x86_64", "on-demand", 2048)
    rate = 10_000 / SECONDS_PER_MONTH
    assert found["cold_starts_per_month"] == pytest.approx(10_000 * math.exp(-rate * 600) + 730 / 24)


def test_text_output_names_what_is_measured_and_what_is_assumed() -> None:
    code, text, err = plan("--images-per-month", "100000000", "--peak-per-minute", "5000")
    assert code == 0, err
    assert isinstance(text, str)
    for expected in ("Recommended:", "Without cold starts:", "measured", "assumed", "us-east-1"):
        assert expected in text, expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--images-per-month", "0"], "must be at least 1"),
        (["--images-per-month", "lots"], "expected a whole number"),
        (["--images-per-month", "10", "--peak-per-minute", "-3"], "must be more than 0"),
        (
            ["--images-per-month", "10", "--model", "Salesforce/blip-image-captioning-base"],
            "no measured figures",
        ),
        (["--images-per-month", "10", "--runtime", "torch", "--precision", "bf16"], "no measured figures"),
        (["--images-per-month", "10", "--images-per-request", "5"], "invalid choice"),
        (["--images-per-month", "10", "--price-request-arm64", "-1"], "cannot be negative"),
        (["--images-per-month", "10", "--results", "/nonexistent/results.json"], "no such file"),
    ],
)
def test_bad_arguments_are_refused_with_a_message_and_no_traceback(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = io.StringIO()
    try:
        code = main(["plan", *args], out=io.StringIO(), err=err)
    except SystemExit as stop:  # argparse's own refusals
        code = stop.code
    text = err.getvalue() + capsys.readouterr().err
    assert code == 2
    assert message in text, text
    assert "Traceback" not in text


def test_a_results_file_that_is_not_a_benchmark_summary_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"cpu_model": "x"}))
    code, _, err = plan("--images-per-month", "10", "--results", str(bad))
    assert code == 2 and "not a benchmark summary" in err


@pytest.mark.parametrize("images", ["10000", "1000000", "100000000"])
def test_docs_performance_shows_the_planner_s_own_tables(images: str) -> None:
    """docs/performance.md's "When each lever pays" is the planner's output, not a copy gone stale."""
    code, text, err = plan("--images-per-month", images, "--markdown")
    assert code == 0, err
    assert isinstance(text, str)
    docs = (Path(__file__).resolve().parents[2] / "docs" / "performance.md").read_text()
    assert text.strip() in docs, f"regenerate with: python -m ops plan --images-per-month {images} --markdown"


def test_a_peak_below_the_monthly_average_is_refused_naming_both_flags_and_the_average() -> None:
    """100M a month is 2,283.1 a minute on average (730 hours): a peak of 1 would size 3 instances for it."""
    code, _, err = plan("--images-per-month", "100000000", "--peak-per-minute", "1")
    assert code == 2
    for expected in ("--peak-per-minute 1", "--images-per-month 100,000,000", "2,283.1 a minute"):
        assert expected in err, err
    assert "Traceback" not in err
    average = 100_000_000 / (SECONDS_PER_MONTH / 60)
    code, _, err = plan("--images-per-month", "100000000", "--peak-per-minute", f"{average}")
    assert code == 0, err


def test_the_concurrency_advice_is_a_value_the_trigger_accepts() -> None:
    """Direct: reservedConcurrency (1 allowed). Queue batches: the event source's maxConcurrency, 2-1000."""
    code, direct, err = plan("--images-per-month", "10000", "--markdown")
    assert code == 0, err
    assert isinstance(direct, str)
    assert "| reservedConcurrency 1 |" in direct and "maxConcurrency" not in direct
    code, queued, err = plan("--images-per-month", "10000", "--images-per-request", "10", "--markdown")
    assert code == 0, err
    assert isinstance(queued, str)
    assert "| maxConcurrency 2 |" in queued and "reserved" not in queued
    assert "maxConcurrency 1 " not in queued and "maxConcurrency 1," not in queued


def test_managed_instances_say_what_their_vcpus_are_and_that_there_is_no_headroom(
    million: dict[str, Any],
) -> None:
    x86, arm = (
        row(million, "x86_64", "managed-instances", None),
        row(million, "arm64", "managed-instances", None),
    )
    assert "m7i.large's 2 vCPUs (one hyper-threaded core" in x86["source"]
    assert "m7g.large's 2 vCPUs (two physical cores)" in arm["source"]
    for found in (x86, arm):
        assert "KVM guest" in found["source"] and "no burst headroom" in found["source"]
    assert million["assumptions"]["burst_headroom"].startswith("none")
