"""BLAKE3 digests: the names of objects."""

from __future__ import annotations

import re

import blake3

__all__ = ["OID_HEX_LEN", "hash_bytes", "is_oid"]

OID_HEX_LEN = 64
_OID = re.compile(r"[0-9a-f]{64}")
_PARALLEL_FROM = 8 << 20


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """Return the object id (hex BLAKE3) of ``data``.

    >>> hash_bytes(b"")[:16]
    'af1349b9f5f9a1a6'
    """
    # blake3 releases the GIL for large inputs, so chunk hashing runs in parallel threads;
    # a single large object (a 50 MB model) is hashed on every core.
    if len(data) >= _PARALLEL_FROM:
        return blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest()
    return blake3.blake3(data).hexdigest()


def is_oid(text: str) -> bool:
    """True when ``text`` is a full object id.

    >>> is_oid("ab" * 32), is_oid("xyz")
    (True, False)
    """
    return _OID.fullmatch(text) is not None
