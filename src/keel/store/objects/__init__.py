"""Content-addressed objects: BLAKE3-named, written atomically, verified on read.

Backends keep one small contract (:class:`ObjectStore`): a local folder
(the default), an fsspec URL (S3 and friends) and an in-memory twin for tests.
Folders become :class:`Tree` manifests; large files become chunk lists.
"""

from __future__ import annotations

from keel.store.objects.backend import ObjectStore
from keel.store.objects.digest import OID_HEX_LEN, hash_bytes, is_oid
from keel.store.objects.files import (
    CHUNKED_FROM,
    StoredFile,
    iter_content,
    read_chunk_list,
    store_file,
    write_content,
)
from keel.store.objects.local import LinkMethod, LocalObjectStore
from keel.store.objects.memory import MemoryObjectStore
from keel.store.objects.remote import FsspecObjectStore
from keel.store.objects.statcache import CachedDigest, StatCache
from keel.store.objects.tree import Tree, TreeEntry, check_relpath

__all__ = [
    "CHUNKED_FROM",
    "OID_HEX_LEN",
    "CachedDigest",
    "FsspecObjectStore",
    "LinkMethod",
    "LocalObjectStore",
    "MemoryObjectStore",
    "ObjectStore",
    "StatCache",
    "StoredFile",
    "Tree",
    "TreeEntry",
    "check_relpath",
    "hash_bytes",
    "is_oid",
    "iter_content",
    "open_store",
    "read_chunk_list",
    "store_file",
    "write_content",
]


def open_store(url: str) -> ObjectStore:
    """Open the object store at ``url``: a local path, ``memory://`` or any fsspec URL."""
    if url == "memory://":
        return MemoryObjectStore()
    if "://" in url and not url.startswith("file://"):
        return FsspecObjectStore(url)
    return LocalObjectStore(url.removeprefix("file://"))
