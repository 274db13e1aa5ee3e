"""The image's pinned dependencies agree with the repository's and with what the tests run against."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def read_pins(path: Path) -> dict[str, str]:
    """name (normalised, extras dropped) -> pinned version, for every `name==version` line."""
    pins = {}
    for line in path.read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if not requirement:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", requirement)
        assert match, f"{path.name}: {requirement!r} is not pinned with =="
        pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
    return pins


def _installed(name: str) -> str:
    return version(name).split("+", 1)[0]  # torch reports 2.13.0+cpu


def test_every_handler_requirement_is_pinned_and_matches_the_repository() -> None:
    handler_pins = read_pins(REPO_ROOT / "handler" / "requirements-torch.txt")
    repository_pins = read_pins(REPO_ROOT / "requirements.txt")
    shared = handler_pins.keys() & repository_pins.keys()
    assert {"torch", "transformers", "pillow", "aws-lambda-powertools", "boto3"} <= shared
    assert {name: handler_pins[name] for name in shared} == {name: repository_pins[name] for name in shared}


def test_handler_pins_are_what_the_tests_run_against() -> None:
    handler_pins = read_pins(REPO_ROOT / "handler" / "requirements-torch.txt")
    assert handler_pins == {name: _installed(name) for name in handler_pins}


def test_torch_is_the_cpu_build_here_too() -> None:
    assert version("torch").endswith("+cpu")
