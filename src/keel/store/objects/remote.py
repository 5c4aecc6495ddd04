"""Objects behind any fsspec URL (``s3://bucket/prefix``, ``memory://``, ``file://``).

An object store (S3) makes a single PUT atomic, so objects are written in
place; on file systems that are not object stores a write goes to a temporary
name and is moved into place, so a reader never sees part of an object.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keel.errors import CorruptObject, MissingObject, StorageError
from keel.store.objects.digest import hash_bytes, is_oid

__all__ = ["FsspecObjectStore"]

_ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "memory"}


class FsspecObjectStore:
    """Content-addressed objects through an fsspec file system.

    >>> store = FsspecObjectStore("memory://keel-doctest")
    >>> store.get(store.put(b"x"))
    b'x'
    """

    def __init__(self, url: str, **storage_options: Any) -> None:
        try:
            import fsspec
        except ImportError as exc:  # pragma: no cover - fsspec is a dependency
            raise StorageError("fsspec is required for remote object stores") from exc
        self.url = url.rstrip("/")
        self.fs, self.base = fsspec.core.url_to_fs(self.url, **storage_options)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.atomic_put = bool(set(protocols) & _ATOMIC_PUT)
        self.fs.makedirs(self.base, exist_ok=True)

    def _path(self, oid: str) -> str:
        return f"{self.base}/{oid[:2]}/{oid[2:]}"

    def has(self, oid: str) -> bool:
        return bool(self.fs.exists(self._path(oid)))

    def put(self, data: bytes | bytearray | memoryview) -> str:
        oid = hash_bytes(data)
        path = self._path(oid)
        if self.fs.exists(path):
            return oid
        if self.atomic_put:
            self.fs.pipe_file(path, bytes(data))
        else:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            tmp = f"{path}.{secrets.token_hex(4)}.tmp"
            self.fs.pipe_file(tmp, bytes(data))
            self.fs.mv(tmp, path)
        return oid

    def get(self, oid: str) -> bytes:
        try:
            data: bytes = self.fs.cat_file(self._path(oid))
        except FileNotFoundError:
            raise MissingObject(oid) from None
        actual = hash_bytes(data)
        if actual != oid:
            raise CorruptObject(oid, actual)
        return data

    def size(self, oid: str) -> int:
        try:
            return int(self.fs.size(self._path(oid)))
        except FileNotFoundError:
            raise MissingObject(oid) from None

    def commit(self) -> None:
        """Each put is already durable and visible."""

    def abort(self) -> None:
        """Objects are visible at once; what no record names, gc removes."""

    def iter_oids(self) -> Iterator[str]:
        for path in sorted(self.fs.find(self.base)):
            head, _, name = str(path).rpartition("/")
            oid = head.rpartition("/")[2] + name
            if not name.endswith(".tmp") and is_oid(oid):
                yield oid

    def delete(self, oid: str) -> None:
        try:
            self.fs.rm_file(self._path(oid))
        except FileNotFoundError:
            pass

    def check(self, oid: str) -> str | None:
        try:
            actual = hash_bytes(self.fs.cat_file(self._path(oid)))
        except FileNotFoundError:
            raise MissingObject(oid) from None
        return None if actual == oid else actual

    def local_path(self, oid: str) -> Path | None:
        return None

    def stray_temporaries(self) -> list[str]:
        return sorted(str(p) for p in self.fs.find(self.base) if str(p).endswith(".tmp"))

    def remove_stray(self, name: str) -> None:
        try:
            self.fs.rm_file(name)
        except FileNotFoundError:
            pass
