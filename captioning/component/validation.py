"""InvalidSettingError, and the checks every rule on a setting is written with.

Each failure names the setting, the value given and what is allowed, so a bad `pulumi config set` fails
at the start of `pulumi up` instead of half-way through. The rules themselves are the settings' own
(captioning.component.settings); the model's are captioning.component.model_check's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence


class InvalidSettingError(ValueError):
    """A pipeline setting AWS (or the captioner) would refuse.

    `allowed` may name other settings as `{setting_name}` fields, listed in `related`: the message spells
    them as the setting itself is spelled (`renamed` with a spelling: a config key, the schema's
    camelCase), so a refused combination names both keys the way the user wrote them.
    """

    def __init__(self, setting: str, value: object, allowed: str, *, related: Sequence[str] = ()) -> None:
        self.setting = setting
        self.value = value
        self.allowed = allowed
        self.related = tuple(related)
        self._spelled = allowed.format(**{name: name for name in self.related}) if self.related else allowed
        super().__init__(f"{setting}={value!r} is not allowed: {self._spelled}")

    def renamed(self, setting: str, spelling: Callable[[str], str] | None = None) -> InvalidSettingError:
        """The same error, naming the setting as the user spelled it (e.g. a config key); `spelling` turns
        the other settings' names the message mentions into the same form."""
        if not self.related or spelling is None:
            return InvalidSettingError(setting, self.value, self._spelled)
        allowed = self.allowed.format(**{name: spelling(name) for name in self.related})
        return InvalidSettingError(setting, self.value, allowed)


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
