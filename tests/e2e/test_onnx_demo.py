"""The ONNX runtime on the demo model (models/demo-shapes): float32 captions equal the torch model's on the
samples and on held-out draws; int8 (quantised at build) keeps the held-out accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from captioning.function.captioner import Captioner
from captioning.function.images import load_image
from captioning.preparation.export import export_onnx
from models import evaluate

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL_DIR = REPO_ROOT / "models" / "demo-shapes"
SAMPLES_DIR = REPO_ROOT / "samples"
DEMO_ACCURACY_FLOOR = 0.98
HELD_OUT_SEED = 515_151
HELD_OUT_COUNT = 64


@pytest.fixture(scope="module")
def demo_onnx_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not (DEMO_MODEL_DIR / "config.json").is_file():
        pytest.skip("models/demo-shapes has not been trained yet")
    root = tmp_path_factory.mktemp("demo-onnx")
    dirs = {precision: root / precision for precision in ("fp32", "int8")}
    for precision, directory in dirs.items():
        export_onnx(DEMO_MODEL_DIR, directory, precision=precision)
    return dirs


@pytest.fixture(scope="module")
def torch_demo() -> Captioner:
    return Captioner.load(DEMO_MODEL_DIR)


def test_fp32_captions_of_the_samples_equal_the_torch_models(demo_onnx_dirs, torch_demo) -> None:
    expected_by_name = json.loads((SAMPLES_DIR / "captions.json").read_text(encoding="utf-8"))
    names = sorted(expected_by_name)
    images = [load_image((SAMPLES_DIR / "images" / name).read_bytes()) for name in names]
    captioner = Captioner.load(demo_onnx_dirs["fp32"])

    captions = captioner.caption(images)

    assert captioner.runtime == "onnx"
    assert captions == torch_demo.caption(images)
    assert dict(zip(names, captions, strict=True)) == expected_by_name


@pytest.mark.parametrize("num_beams", [1, 4])
def test_fp32_held_out_captions_equal_the_torch_models(demo_onnx_dirs, torch_demo, num_beams: int) -> None:
    images = [load_image(data) for data, _ in evaluate.held_out_uploads(HELD_OUT_SEED, 24)]
    onnx_captioner = Captioner.load(demo_onnx_dirs["fp32"], num_beams=num_beams)
    torch_captioner = Captioner.load(DEMO_MODEL_DIR, num_beams=num_beams)

    assert onnx_captioner.caption(images) == torch_captioner.caption(images)


def test_int8_keeps_the_demo_models_held_out_accuracy(demo_onnx_dirs) -> None:
    captioner = Captioner.load(demo_onnx_dirs["int8"], precision="int8")
    uploads = evaluate.held_out_uploads(HELD_OUT_SEED + 1, HELD_OUT_COUNT)

    result = evaluate.score(captioner.caption, "int8", uploads)

    assert captioner.precision == "int8"
    assert result.total == HELD_OUT_COUNT
    assert result.accuracy >= DEMO_ACCURACY_FLOOR, result.mistakes[:5]
