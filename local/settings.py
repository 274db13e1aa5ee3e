"""One settings object for every `python -m local` command, checked before anything heavy is imported.

The key filters and their defaults, the batch size's default and limit, and the model-directory check are
the component's own (captioning/contract/key_filters.py, captioning/component/settings.py and limits.py,
captioning/contract/model_files.py), so the emulated pipeline only captions what the deployed one would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from captioning.component import limits
from captioning.component.settings import PipelineSettings
from captioning.component.validation import InvalidSettingError
from captioning.contract.constants import DEFAULT_MODEL_ID, TRIGGERS
from captioning.contract.key_filters import EVERY_KEY, KeyFilter, delivered, key_filters
from captioning.contract.model_files import model_directory_problem
from models import DEMO_MODEL_DIR

DEMO_MODEL_HINT = (
    "note: the demo model only knows the shapes spec (one coloured circle, square or triangle on a plain "
    "background; models/shapes.py) and gives any other picture such a caption too. For real captions: "
    f"python -m captioning.preparation --model-id {DEFAULT_MODEL_ID} --output DIR, then --model DIR"
)

SOAK_DEFAULTS: dict[str, object] = {
    "workers": 2,
    "batch_size": 5,
    "visibility_timeout_s": 10,
    "max_receive_count": 4,
    "log_level": "ERROR",  # injected faults make the function log a warning per retry
    "all_keys": True,  # its bad objects include a .pdf: the soak is about faults, not key filters
}
"""The soak's own sizing, over LocalSettings' defaults (which suit `caption` and `serve`): soak_settings()."""


LOCAL_TRIGGERS: tuple[str, ...] = tuple(trigger for trigger in TRIGGERS if trigger != "direct")
"""The contract's triggers the local pipeline emulates (direct mode would need Lambda to invoke the
function on each upload)."""


class SettingsError(ValueError):
    """A setting the local pipeline cannot run with; the message names it and what is allowed."""


@dataclass(frozen=True)
class LocalSettings:
    """How the emulated pipeline is sized and what it runs; the defaults suit `caption`."""

    model_dir: Path = DEMO_MODEL_DIR
    function_image: str | None = None
    """Run this function image under the Lambda runtime emulator instead of the handler in-process."""
    workers: int = 1
    # The component's defaults, read from its class: constructing PipelineSettings checks a whole pipeline.
    batch_size: int = PipelineSettings.batch_size
    visibility_timeout_s: int | None = None
    """The function timeout, and the queue's visibility timeout: equal here, so a failed message comes
    back as soon as AWS would allow (the component sets six times the timeout). None: 30 s, or 3 s a
    message for bigger batches."""
    max_receive_count: int = 3
    log_level: str = "WARNING"
    verbose: bool = False
    port: int = 0
    key_prefix: str = PipelineSettings.key_prefix
    key_suffixes: tuple[str, ...] = PipelineSettings.key_suffixes
    all_keys: bool = False
    """Caption every key, even ones the deployed notification's key filters would not deliver."""
    trigger: str = "queue"
    """queue: S3 notifications to the upload queue; eventbridge: the bucket's EventBridge events, a rule
    with the component's pattern delivering them to the same queue."""
    caption_events: bool = False
    """The function publishes caption events (CAPTION_EVENTS); a rule delivers them to a queue of theirs."""
    as_json: bool = False
    # the soak
    images: int = 300
    fault_rate: float = 0.2
    seed: int = 0
    filters: tuple[KeyFilter, ...] = field(init=False)
    """The deployed notification's rules for key_prefix and key_suffixes; with all_keys, one for every key."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise SettingsError(f"--workers must be at least 1, got {self.workers}")
        if self.trigger not in LOCAL_TRIGGERS:
            raise SettingsError(f"--trigger must be one of {', '.join(LOCAL_TRIGGERS)}, got {self.trigger!r}")
        low, high = limits.SQS_BATCH_SIZE
        if not low <= self.batch_size <= high:
            raise SettingsError(
                f"--batch-size must be {low}-{high} (SQS event source mapping limit), got {self.batch_size}"
            )
        object.__setattr__(self, "filters", self._key_filters())

    def _key_filters(self) -> tuple[KeyFilter, ...]:
        if self.all_keys:
            return EVERY_KEY
        try:  # the component's checks of the two settings
            PipelineSettings(key_prefix=self.key_prefix, key_suffixes=tuple(self.key_suffixes))
        except InvalidSettingError as error:
            option = {"key_prefix": "--key-prefix", "key_suffixes": "--key-suffix"}.get(error.setting)
            raise SettingsError(str(error.renamed(option)) if option else str(error)) from None
        return key_filters(self.key_prefix, self.key_suffixes)

    @property
    def delivers_every_key(self) -> bool:
        """--all-keys, or no prefix and no suffix: every key reaches the function."""
        return any(rule.every_key for rule in self.filters)

    @property
    def uses_demo_model(self) -> bool:
        return self.function_image is None and self.model_dir.resolve() == DEMO_MODEL_DIR

    @property
    def function_timeout_s(self) -> int:
        if self.visibility_timeout_s is not None:
            return self.visibility_timeout_s
        return max(30, 3 * self.batch_size)

    @property
    def stall_timeout_s(self) -> float:
        """How long to wait without any key being accounted for before giving up.

        A message may need every delivery (each up to a visibility timeout) before the DLQ takes it.
        """
        return max(120.0, 2.0 * self.function_timeout_s * (self.max_receive_count + 1))

    def skip_reason(self, key: str) -> str | None:
        """Why the deployed notification would not deliver `key` to the function; None if it would."""
        if delivered(key, self.filters):
            return None
        wanted = []
        if self.key_prefix:
            wanted.append(f"start with {self.key_prefix!r} (keyPrefix)")
        if self.key_suffixes:
            wanted.append(f"end with {suffixes_text(self.key_suffixes)} (keySuffixes; case counts)")
        return f"not delivered as deployed: keys must {' and '.join(wanted)}; --all-keys captions it anyway"


def suffixes_text(suffixes: tuple[str, ...]) -> str:
    """Key suffixes for a person to read: ".jpg .png in lower or upper case" for a list that holds each
    lower-case suffix and its upper-case twin (as the default does), else all of them as given."""
    lower = tuple(suffix for suffix in suffixes if suffix != suffix.upper())
    if lower and sorted(suffixes) == sorted(lower + tuple(suffix.upper() for suffix in lower)):
        return f"{' '.join(lower)} in lower or upper case"
    return " ".join(suffixes)


def check_model_directory(model_dir: Path) -> None:
    """Fail fast, before torch is imported, when a directory has no model in it
    (captioning/contract/model_files.py's
    rule, the component's and prepare_model's too)."""
    problem = model_directory_problem(model_dir)
    if problem is not None:
        raise SettingsError(
            f"{problem} (get one with `python -m captioning.preparation --model-id ID --output DIR`)"
        )


def soak_settings(**overrides: object) -> LocalSettings:
    """LocalSettings with the soak's defaults, then `overrides`."""
    return LocalSettings(**{**SOAK_DEFAULTS, **overrides})  # type: ignore[arg-type]
