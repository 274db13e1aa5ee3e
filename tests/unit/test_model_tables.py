"""README.md's and docs/models.md's model tables are what `python -m captioning.component.model_tables` prints
from the figures the sizing check uses, so they cannot drift from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from captioning.component import model_tables
from captioning.component.measured_memory import MEASURED
from captioning.component.model_sizing import MODELS

REPO = Path(__file__).resolve().parents[2]


def _table_in(document: Path, header: str) -> list[str]:
    """The markdown table of `document` that starts with `header`, one line per row."""
    lines = document.read_text(encoding="utf-8").splitlines()
    start = lines.index(header)
    end = next((index for index in range(start, len(lines)) if not lines[index].startswith("|")), len(lines))
    return lines[start:end]


@pytest.mark.parametrize(
    ("document", "printed"),
    [("README.md", model_tables.readme_table), ("docs/models.md", model_tables.models_table)],
)
def test_the_documents_model_table_is_the_printed_one(document: str, printed) -> None:
    rows = printed()
    assert _table_in(REPO / document, rows[0]) == rows, (
        f"{document}'s model table differs from `python -m captioning.component.model_tables`:"
        " paste its output"
    )


def test_the_printed_tables_hold_every_model_and_the_measured_sizes() -> None:
    readme, models = model_tables.readme_table(), model_tables.models_table()
    assert len(models) == 2 + len(MODELS)
    for model in MODELS:
        assert any(f"`{model.model_id}`" in row for row in models)
    (vit_gpt2,) = [row for row in models if f"`{MEASURED[0].model_id}`" in row]
    for sizes in MEASURED:
        assert f"{sizes.floor_mb:,} MB (measured)" in vit_gpt2
    assert "2,048 MB (measured) on onnx" in readme[2]


def test_the_command_prints_each_table_or_both() -> None:
    def run(*arguments: str) -> str:
        command = [sys.executable, "-m", "captioning.component.model_tables", *arguments]
        completed = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)  # noqa: S603
        assert completed.stderr == ""
        return completed.stdout

    readme, models = run("readme"), run("models")
    assert readme.splitlines() == model_tables.readme_table()
    assert models.splitlines() == model_tables.models_table()
    assert run() == readme + "\n" + models
