"""Argument types for the project's command lines (`python -m ops`, `python -m local`, `models.*`, `bench`):
each refuses a bad value with one line saying what is allowed. Standard library only, so `--help` and a
typo never wait for a heavy import. Here because ops is the one tool in the wheel: the others import it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_in_range(low: int, high: int | None = None, *, what: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` (no upper bound when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}{what}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be {low}-{high}{what}, got {value}")
        return value

    return parse


positive_int = int_in_range(1)
"""A whole number, at least 1."""

port = int_in_range(0, 65535, what=" (0: any free port)")
"""A TCP port, or 0 for any free one."""


def positive_number(text: str) -> float:
    """An argparse type: a number more than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def help_description(docstring: str | None) -> str:
    """A command's --help description: its module docstring's first paragraph, on one line."""
    return " ".join((docstring or "").split("\n\n")[0].split())
