"""The image's pinned dependencies agree with the repository's and with what the tests run against."""

from __future__ import annotations

import re
from importlib.metadata import requires, version
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def read_pins(path: Path) -> dict[str, str]:
    """name (normalised, extras dropped) -> pinned version, for every `name==version` line."""
    pins = {}
    for line in path.read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if not requirement or requirement.startswith(("-r ", "-e ")):
            continue  # an included file or the editable component package, not a pin
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", requirement)
        assert match, f"{path.name}: {requirement!r} is not pinned with =="
        pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
    return pins


def _installed(name: str) -> str:
    return version(name).split("+", 1)[0]  # torch reports 2.13.0+cpu


def test_every_handler_requirement_is_pinned_and_matches_the_repository() -> None:
    handler_pins = read_pins(REPO_ROOT / "captioning" / "function" / "requirements-torch.txt")
    repository_pins = read_pins(REPO_ROOT / "requirements-dev.txt")
    shared = handler_pins.keys() & repository_pins.keys()
    assert {"torch", "transformers", "pillow", "aws-lambda-powertools", "boto3"} <= shared
    assert {name: handler_pins[name] for name in shared} == {name: repository_pins[name] for name in shared}


def test_handler_pins_are_what_the_tests_run_against() -> None:
    handler_pins = read_pins(REPO_ROOT / "captioning" / "function" / "requirements-torch.txt")
    assert handler_pins == {name: _installed(name) for name in handler_pins}


def test_torch_is_the_cpu_build_here_too() -> None:
    assert version("torch").endswith("+cpu")


# Declared dependencies the onnx runtime never imports (checked: `import onnxruntime`, an InferenceSession,
# tokenizers' Tokenizer.from_file and captioning.function.main all work in a venv with only
# requirements-onnx.txt).
NOT_IMPORTED_AT_RUN_TIME = {
    "onnxruntime": {"flatbuffers", "packaging", "protobuf"},
    "tokenizers": {"huggingface-hub"},
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_dependencies(name: str) -> set[str]:
    from packaging.requirements import Requirement

    found = set()
    for line in requires(name) or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            found.add(_normalise(requirement.name))
    return found


def test_onnx_requirements_are_a_closed_pinned_set_without_torch() -> None:
    pins = read_pins(REPO_ROOT / "captioning" / "function" / "requirements-onnx.txt")
    assert not {"torch", "transformers", "huggingface-hub", "safetensors"} & pins.keys()
    missing = {
        name: sorted(_runtime_dependencies(name) - pins.keys() - NOT_IMPORTED_AT_RUN_TIME.get(name, set()))
        for name in pins
    }
    assert {name: deps for name, deps in missing.items() if deps} == {}


def test_onnx_and_build_pins_match_the_repository_and_the_test_environment() -> None:
    repository_pins = read_pins(REPO_ROOT / "requirements-dev.txt")
    for file_name in ("function/requirements-onnx.txt", "preparation/requirements-build.txt"):
        pins = read_pins(REPO_ROOT / "captioning" / file_name)
        shared = pins.keys() & repository_pins.keys()
        assert {name: pins[name] for name in shared} == {name: repository_pins[name] for name in shared}
        assert pins == {name: _installed(name) for name in pins}, file_name


def test_the_packages_extras_pin_what_the_repository_tests_with() -> None:
    """pyproject.toml's optional dependencies (`captioning[ops]`) are requirements-dev.txt's pins."""
    import tomllib

    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    repository_pins = read_pins(REPO_ROOT / "requirements-dev.txt")
    for extra, requirements in extras.items():
        pins = {
            re.sub(r"[-_.]+", "-", name).lower(): pinned
            for name, pinned in (requirement.split("==", 1) for requirement in requirements)
        }
        assert pins == {name: repository_pins.get(name) for name in pins}, extra
