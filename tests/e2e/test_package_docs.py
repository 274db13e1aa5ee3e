"""The unit-test examples of docs/package.md and the README, run as a reader would: each marked code block
saved as a test module in a folder of its own and run with pytest, with the installed package (so neither
example can rot)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = (REPO_ROOT / "docs" / "package.md", REPO_ROOT / "README.md")
MARKER = "<!-- tests/e2e/test_package_docs.py runs the next code block with pytest"
CODE_BLOCK = re.compile(r"```python\n(?P<code>.*?)\n```", re.DOTALL)


def unit_test_example(document: Path) -> str:
    text = document.read_text()
    assert MARKER in text, f"{document.name} lost its marked unit-test example"
    found = CODE_BLOCK.search(text, text.index(MARKER))
    assert found is not None, "no python code block after the marker"
    return found.group("code") + "\n"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_the_documented_example_is_a_complete_short_test(document):
    code = unit_test_example(document)
    assert "@pulumi.runtime.test" in code
    assert code.index("set_mocks(") < code.index("CaptioningPipeline(")
    assert len(code.splitlines()) <= 25, "the example is meant to be read at a glance"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_the_documented_unit_test_passes_with_pytest(document, tmp_path):
    (tmp_path / "test_my_program.py").write_text(unit_test_example(document))
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(  # noqa: S603
        # Deprecation warnings of pulumi_aws's own modules silenced only to keep a failure's output readable.
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"]
        + ["test_my_program.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**environment, "CAPTIONING_BUILD_CACHE": str(tmp_path / "cache")},
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"\b1 passed\b", run.stdout), run.stdout[-2000:]
