"""The contract every object store keeps, whatever holds the bytes.

An object is an immutable byte string named by its BLAKE3 digest. Writes are
*staged*: ``put`` may make the object visible at once (memory, S3) or only at
``commit`` (the local folder, which batches its syncs); either way an object
is whole or absent, never partial. Reads verify the digest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["ObjectStore"]


@runtime_checkable
class ObjectStore(Protocol):
    """Content-addressed bytes."""

    url: str

    def has(self, oid: str) -> bool:
        """True when the object is stored (or staged by this writer)."""

    def put(self, data: bytes | bytearray | memoryview) -> str:
        """Store ``data`` under its digest and return the digest."""

    def get(self, oid: str) -> bytes:
        """The object's bytes, verified; raises MissingObject or CorruptObject."""

    def size(self, oid: str) -> int:
        """The object's size in bytes; raises MissingObject."""

    def commit(self) -> None:
        """Make every staged object durable and visible."""

    def abort(self) -> None:
        """Forget staged objects (an operation failed before its record committed)."""

    def iter_oids(self) -> Iterator[str]:
        """Every stored object id (committed ones only)."""

    def delete(self, oid: str) -> None:
        """Remove an object (garbage collection only)."""

    def check(self, oid: str) -> str | None:
        """Rehash a stored object: None when whole, else the digest its bytes have now."""

    def local_path(self, oid: str) -> Path | None:
        """A path on this machine holding the object, when there is one (for links)."""

    def stray_temporaries(self) -> list[str]:
        """Temporary files a crashed writer left behind."""

    def remove_stray(self, name: str) -> None:
        """Delete one temporary file named by ``stray_temporaries``."""
