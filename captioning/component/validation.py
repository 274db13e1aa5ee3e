"""InvalidSettingError, and the checks every rule on a setting is written with.

Each failure names the setting, the value given and what is allowed, so a bad `pulumi config set` fails
at the start of `pulumi up` instead of half-way through. The rules themselves are the settings' own
(captioning.component.settings); the model's are captioning.component.model_check's.
"""

from __future__ import annotations

from collections.abc import Iterator


class InvalidSettingError(ValueError):
    """A pipeline setting AWS (or the captioner) would refuse."""

    def __init__(self, setting: str, value: object, allowed: str) -> None:
        self.setting = setting
        self.value = value
        self.allowed = allowed
        super().__init__(f"{setting}={value!r} is not allowed: {allowed}")

    def renamed(self, setting: str) -> InvalidSettingError:
        """The same error, naming the setting as the user spelled it (e.g. a config key)."""
        return InvalidSettingError(setting, self.value, self.allowed)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer_in_range(
    setting: str, value: object, bounds: tuple[int, int], unit: str
) -> Iterator[InvalidSettingError]:
    low, high = bounds
    if not is_int(value) or not low <= value <= high:  # type: ignore[operator]
        yield InvalidSettingError(setting, value, f"a whole number of {unit} from {low} to {high}")


def at_least(setting: str, value: object, low: int, note: str = "") -> Iterator[InvalidSettingError]:
    if not is_int(value) or value < low:  # type: ignore[operator]
        yield InvalidSettingError(setting, value, f"a whole number >= {low} {note}".rstrip())


def one_of(setting: str, value: object, allowed: tuple[str, ...]) -> Iterator[InvalidSettingError]:
    if value not in allowed:
        yield InvalidSettingError(setting, value, "one of " + ", ".join(repr(a) for a in allowed))
