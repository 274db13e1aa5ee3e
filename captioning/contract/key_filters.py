"""Which object keys the bucket's notification delivers: one type for the component's notification rules,
the local emulator's bucket and `python -m ops backfill`'s choice of keys. Standard library only.

A pipeline's keyPrefix and keySuffixes become one S3 notification rule per suffix (S3 takes a single
suffix per rule), or one rule for the prefix alone when there is no suffix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KeyFilter:
    """One notification rule's key filter. S3 matches both parts case-sensitively; None matches any key."""

    prefix: str | None = None
    suffix: str | None = None

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix or "") and key.endswith(self.suffix or "")

    @property
    def every_key(self) -> bool:
        """No prefix and no suffix: the rule delivers every key."""
        return not self.prefix and not self.suffix

    def pulumi_args(self) -> dict[str, str | None]:
        """As pulumi_aws's BucketNotificationLambdaFunctionArgs and BucketNotificationQueueArgs take it."""
        return {"filter_prefix": self.prefix or None, "filter_suffix": self.suffix or None}

    def s3_filter(self) -> dict[str, Any] | None:
        """A rule's `Filter` as S3's PutBucketNotificationConfiguration takes it; None for every key."""
        rules = [
            {"Name": name, "Value": value}
            for name, value in (("prefix", self.prefix), ("suffix", self.suffix))
            if value
        ]
        return {"Key": {"FilterRules": rules}} if rules else None


EVERY_KEY: tuple[KeyFilter, ...] = (KeyFilter(),)
"""The rules of a notification that delivers every key."""


def key_filters(prefix: str | None, suffixes: Sequence[str]) -> tuple[KeyFilter, ...]:
    """The notification rules of a pipeline's keyPrefix and keySuffixes ("" and () for every key)."""
    return tuple(KeyFilter(prefix or None, suffix) for suffix in suffixes) or (KeyFilter(prefix or None),)


def delivered(key: str, filters: Sequence[KeyFilter]) -> bool:
    """Whether a notification with these rules delivers `key`."""
    return any(rule.matches(key) for rule in filters)
