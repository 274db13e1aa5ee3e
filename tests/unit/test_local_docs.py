"""The README is the front door: short, its links lead somewhere, every docs page is reachable from it,
and its headline figures are the committed benchmark's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _local_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(page.read_text()) if "://" not in target]


def test_the_readme_is_at_most_290_lines() -> None:
    # 250 until the first-hour issue asked the README itself to show a program's unit test (16 lines); 270
    # until issues 21/22 added twelve settings to the configuration table.
    assert len(README.read_text().splitlines()) <= 290


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda page: page.name)
def test_every_link_to_a_file_of_the_repository_resolves(page: Path) -> None:
    missing = [target for target in _local_links(page) if not (page.parent / target).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / target).resolve() for target in _local_links(README)}
    assert sorted(page.name for page in DOCS.glob("*.md") if page.resolve() not in linked) == []


PAIRS = (
    ("throughput_ratio", "throughput_ratio_reduced_precision"),
    ("latency_ratio", "latency_ratio_reduced_precision"),
    ("cold_start_bytes_ratio", "cold_start_bytes_ratio_half_weights"),
    ("onnx_throughput_ratio", "onnx_int8_throughput_ratio"),
    ("onnx_latency_ratio", "onnx_int8_latency_ratio"),
    ("onnx_cold_start_seconds_ratio", "onnx_int8_cold_start_seconds_ratio"),
    ("onnx_cold_start_bytes_ratio", "onnx_int8_cold_start_bytes_ratio"),
)


def test_the_headline_figures_are_the_committed_benchmarks() -> None:
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    text = README.read_text()
    for first, second in PAIRS:
        if results.get(first) is None or results.get(second) is None:
            continue  # not measured in this run (e.g. --no-onnx)
        figure = f"{results[first]:.2f}× / {results[second]:.2f}×"
        assert figure in text, f"README should show {first} / {second} as {figure}"
