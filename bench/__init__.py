"""`make bench`: the original design against the project (see bench/__main__.py)."""

import os
from pathlib import Path

DEFAULT_CACHE = Path(os.environ.get("CAPTIONING_BENCH_CACHE", Path.home() / ".cache" / "captioning-bench"))
"""Where the bench keeps its virtual environments, models and inputs between runs (--cache-dir)."""
