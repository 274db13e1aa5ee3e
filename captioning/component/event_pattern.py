"""The EventBridge rule pattern of eventbridge mode: S3's "Object Created" events of one bucket whose key
has the pipeline's keyPrefix and one of its keySuffixes. Plain data, no Pulumi, so the local pipeline can
match events with the same pattern.

Within one field EventBridge ORs the matchers of a list, so "starts with the prefix AND ends with a
suffix" cannot be a `prefix` and a `suffix` matcher side by side. With both, each suffix becomes one
`wildcard` matcher `<prefix>*<suffix>` (literal `*` and `\\` escaped with a backslash, as moto's
matcher takes them; not tried against AWS); with a prefix only, one `prefix` matcher; with suffixes
only, `suffix` matchers; with neither, no key condition. A wildcard needs the key to be at least as
long as prefix and suffix together, which S3's notification filters do not (a key shorter than both is
delivered by S3, not by the rule; no image key is that short).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from captioning.contract.constants import OBJECT_CREATED_DETAIL_TYPE, S3_EVENT_SOURCE

PATTERN_MAX_CHARACTERS = 2048
"""EventBridge's default quota on a rule's pattern size (raisable to 4096 by a quota request)."""
LONGEST_BUCKET_NAME = "b" * 63
"""Stands in for a created bucket's name (not known before deploy) when the pattern's size is checked."""


def _wildcard_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*")


def key_matchers(prefix: str, suffixes: Sequence[str]) -> list[dict[str, str]]:
    """The `detail.object.key` matchers (any one matches); [] for every key."""
    if prefix and suffixes:
        head = _wildcard_literal(prefix)
        return [{"wildcard": f"{head}*{_wildcard_literal(suffix)}"} for suffix in suffixes]
    if suffixes:
        return [{"suffix": suffix} for suffix in suffixes]
    if prefix:
        return [{"prefix": prefix}]
    return []


def object_created_pattern(bucket_name: str, prefix: str, suffixes: Sequence[str]) -> dict[str, Any]:
    """The rule's event pattern for this bucket and these key filters."""
    detail: dict[str, Any] = {"bucket": {"name": [bucket_name]}}
    matchers = key_matchers(prefix, suffixes)
    if matchers:
        detail["object"] = {"key": matchers}
    return {"source": [S3_EVENT_SOURCE], "detail-type": [OBJECT_CREATED_DETAIL_TYPE], "detail": detail}
