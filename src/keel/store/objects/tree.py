"""Tree manifests: a folder as one object.

A tree lists, sorted by path, each file's relative POSIX path, the object that
holds its bytes, its size, its permission bits and whether that object is a
chunk list. Encoded canonically, so the same folder always has the same digest
and two versions share every object they share.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from keel.errors import BadPath, StorageError

__all__ = ["Tree", "TreeEntry", "check_relpath"]

_FORMAT = "keel.tree/1"


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One file of a tree."""

    path: str
    oid: str
    size: int
    mode: int = 0o644
    chunked: bool = False


def check_relpath(path: str) -> str:
    """Return ``path`` if it is a safe relative POSIX path, else raise BadPath.

    >>> check_relpath("a/b.csv")
    'a/b.csv'
    >>> check_relpath("../etc/passwd")
    Traceback (most recent call last):
    ...
    keel.errors.BadPath: unsafe path '../etc/passwd' in a tree: expected a relative path with no '..'
    """
    norm = posixpath.normpath(path)
    if (
        not path
        or path.startswith("/")
        or norm != path
        or norm in ("..", ".")
        or norm.startswith("../")
        or "\\" in path
        or "\x00" in path
    ):
        raise BadPath(f"unsafe path {path!r} in a tree: expected a relative path with no '..'")
    return path


class Tree:
    """An immutable, sorted set of entries.

    >>> t = Tree([TreeEntry("b", "0" * 64, 1), TreeEntry("a", "1" * 64, 2)])
    >>> [e.path for e in t], t.size
    (['a', 'b'], 3)
    >>> Tree.decode(t.encode()) == t
    True
    """

    __slots__ = ("_by_path", "entries")

    def __init__(self, entries: Iterable[TreeEntry]) -> None:
        self.entries: tuple[TreeEntry, ...] = tuple(sorted(entries, key=lambda e: e.path))
        self._by_path: dict[str, TreeEntry] | None = None

    def __iter__(self) -> Iterator[TreeEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tree) and self.entries == other.entries

    def __hash__(self) -> int:
        return hash(self.entries)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def get(self, path: str) -> TreeEntry | None:
        if self._by_path is None:
            self._by_path = {e.path: e for e in self.entries}
        return self._by_path.get(path)

    def encode(self) -> bytes:
        rows = [[e.path, e.oid, e.size, e.mode, int(e.chunked)] for e in self.entries]
        return json.dumps({"format": _FORMAT, "entries": rows}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Tree:
        try:
            doc = json.loads(data)
            if doc.get("format") != _FORMAT:
                raise ValueError(f"format {doc.get('format')!r}")
            entries = [
                TreeEntry(check_relpath(p), oid, int(size), int(mode), bool(chunked))
                for p, oid, size, mode, chunked in doc["entries"]
            ]
            if len({e.path for e in entries}) != len(entries):
                raise ValueError("a path appears twice")
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, BadPath) as exc:
            raise StorageError(f"not a keel tree manifest: {exc}") from exc
        return cls(entries)
