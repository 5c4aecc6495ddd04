"""The in-memory twin of the object store, for fast tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from keel.errors import CorruptObject, MissingObject
from keel.store.objects.digest import hash_bytes

__all__ = ["MemoryObjectStore"]


class MemoryObjectStore:
    """Objects in a dict; the same contract as the folder and fsspec stores.

    >>> store = MemoryObjectStore()
    >>> oid = store.put(b"hello")
    >>> store.get(oid)
    b'hello'
    """

    def __init__(self) -> None:
        self.url = "memory://"
        self.objects: dict[str, bytes] = {}

    def has(self, oid: str) -> bool:
        return oid in self.objects

    def put(self, data: bytes | bytearray | memoryview) -> str:
        oid = hash_bytes(data)
        self.objects.setdefault(oid, bytes(data))
        return oid

    def get(self, oid: str) -> bytes:
        try:
            data = self.objects[oid]
        except KeyError:
            raise MissingObject(oid) from None
        actual = hash_bytes(data)
        if actual != oid:
            raise CorruptObject(oid, actual)
        return data

    def size(self, oid: str) -> int:
        try:
            return len(self.objects[oid])
        except KeyError:
            raise MissingObject(oid) from None

    def commit(self) -> None:
        """Nothing to do: memory has no crash to survive."""

    def abort(self) -> None:
        """Objects are visible at once; what no record names, gc removes."""

    def iter_oids(self) -> Iterator[str]:
        yield from list(self.objects)

    def delete(self, oid: str) -> None:
        self.objects.pop(oid, None)

    def check(self, oid: str) -> str | None:
        try:
            actual = hash_bytes(self.objects[oid])
        except KeyError:
            raise MissingObject(oid) from None
        return None if actual == oid else actual

    def local_path(self, oid: str) -> Path | None:
        return None

    def stray_temporaries(self) -> list[str]:
        return []

    def remove_stray(self, name: str) -> None:
        """Memory leaves no temporaries."""
