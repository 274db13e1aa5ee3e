"""The fault-injection soak end to end with the demo model: nothing lost, every object accounted for.
(The injector, the objects and the accounting alone: tests/tools/test_local_faults.py.)"""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.soak import SUMMARY_KEYS

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- the quick soak, end to end with the demo model -----------------------------------------------------


@pytest.fixture(scope="module")
def quick_soak() -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    process = subprocess.run(  # noqa: S603  our own CLI, fixed arguments
        [
            sys.executable,
            "-m",
            "local",
            "soak",
            "--images",
            "40",
            "--fault-rate",
            "0.3",
            "--seed",
            "7",
            "--json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = process.stdout.strip().splitlines()
    assert lines, process.stderr[-4000:]
    return process, json.loads(lines[-1])


def test_quick_soak_loses_nothing_and_accounts_for_every_object(quick_soak: Any) -> None:
    process, summary = quick_soak
    assert set(SUMMARY_KEYS) <= set(summary)
    assert summary["uploaded"] == 40
    assert summary["lost"] == 0
    assert summary["captioned"] + summary["failed"] + summary["dead_lettered"] == summary["uploaded"]
    assert process.returncode == 0


def test_quick_soak_really_injected_faults_a_crash_and_duplicates(quick_soak: Any) -> None:
    _, summary = quick_soak
    assert summary["faults_injected"] > 0
    assert summary["workers_killed"] == 1
    assert summary["duplicate_events_sent"] > 0
    assert summary["redeliveries"] > 0  # at least the killed worker's batch came back
    assert summary["bad_objects"] > 0 and summary["failed"] + summary["dead_lettered"] >= 1


def test_quick_soak_keeps_captions_stable_and_right(quick_soak: Any) -> None:
    _, summary = quick_soak
    assert summary["duplicates"] == 0
    assert summary["wrong_captions"] <= 1  # the demo model scores >= 98 % on spec draws
