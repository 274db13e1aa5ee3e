"""One file per default key suffix, each format the function decodes, is captioned end to end through
`python -m local caption` with the demo model. The suffixes and formats kept in step:
tests/function/test_formats.py; the same files through the built image:
tests/image/test_function_in_container.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_local
from tests.formats import CAPTION, format_files


def test_one_file_per_default_suffix_is_captioned_through_the_local_pipeline(tmp_path: Path) -> None:
    files = format_files()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = run_local("caption", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert rows == {
        name: {"key": name, "status": "captioned", "caption": CAPTION} for name in sorted(files)
    }, result.stderr[-3000:]
