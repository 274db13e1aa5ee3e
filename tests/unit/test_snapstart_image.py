"""What SnapStart needs of the image, read without Docker: the function stage allows SnapStart by label
(any base that is not AWS's Python 3.12+ image needs it, or publishing a SnapStart version fails), and
both runtimes' requirements pin the hooks' library (captioning/function/snapstart.py imports it).
tests/image/test_snapstart.py checks the built image's label and runs the hooks in it."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import shlex

from tests.unit.test_dockerfile import DOCKERFILE, REPO_ROOT, parse_dockerfile
from tests.unit.test_handler_pins import read_pins

SNAPSTART_LABEL = ("com.amazonaws.lambda.feature.snapstart", "Allow")


def labels(arguments: str) -> dict[str, str]:
    return dict(word.partition("=")[::2] for word in shlex.split(arguments))


def test_the_function_stage_allows_snapstart_and_is_the_last() -> None:
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    final = stages[-1]
    assert final.name == "function"
    found = [labels(arguments) for keyword, arguments in final.instructions if keyword == "LABEL"]
    assert any(dict([SNAPSTART_LABEL]).items() <= label.items() for label in found), found
    for stage in stages[:-1]:  # a build stage's label does not reach the image
        assert not any(keyword == "LABEL" for keyword, _ in stage.instructions), stage.name


def test_both_runtimes_pin_the_runtime_hooks_library() -> None:
    pins = [
        read_pins(REPO_ROOT / "captioning" / "function" / f"requirements-{runtime}.txt")
        for runtime in ("onnx", "torch")
    ]
    assert {runtime_pins.get("snapshot-restore-py") for runtime_pins in pins} == {"1.0.0"}
