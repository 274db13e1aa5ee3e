"""What a new user trips on, answered: the models' command lines name themselves, explain their options,
refuse nonsense and answer --help at once; `python -m local` run with the wrong Python says what to do."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  our own modules, fixed arguments
        [sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize("module", ["models.evaluate", "models.samples", "models.train_demo_shapes"])
def test_model_commands_call_themselves_by_the_command_a_user_types(module: str) -> None:
    result = run("-m", module, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: python -m {module} ")


def test_every_option_of_the_models_commands_is_explained() -> None:
    for module in ("models.evaluate", "models.samples", "models.train_demo_shapes"):
        help_text = run("-m", module, "--help").stdout
        options = [line.split()[0] for line in help_text.splitlines() if line.startswith("  --")]
        assert options, help_text
        for line in help_text.split("options:")[1].split("\n  -")[1:]:
            assert len(line.split()) > 2, f"{module}: option without help: -{line.strip()}"


def test_train_demo_shapes_help_does_not_load_torch() -> None:
    started = time.monotonic()
    assert run("-m", "models.train_demo_shapes", "--help").returncode == 0
    assert time.monotonic() - started < 3.0
    probe = run("-c", "import sys, models.train_demo_shapes; print('torch' in sys.modules)")
    assert probe.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("module", "arguments", "message"),
    [
        ("models.evaluate", ["--threads", "0"], "argument --threads: must be at least 1, got 0"),
        ("models.evaluate", ["--count", "0"], "argument --count: must be at least 1, got 0"),
        ("models.train_demo_shapes", ["--steps", "0"], "argument --steps: must be at least 1, got 0"),
    ],
)
def test_nonsense_counts_are_refused_before_any_work(module: str, arguments: list[str], message: str) -> None:
    result = run("-m", module, *arguments, timeout=20)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"python -m {module}: error: {message}")


def test_local_with_a_python_that_lacks_the_packages_says_which_python_to_use() -> None:
    result = run(
        "-c",
        "import sys, runpy; sys.modules['pulumi'] = None; sys.argv = ['local', '--help']; "
        "runpy.run_module('local', run_name='__main__')",
    )
    assert result.returncode == 1
    assert "the package 'pulumi' is missing" in result.stderr
    assert f"cd {REPO_ROOT} && .venv/bin/python -m local" in result.stderr
    assert "Traceback" not in result.stderr
