"""AWS's published prices the planner (`python -m ops plan`) and `python -m bench.sizing` use: the one home
of every price in the repository. US East (N. Virginia), first pricing tier, on-demand, USD.

Taken on 2026-12-03 from https://aws.amazon.com/lambda/pricing/ and https://aws.amazon.com/ec2/pricing/on-demand/.
Those pages render their rates client-side, so each figure was read from a published transcription of them;
`VERIFIED` says which figures were found in such text and which could not be (taken from AWS's own worked
examples as remembered, or from third-party pages that quote AWS). Every figure can be overridden on the
command line (`python -m ops plan --help`, "prices").
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace

from captioning.contract.constants import ARCHITECTURES

REGION = "us-east-1"
TAKEN_ON = "2026-12-03"
SOURCES = (
    "https://aws.amazon.com/lambda/pricing/",
    "https://aws.amazon.com/ec2/pricing/on-demand/",
)


@dataclass(frozen=True)
class Prices:
    """One architecture's Lambda prices (and the EC2 instance Lambda Managed Instances would run on)."""

    duration_gb_s: float
    """On-demand duration, per GB-second."""
    provisioned_gb_s: float
    """Provisioned concurrency, per GB-second configured (billed while enabled, used or not)."""
    provisioned_duration_gb_s: float
    """Duration of invocations served by provisioned concurrency, per GB-second."""
    snapstart_cache_gb_s: float
    """SnapStart (Python): the snapshot's cache, per GB-second of memory, while a version is active."""
    snapstart_restore_gb: float
    """SnapStart (Python): each restore, per GB of memory restored."""
    request: float = 0.20 / 1_000_000
    """Per request (every invocation, any mode)."""
    managed_instance_hour: float = 0.0
    """Lambda Managed Instances: the EC2 instance's on-demand price per hour (`MANAGED_INSTANCE` types)."""
    managed_fee: float = 0.15
    """Lambda Managed Instances: the management fee, a fraction of the EC2 on-demand price."""


MANAGED_INSTANCE = {"x86_64": ("m7i.large", 2, 8), "arm64": ("m7g.large", 2, 8)}
"""The EC2 instance type (name, vCPUs, GiB) the planner prices Managed Instances on, per architecture:
general purpose, 2 vCPUs like the machine the benchmark measured on."""

PRICES = {
    "x86_64": Prices(
        duration_gb_s=0.0000166667,
        provisioned_gb_s=0.0000041667,
        provisioned_duration_gb_s=0.0000097222,
        snapstart_cache_gb_s=0.0000015046,
        snapstart_restore_gb=0.0001397998,
        managed_instance_hour=0.1008,
    ),
    "arm64": Prices(
        duration_gb_s=0.0000133334,
        provisioned_gb_s=0.0000033334,
        provisioned_duration_gb_s=0.0000077778,
        snapstart_cache_gb_s=0.0000015046,
        snapstart_restore_gb=0.0001397998,
        managed_instance_hour=0.0816,
    ),
}

VERIFIED = {
    "request": "verified: $0.20 per 1M requests (transcription of the Lambda pricing page; also for Managed"
    " Instances)",
    "duration_gb_s": "verified: x86 $0.0000166667, arm64 $0.0000133334 per GB-second (transcriptions of the"
    " Lambda pricing page)",
    "provisioned_gb_s": "x86 $0.0000041667 verified (transcription of the Lambda pricing page); arm64"
    " $0.0000033334 NOT verified (AWS's worked example, from memory)",
    "provisioned_duration_gb_s": "NOT verified: x86 $0.0000097222, arm64 $0.0000077778 (AWS's worked"
    " examples, from memory)",
    "snapstart_cache_gb_s": "NOT verified on AWS's page: $0.0000015046 per GB-second, quoted by third-party"
    " pages (awsnegotiations.com, 2026); assumed the same for both architectures",
    "snapstart_restore_gb": "NOT verified on AWS's page: $0.0001397998 per GB restored, quoted by third-party"
    " pages (awsnegotiations.com, 2026); assumed the same for both architectures",
    "managed_fee": "verified: 15 % of the EC2 on-demand price (transcription of the Lambda pricing page,"
    " read 2026-09-20)",
    "managed_instance_hour": "m7g.large $0.0816/h quoted for us-east-1 in June 2026 by a third-party page"
    " (factualminds.com); m7i.large $0.1008/h NOT verified (from memory)",
}
"""What was checked for each price, and where."""


def add_price_options(parser: argparse.ArgumentParser) -> None:
    """`--price-<field>-<architecture> USD` for every price, defaults from `PRICES`."""
    group = parser.add_argument_group(
        "prices (USD; defaults: AWS's published us-east-1 prices, ops/prices.py)"
    )
    for architecture in ARCHITECTURES:
        for field in fields(Prices):
            flag = f"--price-{field.name.replace('_', '-')}-{architecture.replace('_', '-')}"
            group.add_argument(
                flag,
                dest=f"price__{architecture}__{field.name}",
                type=_non_negative,
                default=None,
                metavar="USD" if field.name != "managed_fee" else "FRACTION",
                help=f"default {getattr(PRICES[architecture], field.name):g}",
            )


def prices_from(args: argparse.Namespace) -> dict[str, Prices]:
    """`PRICES` with the command line's overrides applied."""
    chosen = {}
    for architecture, prices in PRICES.items():
        overrides = {
            field.name: value
            for field in fields(Prices)
            if (value := getattr(args, f"price__{architecture}__{field.name}", None)) is not None
        }
        chosen[architecture] = replace(prices, **overrides)
    return chosen


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a price in USD, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"a price cannot be negative, got {text}")
    return value
