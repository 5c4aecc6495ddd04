"""Following object references: a tree names files, a chunk list names chunks."""

from __future__ import annotations

from collections.abc import Iterator

from keel.errors import StorageError
from keel.store.objects import ObjectStore, Tree, read_chunk_list

__all__ = ["children"]


def children(store: ObjectStore, oid: str, shape: str) -> Iterator[tuple[str, str]]:
    """The (object, shape) pairs ``oid`` names directly; reading verifies ``oid`` itself."""
    if shape == "tree":
        for entry in Tree.decode(store.get(oid)):
            yield entry.oid, "chunks" if entry.chunked else "blob"
    elif shape == "chunks":
        for chunk, _ in read_chunk_list(store, oid):
            yield chunk, "blob"
    elif shape != "blob":
        raise StorageError(f"unknown object shape {shape!r} for {oid}")
