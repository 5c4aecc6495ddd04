"""The naming rule for datasets, models and experiments. Standard library only (a leaf)."""

from __future__ import annotations

import re

from keel.errors import BadName

__all__ = ["NAME_RULE", "check_name"]

NAME_RULE = "1 to 128 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_name(name: str, what: str = "dataset name") -> str:
    """Return ``name`` when it follows :data:`NAME_RULE`, else raise BadName.

    >>> check_name("churn-2024.q1")
    'churn-2024.q1'
    >>> check_name("a/b")
    Traceback (most recent call last):
    ...
    keel.errors.BadName: invalid dataset name 'a/b': expected 1 to 128 characters: letters, digits, '.', '_' or '-', starting with a letter or digit
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise BadName(what, str(name), NAME_RULE)
    return name
