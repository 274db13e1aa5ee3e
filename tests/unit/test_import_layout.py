"""Every module of the repository imports, under one name only, and each lifecycle loads only what it may:
the contract the standard library, the function nothing the image does not ship. Checked in a fresh
interpreter (tests/unit/import_probe.py), so that nothing this test process imported counts. The static
direction of imports is .importlinter's (`make lint`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.unit.import_probe import REPO_ROOT, in_package, module_name, root_packages


def in_the_image(name: str) -> bool:
    """Whether the image ships this module of the project (captioning/function/Dockerfile's final stage)."""
    return (
        name == "captioning"
        or in_package(name, "captioning.contract")
        or in_package(name, "captioning.function")
    )


def package_of(name: str) -> str:
    """What a failure names: a module's top-level package, or its part of captioning (captioning.x)."""
    parts = name.split(".")
    return ".".join(parts[:2] if parts[0] == "captioning" else parts[:1])


@pytest.fixture(scope="module")
def probe() -> dict:
    completed = subprocess.run(  # noqa: S603  (this interpreter, a fixed module)
        [sys.executable, "-m", "tests.unit.import_probe"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


def test_the_probe_finds_every_package_of_the_repository(probe: dict) -> None:
    assert set(root_packages()) <= set(probe["modules"])
    assert "captioning.function.cpus" in probe["modules"]


def test_every_module_of_the_repository_imports(probe: dict) -> None:
    assert probe["failures"] == {}


def test_every_loaded_module_has_the_one_name_its_path_gives_it(probe: dict) -> None:
    names_by_file: dict[str, list[str]] = defaultdict(list)
    for name, file in probe["loaded"].items():
        names_by_file[file].append(name)
    wrong = {
        file: names
        for file, names in names_by_file.items()
        if len(names) > 1 or names[0] != module_name(Path(file))
    }
    assert wrong == {}


def test_no_module_is_importable_under_a_second_top_level_name(probe: dict) -> None:
    """E.g. a .pth, PYTHONPATH or an editable install's mapping that puts captioning/ on the path makes
    captioning/function/ importable as `function` too."""
    assert probe["second_names"] == {}


def test_the_contract_loads_the_standard_library_only(probe: dict) -> None:
    outside = {
        package_of(name)
        for name in probe["contract_loaded"]
        if name.partition(".")[0] not in sys.stdlib_module_names
        and name != "captioning"
        and not in_package(name, "captioning.contract")
    }
    assert sorted(outside) == []
    assert "captioning.contract.constants" in probe["contract_loaded"]


def test_the_function_loads_no_pulumi_no_component_and_no_tool(probe: dict) -> None:
    tools = [package for package in root_packages() if package != "captioning"]
    outside = {
        package_of(name)
        for name in probe["function_loaded"]
        if name.partition(".")[0].startswith("pulumi")
        or name.partition(".")[0] in tools
        or (in_package(name, "captioning") and not in_the_image(name))
    }
    assert sorted(outside) == []
    assert "captioning.function.captioner" in probe["function_loaded"]


def test_make_image_builds_without_the_component_or_pulumi() -> None:
    """`make image` (imagebuild.function_image) takes its build args and Dockerfile path from the contract."""
    completed = subprocess.run(  # noqa: S603  (this interpreter, a fixed program)
        [
            sys.executable,
            "-c",
            "import json, sys, imagebuild.function_image; print(json.dumps(sorted("
            "m for m in sys.modules if m.startswith(('pulumi', 'captioning.component')))))",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(completed.stdout) == []
