"""Run by tests/unit/test_import_layout.py in a fresh interpreter, from the repository root as the tools run
(`python -m tests.unit.import_probe`): imports the contract, then the function, then every module of the
repository, and prints one JSON line saying what each step loaded. Standard library only, so that it loads
nothing the steps are judged by."""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import json
import sys
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Its import is the function's init: settings from the environment, boto3 clients, the model.
NEEDS_ITS_ENVIRONMENT = frozenset({"captioning.function.main"})


def root_packages() -> list[str]:
    """The repository's top-level packages: the import contract's (.importlinter) root packages."""
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / ".importlinter")
    return config["importlinter"]["root_packages"].split()


def module_name(path: Path) -> str:
    """The one name a file of the repository is imported under: its path from the repository root."""
    parts = path.resolve().relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def repository_modules() -> dict[str, Path]:
    """Every module of the root packages, by name."""
    modules: dict[str, Path] = {}
    for package in root_packages():
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            if not any(part == "__pycache__" or part.startswith(".") for part in path.parts):
                modules[module_name(path)] = path
    return modules


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def import_each(names: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """The modules the imports loaded, and each import that failed with its error."""
    before = set(sys.modules)
    failures: dict[str, str] = {}
    for name in names:
        try:
            importlib.import_module(name)
        except (Exception, SystemExit) as error:  # the test names the module and its error
            failures[name] = f"{type(error).__name__}: {error}"
    return sorted(set(sys.modules) - before), failures


def top_level_file(name: str) -> str | None:
    """The file the top-level name `name` imports, if any (without importing it)."""
    if name in sys.modules:
        return getattr(sys.modules[name], "__file__", None)
    spec = importlib.util.find_spec(name)
    return spec.origin if spec is not None else None


def second_names(modules: dict[str, Path]) -> dict[str, str]:
    """Nested modules also importable at the top level (a path entry inside the repository): a second
    name for `a.b.c` starts with `c`, or with `b` for its package, so the last part of every name is tried."""
    found: dict[str, str] = {}
    for name, path in modules.items():
        package, _, last = name.rpartition(".")
        if package and last != "__main__":
            file = top_level_file(last)
            if file is not None and Path(file).resolve() == path.resolve():
                found[name] = last
    return found


def main() -> None:
    modules = repository_modules()
    importable = [name for name in modules if name not in NEEDS_ITS_ENVIRONMENT]
    contract_loaded, contract_failures = import_each(
        n for n in importable if in_package(n, "captioning.contract")
    )
    function_loaded, function_failures = import_each(
        n for n in importable if in_package(n, "captioning.function")
    )
    _, other_failures = import_each(importable)
    package_directories = [REPO_ROOT / package for package in root_packages()]
    loaded = {
        name: str(Path(module.__file__).resolve())
        for name, module in sorted(sys.modules.items())
        if getattr(module, "__file__", None)
        and any(Path(module.__file__).resolve().is_relative_to(d) for d in package_directories)
    }
    print(
        json.dumps(
            {
                "modules": sorted(modules),
                "failures": contract_failures | function_failures | other_failures,
                "contract_loaded": contract_loaded,
                "function_loaded": function_loaded,
                "loaded": loaded,
                "second_names": second_names(modules),
            }
        )
    )


if __name__ == "__main__":
    main()
