"""Files in the object store: whole objects below CHUNKED_FROM, content-defined chunks above."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from keel.errors import MissingObject, StorageError
from keel.store.objects import (
    CHUNKED_FROM,
    LocalObjectStore,
    MemoryObjectStore,
    Tree,
    TreeEntry,
    hash_bytes,
    iter_content,
    read_chunk_list,
    store_file,
    write_content,
)

MiB = 1 << 20


def _random(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    if request.param == "memory":
        return MemoryObjectStore()
    return LocalObjectStore(tmp_path / "objects", durable=False)


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNKED_FROM - 1, CHUNKED_FROM, CHUNKED_FROM * 3 + 12345],
    ids=["empty", "one", "below", "at", "above"],
)
def test_round_trip(store, tmp_path, size):
    data = _random(size, seed=size)
    stored = store_file(store, _file(tmp_path, "in.bin", data))
    store.commit()
    assert stored.size == size
    assert stored.chunked is (size >= CHUNKED_FROM)
    if not stored.chunked:
        assert stored.oid == hash_bytes(data)
    else:
        chunks = read_chunk_list(store, stored.oid)
        assert len(chunks) > 1
        assert sum(n for _, n in chunks) == size
        assert all(store.size(oid) == n for oid, n in chunks)
    assert b"".join(iter_content(store, stored.oid, stored.chunked)) == data
    out = tmp_path / "out.bin"
    write_content(store, stored.oid, stored.chunked, str(out), 0o644)
    assert out.read_bytes() == data
    with pytest.raises(FileExistsError):  # never overwrites
        write_content(store, stored.oid, stored.chunked, str(out), 0o644)


def test_same_file_twice_is_the_same_object(store, tmp_path):
    data = _random(CHUNKED_FROM + 5000, seed=7)
    a = store_file(store, _file(tmp_path, "a.bin", data))
    b = store_file(store, _file(tmp_path, "b.bin", data))
    assert a == b


def test_appending_stores_only_the_tail(tmp_path):
    store = LocalObjectStore(tmp_path / "objects", durable=False)
    base = _random(40 * MiB, seed=1)
    first = store_file(store, _file(tmp_path, "v1.bin", base))
    store.commit()
    before = store.disk_usage()
    assert before >= len(base)
    second = store_file(store, _file(tmp_path, "v2.bin", base + _random(MiB, seed=2)))
    store.commit()
    added = store.disk_usage() - before
    assert added <= 8_000_000, f"appending 1 MiB stored {added} new bytes"
    assert second.chunked and second.size == 41 * MiB
    old = {oid for oid, _ in read_chunk_list(store, first.oid)}
    new = {oid for oid, _ in read_chunk_list(store, second.oid)}
    assert len(old & new) >= len(old) - 2


def test_inserting_at_the_front_changes_few_chunks(tmp_path):
    store = LocalObjectStore(tmp_path / "objects", durable=False)
    base = _random(24 * MiB, seed=3)
    first = store_file(store, _file(tmp_path, "v1.bin", base))
    second = store_file(store, _file(tmp_path, "v2.bin", _random(100, seed=4) + base))
    store.commit()
    old = [oid for oid, _ in read_chunk_list(store, first.oid)]
    new = [oid for oid, _ in read_chunk_list(store, second.oid)]
    assert len(old) >= 8
    assert len(set(new) - set(old)) <= 3, "content-defined cuts must resynchronise"
    assert b"".join(iter_content(store, second.oid, True))[:100] == _random(100, seed=4)


def test_a_missing_chunk_is_reported(tmp_path):
    store = MemoryObjectStore()
    data = _random(CHUNKED_FROM, seed=5)
    stored = store_file(store, _file(tmp_path, "in.bin", data))
    victim, _ = read_chunk_list(store, stored.oid)[1]
    store.delete(victim)
    with pytest.raises(MissingObject):
        b"".join(iter_content(store, stored.oid, True))


@pytest.mark.parametrize(
    "payload",
    [
        b"hello",
        b"",
        b"\xff\xfe not utf-8",
        b"[]",
        b"5",
        b"null",
        b'{"format": "keel.chunks/2", "size": 0, "chunks": []}',
        b'{"format": "keel.chunks/1"}',
        b'{"format": "keel.chunks/1", "chunks": null}',
        b'{"format": "keel.chunks/1", "chunks": [["a"]]}',
        b'{"format": "keel.chunks/1", "chunks": [["a", "b", "c"]]}',
        b'{"format": "keel.chunks/1", "chunks": [["a", "many"]]}',
        Tree([TreeEntry("a", "0" * 64, 1)]).encode(),
    ],
)
def test_read_chunk_list_of_something_else(payload):
    store = MemoryObjectStore()
    oid = store.put(payload)
    with pytest.raises(StorageError, match="not a keel chunk list"):
        read_chunk_list(store, oid)


def test_read_chunk_list_with_infinite_length():
    store = MemoryObjectStore()
    doc = {"format": "keel.chunks/1", "size": 1, "chunks": [["0" * 64, float("inf")]]}
    oid = store.put(json.dumps(doc).encode())
    with pytest.raises(StorageError):
        read_chunk_list(store, oid)
