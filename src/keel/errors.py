"""One error tree for keel.

Every error a user can cause or meet is a :class:`KeelError`. Each class says
how the command line exits (``exit_code``) and how an HTTP route answers
(``http_status``), so the CLI, the Python API and the servers agree. Messages
name the bad value and what was expected.

>>> err = BadName("dataset name", "a b", "letters, digits, '.', '_' or '-'")
>>> err.exit_code, err.http_status
(2, 400)
>>> str(err)
"invalid dataset name 'a b': expected letters, digits, '.', '_' or '-'"
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "AlreadyExists",
    "BadName",
    "BadPath",
    "BadRef",
    "CorruptObject",
    "InvalidInput",
    "KeelError",
    "MissingObject",
    "NotFound",
    "StorageError",
    "WorkspaceNotFound",
]


class KeelError(Exception):
    """Root of every error keel raises on purpose."""

    exit_code: int = 1
    http_status: int = 500


class InvalidInput(KeelError):
    """The caller asked for something malformed; nothing was changed."""

    exit_code = 2
    http_status = 400


class BadName(InvalidInput):
    """A name (dataset, model, alias, metric key) breaks the naming rule."""

    def __init__(self, what: str, value: str, expected: str) -> None:
        shown = value if len(value) <= 60 else value[:57] + "..."
        super().__init__(f"invalid {what} {shown!r}: expected {expected}")
        self.what, self.value, self.expected = what, value, expected


class BadRef(InvalidInput):
    """A reference string (``churn@v3``) that does not parse."""


class BadPath(InvalidInput):
    """A path that does not exist, cannot be read, or leads outside where it must stay."""


class NotFound(KeelError):
    """A well-formed reference to something that does not exist."""

    exit_code = 2
    http_status = 404


class WorkspaceNotFound(NotFound):
    """No ``.keel/`` folder here or in any parent, and none named by ``KEEL_HOME``."""


class AlreadyExists(KeelError):
    """Creating something whose name is taken."""

    exit_code = 2
    http_status = 409


class StorageError(KeelError):
    """The object or metadata store failed underneath us."""


class MissingObject(StorageError):
    """A record names an object the store does not have."""

    def __init__(self, oid: str, detail: str = "") -> None:
        super().__init__(f"object {oid} is missing from the object store{detail}")
        self.oid = oid


class CorruptObject(StorageError):
    """An object's bytes no longer hash to its name: it was altered on disk."""

    def __init__(self, oid: str, actual: str) -> None:
        super().__init__(
            f"object {oid} is corrupt: its bytes hash to {actual[:16]}…; "
            "run `keel verify` to see what uses it"
        )
        self.oid, self.actual = oid, actual


def listed(items: Iterable[Any], limit: int = 20, sep: str = ", ") -> str:
    """Choices for an error message, cut short with how many more there are (a helper of the
    messages, not an error class: outside ``__all__``, which lists the error tree).

    >>> listed(["a", "b", "c"], limit=2)
    'a, b (and 1 more)'
    >>> listed([])
    'none'
    """
    shown = [str(i) for i in items]
    if not shown:
        return "none"
    more = len(shown) - limit
    return sep.join(shown[:limit]) + (f" (and {more:,} more)" if more > 0 else "")
