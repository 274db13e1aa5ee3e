"""The model tables of README.md and docs/models.md, printed from the sizing figures
(captioning.component.model_sizing, captioning.component.measured_memory): `python -m
captioning.component.model_tables [readme|models]`.
tests/unit/test_model_tables.py holds both documents to what this prints."""

from __future__ import annotations

import math
import os

from captioning.component.model_sizing import (
    BYTES_PER_PARAMETER,
    FAMILY_NAMES,
    MB,
    MODELS,
    ONNX_FAMILIES,
    KnownModel,
    count_text,
    requirement,
    table_footprint,
)
from captioning.contract import constants


def _memory_cell(model: KnownModel, runtime: str, precision: str, images: int = 1) -> str:
    if runtime == "onnx" and model.family not in ONNX_FAMILIES:
        return "—"
    need = requirement(table_footprint(model), runtime, precision, images)
    if need is None:
        raise ValueError(f"no sizing for {runtime} {precision}")
    if need.measured is not None and need.measured.covers(images):
        return f"{need.total:,} MB (measured)"
    return f"{need.total:,} MB (est.)" if images > 1 and model.more_estimated else f"{need.total:,} MB"


def _weights_mb(model: KnownModel) -> int:
    return math.ceil(model.parameters * BYTES_PER_PARAMETER["torch", "fp32"] / MB)


def _short_ids(ids: list[str]) -> str:
    """`owner/name-base`, `-large`: later ids of a family without the prefix they share with the first."""
    if len(ids) == 1:
        return f"`{ids[0]}`"
    prefix = os.path.commonprefix(ids)
    prefix = prefix[: prefix.rfind("-")] if "-" in prefix else ""
    return ", ".join([f"`{ids[0]}`", *(f"`{model_id[len(prefix) :]}`" for model_id in ids[1:])])


def _joined(cells: list[str]) -> str:
    """ "1 MB" cells of one family's models as "1 / 2 MB" (a single cell as it is)."""
    if len(cells) == 1:
        return cells[0]
    return " / ".join(cell.removesuffix(" MB") for cell in cells) + " MB"


def readme_table() -> list[str]:
    """README.md's table: one row per family, memory for one image per call."""
    rows = ["| family | tested model ids | fp32 weights | memory |", "| --- | --- | ---: | ---: |"]
    for family, name in FAMILY_NAMES.items():
        models = [model for model in MODELS if model.family == family]
        ids = _short_ids([model.model_id for model in models])
        if any(model.model_id == constants.DEFAULT_MODEL_ID for model in models):
            ids += f" (default; {constants.DEFAULT_RUNTIME.upper()} runtime)"
        weights = " / ".join(f"{_weights_mb(model):,}" for model in models) + " MB"
        runtimes = ("onnx", "torch") if family in ONNX_FAMILIES else ("torch",)
        memory = ", ".join(
            _joined([_memory_cell(model, runtime, "fp32") for model in models])
            + (f" on {runtime}" if len(runtimes) > 1 else "")
            for runtime in runtimes
        )
        rows.append(f"| {name} | {ids} | {weights} | {memory} |")
    return rows


def models_table() -> list[str]:
    """docs/models.md's table: one row per model, memory per runtime, precision and batch."""
    rows = [
        "| model id | family | parameters | fp32 weights | memory: torch fp32, 1 image per call (direct)"
        " | torch fp32, queue batch of 10 | torch int8, 1 image | onnx fp32, 1 image | onnx int8, 1 image"
        " | caption time, 1 image (CPU s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model in MODELS:
        cells = [
            f"`{model.model_id}`",
            model.family,
            count_text(model.parameters),
            f"{_weights_mb(model):,} MB",
            _memory_cell(model, "torch", "fp32"),
            _memory_cell(model, "torch", "fp32", 10),
            _memory_cell(model, "torch", "int8"),
            _memory_cell(model, "onnx", "fp32"),
            _memory_cell(model, "onnx", "int8"),
            f"{model.caption_cpu_s:.1f}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


TABLES = {"readme": readme_table, "models": models_table}


def main(argv: list[str] | None = None) -> None:
    """`python -m captioning.component.model_tables [readme|models]`: print README.md's or docs/models.md's
    table."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m captioning.component.model_tables", description=main.__doc__
    )
    parser.add_argument("table", nargs="?", choices=sorted(TABLES), help="one table (default: both)")
    chosen = parser.parse_args(argv).table
    print("\n\n".join("\n".join(TABLES[name]()) for name in ([chosen] if chosen else TABLES)))


if __name__ == "__main__":
    main()
