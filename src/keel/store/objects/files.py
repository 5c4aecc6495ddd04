"""Files in the object store: small ones whole, large ones as content-defined chunks.

A file of ``CHUNKED_FROM`` bytes or more is cut with FastCDC (average 1 MiB)
into chunks that are stored as objects of their own, plus a chunk list naming
them. Appending to or editing part of a large file then stores only the
chunks that changed, and two versions share every chunk they share. The file
is read once: each chunk is hashed and written by a small thread pool while
the next block is read (hashing and writing release the GIL).
"""

from __future__ import annotations

import json
import mmap
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

from keel.errors import StorageError
from keel.store.objects.backend import ObjectStore

__all__ = [
    "CHUNKED_FROM",
    "StoredFile",
    "iter_content",
    "read_chunk_list",
    "store_file",
    "write_content",
]

CHUNKED_FROM = 8 << 20
_AVG, _MIN, _MAX = 1 << 20, 256 << 10, 4 << 20
_FORMAT = "keel.chunks/1"
_POOL: list[ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(max(2, min(4, os.cpu_count() or 2)), "keel-chunk"))
        return _POOL[0]


@dataclass(frozen=True, slots=True)
class StoredFile:
    """Where a file's bytes went: one object, or a chunk list object."""

    oid: str
    size: int
    chunked: bool


def store_file(store: ObjectStore, path: str | os.PathLike[str]) -> StoredFile:
    """Store the file at ``path`` and say which object holds it."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < CHUNKED_FROM:
            data = fh.read()
            return StoredFile(store.put(data), len(data), False)
        return _store_chunked(store, fh)


def _store_chunked(store: ObjectStore, fh: IO[bytes]) -> StoredFile:
    # mmap, not read(): no copy into fresh buffers (their page faults cost more than the hashing).
    # Like git, this assumes nobody truncates the file while it is being added.
    from pyfastcdc import FastCDC

    cutter = FastCDC(avg_size=_AVG, min_size=_MIN, max_size=_MAX)
    pool = _pool()
    with mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ) as mapped:
        view = memoryview(mapped)
        try:
            pending = [
                (pool.submit(store.put, view[c.offset : c.offset + c.length]), c.length)
                for c in cutter.cut_buf(view)
            ]
            chunks = [(fut.result(), length) for fut, length in pending]
        finally:
            del pending
            view.release()
    total = sum(length for _, length in chunks)
    manifest = json.dumps(
        {"format": _FORMAT, "size": total, "chunks": chunks}, separators=(",", ":")
    ).encode()
    return StoredFile(store.put(manifest), total, True)


def read_chunk_list(store: ObjectStore, oid: str) -> list[tuple[str, int]]:
    """The (object, length) pairs of a chunked file, in order."""
    try:
        doc = json.loads(store.get(oid))
        if doc.get("format") != _FORMAT:
            raise ValueError(f"format {doc.get('format')!r}")
        return [(str(c), int(n)) for c, n in doc["chunks"]]
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        raise StorageError(f"object {oid} is not a keel chunk list: {exc}") from exc


def iter_content(store: ObjectStore, oid: str, chunked: bool) -> Iterator[bytes]:
    """Yield a stored file's bytes, each piece verified against its digest."""
    if not chunked:
        yield store.get(oid)
        return
    for chunk, _ in read_chunk_list(store, oid):
        yield store.get(chunk)


def write_content(store: ObjectStore, oid: str, chunked: bool, dest: str, mode: int) -> None:
    """Write a stored file to a new file ``dest`` (which must not exist)."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        for piece in iter_content(store, oid, chunked):
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
