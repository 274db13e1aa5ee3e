"""bench/onnx_load.py's command line and table (the measurements themselves are not tests)."""

from __future__ import annotations

import argparse

import pytest

from bench.onnx_load import AFTER, BEFORE, FIGURES, VARIANTS, _ways, table


def test_ways_always_include_before_and_after() -> None:
    names = [variant.name for variant in _ways("7")]
    assert names == [BEFORE, AFTER, VARIANTS[7].name]


@pytest.mark.parametrize("text", ["99", "x", "1,,2", "-20"])
def test_bad_ways_are_refused_naming_what_is_allowed(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=f"0-{len(VARIANTS) - 1}"):
        _ways(text)


def test_table_has_a_row_per_way_with_its_ratio_to_before_and_flags_changed_captions() -> None:
    def figures(total: float, equal: bool) -> dict:
        return {**dict.fromkeys(FIGURES, 1.0), "total_s": total, "captions_equal_to_before": equal}

    result = {
        "model_dir": "m",
        "caption": "a cat",
        "graph_bytes_exported": 2e6,
        "graph_bytes_optimised": 2e6,
        "variants": {BEFORE: figures(4.0, True), AFTER: figures(1.0, False)},
    }
    rows = [line for line in table(result).splitlines() if line.startswith(("| exported", "| optimised"))]
    assert len(rows) == 2
    assert "| 4.00 |" in rows[0] and "×" not in rows[0]
    assert "1.00 (0.25×)" in rows[1] and rows[1].endswith("| NO |")
