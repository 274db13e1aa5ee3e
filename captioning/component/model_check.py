"""The checks that read the model: its directory holds a model the chosen runtime can use, and the model
fits in the function's memory (captioning.component.model_sizing, which may ask the Hub for its size).

An explicit step, run by the component (and by the stack program's config reader, to name the config
key) before anything is registered; never when PipelineSettings are constructed, so the tools that
build settings to read their defaults touch no file and no network.
"""

from __future__ import annotations

from collections.abc import Iterator

from captioning.component import model_sizing
from captioning.component.build_context import program_directory, resolve_model_dir
from captioning.component.settings import PipelineSettings
from captioning.component.validation import InvalidSettingError
from captioning.contract.model_files import (
    WHAT_A_MODEL_DIRECTORY_HOLDS,
    is_prepared_onnx,
    missing_model_files,
    prepared_onnx_precision,
)


def check_model_fits(settings: PipelineSettings) -> None:
    """Raise the first InvalidSettingError about the model of `settings` (already validated)."""
    for error in model_errors(settings):
        raise error


def model_errors(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    """What is wrong with the model directory, then with the memory the model needs."""
    yield from _model_dir_errors(settings)  # first: sizing reads the directory
    yield from model_sizing.memory_errors(settings)


def _model_dir_errors(settings: PipelineSettings) -> Iterator[InvalidSettingError]:
    model_dir = settings.model_dir
    if not isinstance(model_dir, str) or not model_dir.strip():
        return  # unset (download model_id); anything else is refused by the settings' own validation
    directory = resolve_model_dir(model_dir)
    if not directory.is_dir():
        yield InvalidSettingError(
            "model_dir",
            model_dir,
            f"an existing model directory ({directory} is not one; a relative path is "
            f"taken from the program's directory, {program_directory()}), or unset to download model_id",
        )
        return
    missing = missing_model_files(directory)
    if missing:
        # The image build would fail on it (prepare_model --source), never download model_id instead.
        yield InvalidSettingError(
            "model_dir",
            model_dir,
            f"a directory that holds a model ({directory} is missing {' and '.join(missing)}; "
            f"{WHAT_A_MODEL_DIRECTORY_HOLDS}), or unset to download model_id",
        )
        return
    if is_prepared_onnx(directory):
        built = prepared_onnx_precision(directory)
        if settings.runtime != "onnx":
            yield InvalidSettingError(
                "runtime",
                settings.runtime,
                f"'onnx' with model_dir {model_dir} (a prepared ONNX model); for the torch runtime "
                "set model_dir to the transformers model (config.json and weights) it was exported from",
            )
        elif settings.precision != built:
            yield InvalidSettingError(
                "precision",
                settings.precision,
                f"{built!r} with model_dir {model_dir} (its ONNX graphs were prepared in {built}); "
                "set model_dir to the transformers model to build another precision",
            )
