"""The function's settings, read from the environment the component writes, and its INIT."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from captioning.contract.constants import MODEL_DIR_IN_IMAGE as DEFAULT_MODEL_DIR
from captioning.function.processing import CaptionHandler
from captioning.function.settings import Settings, SettingsError
from tests.function.conftest import (
    MODEL_ID,
    TABLE,
    function_environment,
)

# --- settings -------------------------------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    settings = Settings.from_environment(
        {
            "TABLE_NAME": "t",
            "NUM_BEAMS": "2",
            "MAX_LENGTH": "20",
            "PRECISION": "int8",
            "MAX_OBJECT_BYTES": "99",
        }
    )
    assert settings == Settings(
        table_name="t",
        model_dir=Path(DEFAULT_MODEL_DIR),
        model_id="model",
        num_beams=2,
        max_length=20,
        precision="int8",
        max_object_bytes=99,
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "TABLE_NAME is not set"),
        ({"TABLE_NAME": "t", "NUM_BEAMS": "four"}, "NUM_BEAMS must be a positive integer; got 'four'"),
        ({"TABLE_NAME": "t", "MAX_LENGTH": "0"}, "MAX_LENGTH must be a positive integer; got '0'"),
        ({"TABLE_NAME": "t", "PRECISION": "fp16"}, "PRECISION must be one of fp32, bf16, int8; got 'fp16'"),
    ],
)
def test_bad_settings_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_environment(environ)


def test_init_reads_the_environment(function: CaptionHandler, tiny_model_dir: Path) -> None:
    assert function.settings.table_name == TABLE
    assert function.settings.model_dir == tiny_model_dir
    assert function.captioner.model_id == MODEL_ID
    assert (function.captioner.num_beams, function.captioner.max_length) == (2, 6)
    for client in (function.s3_client, function.dynamodb_client):
        assert client.meta.config.retries["mode"] == "standard"


def test_importing_main_is_the_init(tiny_model_dir: Path) -> None:
    """captioning.function.main, the image's CMD, is the same INIT and hands Lambda its handler."""
    sys.modules.pop("captioning.function.main", None)
    with function_environment(tiny_model_dir):
        main = importlib.import_module("captioning.function.main")
    assert isinstance(main.function, CaptionHandler)
    assert main.handler == main.function.handler
    assert main.function.settings.table_name == TABLE
