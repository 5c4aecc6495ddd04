"""The rule for metric, parameter and tag keys."""

from __future__ import annotations

import re

from keel.errors import BadName

VOLATILE_TAG = "keel.volatile"  # metrics that differ by nature (wall-clock): not compared
# Metrics keel itself logs that are wall-clock times, volatile in runs recorded before the tag.
VOLATILE_METRICS = frozenset({"training_duration_s"})

__all__ = ["KEY_RULE", "VOLATILE_METRICS", "VOLATILE_TAG", "check_key"]

KEY_RULE = "1 to 250 characters from letters, digits, '_', '.', '-', '/' and space"
_KEY = re.compile(r"[A-Za-z0-9_.\-/ ]{1,250}")
_GOOD: set[str] = set()  # keys already checked: log_metric in a loop pays a set lookup


def check_key(key: str, what: str = "metric key") -> str:
    """Return ``key`` when it follows :data:`KEY_RULE`, else raise BadName.

    >>> check_key("val/loss")
    'val/loss'
    >>> check_key("a*b")
    Traceback (most recent call last):
    ...
    keel.errors.BadName: invalid metric key 'a*b': expected 1 to 250 characters from letters, digits, '_', '.', '-', '/' and space
    """
    if key in _GOOD:
        return key
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise BadName(what, str(key), KEY_RULE)
    if len(_GOOD) < 100_000:
        _GOOD.add(key)
    return key
