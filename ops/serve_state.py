"""Where a running `python -m local serve` can be reached: one small JSON file, written by serve at start-up
and removed on exit, so `python -m ops --local` finds the emulator without copying its banner. ops owns the
format (it ships in the wheel and imports no other tool); serve writes the file through this module.

The file is `$CAPTIONING_LOCAL_STATE`, or `~/.cache/captioning/serve.json`. Its keys are KEYS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STATE_PATH_VARIABLE = "CAPTIONING_LOCAL_STATE"
DEFAULT_STATE_PATH = Path("~/.cache/captioning/serve.json")
KEYS = (
    "endpoint_url",
    "region",
    "bucket",
    "table",
    "queue_url",
    "dead_letter_queue_url",
    "trigger",
    "key_prefix",
    "key_suffixes",
    "pid",
)


class ServeStateError(RuntimeError):
    """No usable state file: serve is not running, or the file is not one serve wrote."""


def path() -> Path:
    """The state file's path: $CAPTIONING_LOCAL_STATE, else ~/.cache/captioning/serve.json."""
    configured = os.environ.get(STATE_PATH_VARIABLE)
    return Path(configured).expanduser() if configured else DEFAULT_STATE_PATH.expanduser()


def write(state: Mapping[str, Any], state_path: Path | None = None) -> Path:
    """Write the state (every key of KEYS, nothing else) atomically; returns the file's path."""
    missing = [key for key in KEYS if key not in state]
    extra = sorted(set(state) - set(KEYS))
    if missing or extra:
        raise ValueError(
            f"serve state needs exactly the keys {', '.join(KEYS)}; missing {missing}, extra {extra}"
        )
    target = state_path or path()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps({key: state[key] for key in KEYS}, indent=2) + "\n", encoding="utf-8")
    partial.replace(target)
    return target


def read(state_path: Path | None = None, *, check_running: bool = True) -> dict[str, Any]:
    """The state of the running serve. Raises ServeStateError, saying what to do, when there is none."""
    source = state_path or path()
    try:
        state = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ServeStateError(
            f"no local pipeline is running (no {source}); start one with `python -m local serve`"
        ) from None
    except (OSError, ValueError) as error:
        raise ServeStateError(f"cannot read the local pipeline's state file {source}: {error}") from None
    if not isinstance(state, dict) or any(key not in state for key in KEYS):
        raise ServeStateError(
            f"{source} is not a state file of `python -m local serve` (keys: {', '.join(KEYS)})"
        )
    if check_running and not _running(state["pid"]):
        raise ServeStateError(
            f"the local pipeline that wrote {source} (pid {state['pid']}) is no longer running; "
            "start one with `python -m local serve`"
        )
    return state


def remove(state_path: Path | None = None, *, pid: int | None = None) -> None:
    """Remove the state file; with `pid`, only if that process wrote it (a newer serve keeps its own)."""
    target = state_path or path()
    if pid is not None:
        try:
            if json.loads(target.read_text(encoding="utf-8")).get("pid") != pid:
                return
        except (OSError, ValueError, AttributeError):
            return
    target.unlink(missing_ok=True)


def _running(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True
