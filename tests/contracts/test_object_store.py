"""One conformance suite for every ObjectStore backend (STYLE.md: one contract, one suite).

Each backend is described by a :class:`Backend`: how to open it, how to reach
its bytes behind its back (to corrupt an object or leave a crashed writer's
temporary file) and whether ``put`` stages until ``commit``.
"""

from __future__ import annotations

import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.errors import CorruptObject, MissingObject
from keel.store.objects import (
    FsspecObjectStore,
    LocalObjectStore,
    MemoryObjectStore,
    ObjectStore,
    hash_bytes,
)

BAD = b"these are not the bytes you are looking for"
UNKNOWN = hash_bytes(b"never stored anywhere")
IO_SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# -- backends -----------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    open: Callable[[Path], ObjectStore]
    #: another handle on the same bytes (a second process, say); None when there is none
    reopen: Callable[[ObjectStore], ObjectStore] | None
    #: rewrite an object's bytes behind the store's back
    corrupt: Callable[[ObjectStore, str], None]
    #: leave a temporary file the way a crashed writer would; returns its stray name
    make_stray: Callable[[ObjectStore], str] | None
    #: put() is only visible to others after commit()
    stages: bool


def _local_corrupt(store: ObjectStore, oid: str) -> None:
    assert isinstance(store, LocalObjectStore)
    path = store.path(oid)
    os.chmod(path, 0o644)
    path.write_bytes(BAD)
    os.chmod(path, 0o444)


def _local_stray(store: ObjectStore) -> str:
    assert isinstance(store, LocalObjectStore)
    oid = hash_bytes(b"crashed writer")
    (store.root / oid[:2]).mkdir(exist_ok=True)
    name = f"{oid[:2]}/{oid[2:]}.4242-deadbeef.tmp"
    (store.root / name).write_bytes(b"crashed wri")
    return name


def _memory_corrupt(store: ObjectStore, oid: str) -> None:
    assert isinstance(store, MemoryObjectStore)
    store.objects[oid] = BAD


def _fsspec_corrupt(store: ObjectStore, oid: str) -> None:
    assert isinstance(store, FsspecObjectStore)
    store.fs.pipe_file(store._path(oid), BAD)


def _fsspec_stray(store: ObjectStore) -> str:
    assert isinstance(store, FsspecObjectStore)
    oid = hash_bytes(b"crashed writer")
    path = f"{store._path(oid)}.deadbeef.tmp"
    store.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    store.fs.pipe_file(path, b"crashed wri")
    return path


BACKENDS = [
    Backend(
        "local",
        lambda tmp: LocalObjectStore(tmp / "objects"),
        lambda s: LocalObjectStore(s.url),
        _local_corrupt,
        _local_stray,
        stages=True,
    ),
    Backend(
        "memory",
        lambda tmp: MemoryObjectStore(),
        None,
        _memory_corrupt,
        None,
        stages=False,
    ),
    Backend(
        "fsspec-memory",
        lambda tmp: FsspecObjectStore(f"memory://keel-contract-{secrets.token_hex(8)}"),
        lambda s: FsspecObjectStore(s.url),
        _fsspec_corrupt,
        _fsspec_stray,
        stages=False,
    ),
    Backend(
        "fsspec-file",
        lambda tmp: FsspecObjectStore(f"file://{tmp / 'objects'}"),
        lambda s: FsspecObjectStore(s.url),
        _fsspec_corrupt,
        _fsspec_stray,
        stages=False,
    ),
]


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Iterator[ObjectStore]:
    s = backend.open(tmp_path)
    yield s
    if isinstance(s, FsspecObjectStore) and s.atomic_put:
        s.fs.rm(s.base, recursive=True)  # the memory file system is process-wide


def _stored(store: ObjectStore, data: bytes) -> str:
    oid = store.put(data)
    store.commit()
    return oid


# -- the contract -------------------------------------------------------------------------


def test_is_an_object_store(store):
    assert isinstance(store, ObjectStore)
    assert isinstance(store.url, str)


@IO_SETTINGS
@given(data=st.binary(max_size=4096))
def test_put_get_round_trip(store, data):
    oid = store.put(data)
    assert oid == hash_bytes(data)
    store.commit()
    assert store.get(oid) == data
    assert store.size(oid) == len(data)
    assert store.check(oid) is None


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_put_accepts_any_buffer(store, kind):
    data = b"\x00\x01payload\xff" * 100
    oid = _stored(store, kind(data))
    assert oid == hash_bytes(data)
    assert store.get(oid) == data


def test_empty_object(store):
    oid = _stored(store, b"")
    assert store.get(oid) == b""
    assert store.size(oid) == 0
    assert oid in set(store.iter_oids())


def test_put_is_idempotent(store):
    data = os.urandom(1000)
    first = store.put(data)
    assert store.put(data) == first  # while staged
    store.commit()
    assert store.put(bytearray(data)) == first  # once committed
    store.commit()
    assert list(store.iter_oids()) == [first]
    assert store.stray_temporaries() == []
    local = store.local_path(first)
    if local is not None:
        ino = os.stat(local).st_ino
        store.put(data)
        store.commit()
        assert os.stat(local).st_ino == ino  # not written again


def test_has_before_and_after_commit(backend, store):
    data = b"staged or visible"
    oid = hash_bytes(data)
    assert not store.has(oid)
    assert store.put(data) == oid
    assert store.has(oid)  # staged by this writer counts
    other = backend.reopen(store) if backend.reopen else None
    if other is not None:
        assert other.has(oid) is not backend.stages
    store.commit()
    assert store.has(oid)
    if other is not None:
        assert other.has(oid)
        assert other.get(oid) == data


def test_unknown_object_is_missing(store):
    assert not store.has(UNKNOWN)
    with pytest.raises(MissingObject) as info:
        store.get(UNKNOWN)
    assert info.value.oid == UNKNOWN
    with pytest.raises(MissingObject):
        store.size(UNKNOWN)


def test_check_of_unknown_object_is_missing(backend, store):
    with pytest.raises(MissingObject):
        store.check(UNKNOWN)


def test_corrupt_object_is_detected(backend, store):
    data = b"pristine bytes" * 50
    oid = _stored(store, data)
    backend.corrupt(store, oid)
    with pytest.raises(CorruptObject) as info:
        store.get(oid)
    assert info.value.oid == oid
    assert info.value.actual == hash_bytes(BAD)
    assert store.check(oid) == hash_bytes(BAD)


def test_iter_oids_lists_committed_objects_only(backend, store):
    oids = {store.put(bytes([i]) * (i + 1)) for i in range(20)}
    if backend.stages:
        assert list(store.iter_oids()) == []
    stray = backend.make_stray(store) if backend.make_stray else None
    store.commit()
    listed = list(store.iter_oids())
    assert len(listed) == len(set(listed))
    assert set(listed) == oids
    if stray is not None:
        assert stray in store.stray_temporaries()


def test_delete(store):
    keep, drop = _stored(store, b"keep"), _stored(store, b"drop")
    store.delete(drop)
    assert not store.has(drop)
    assert set(store.iter_oids()) == {keep}
    with pytest.raises(MissingObject):
        store.get(drop)
    store.delete(drop)  # deleting what is gone is fine
    store.delete(UNKNOWN)
    assert store.get(keep) == b"keep"
    assert _stored(store, b"drop") == drop  # and it can come back
    assert store.get(drop) == b"drop"


def test_stray_temporaries(backend, store):
    assert store.stray_temporaries() == []
    if backend.make_stray is None:
        store.remove_stray("anything.tmp")  # nothing to remove, no error
        return
    oid = _stored(store, b"a real object")
    name = backend.make_stray(store)
    assert store.stray_temporaries() == [name]
    assert list(store.iter_oids()) == [oid]
    store.remove_stray(name)
    assert store.stray_temporaries() == []
    store.remove_stray(name)  # already gone
    assert store.get(oid) == b"a real object"


def test_put_from_many_threads(store):
    blobs = [os.urandom(2000) for _ in range(16)] + [b"shared"]
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        try:
            barrier.wait()
            for i in range(len(blobs)):
                blob = blobs[(i + seed) % len(blobs)]
                assert store.put(blob) == hash_bytes(blob)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store.commit()
    assert sorted(store.iter_oids()) == sorted({hash_bytes(b) for b in blobs})
    for blob in blobs:
        assert store.get(hash_bytes(blob)) == blob
    assert store.stray_temporaries() == []


# -- the local folder's extras ------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def test_local_objects_are_read_only(local):
    oid = _stored(local, b"frozen")
    assert stat.S_IMODE(os.stat(local.path(oid)).st_mode) == 0o444
    assert local.local_path(oid) == local.path(oid)


def test_local_abort_removes_staged_temporaries(local):
    oid = local.put(b"never mind")
    assert local.has(oid)
    assert len(local.stray_temporaries()) == 1
    local.abort()
    assert not local.has(oid)
    assert local.stray_temporaries() == []
    local.commit()
    assert list(local.iter_oids()) == []


def test_local_place_hardlinks(local, tmp_path):
    oid = _stored(local, b"link me")
    dest = tmp_path / "linked"
    assert local.place(oid, str(dest), allow=("hardlink", "copy"), mode=0o644) == "hardlink"
    assert os.stat(dest).st_ino == os.stat(local.path(oid)).st_ino
    assert dest.read_bytes() == b"link me"


def test_local_place_copies(local, tmp_path):
    oid = _stored(local, b"copy me")
    dest = tmp_path / "copied"
    assert local.place(oid, str(dest), allow=("copy",), mode=0o640) == "copy"
    st_dest = os.stat(dest)
    assert st_dest.st_ino != os.stat(local.path(oid)).st_ino
    assert stat.S_IMODE(st_dest.st_mode) == 0o640 & ~_umask()
    assert dest.read_bytes() == b"copy me"


@pytest.mark.parametrize(
    "allow", [("copy",), ("hardlink", "copy"), ("reflink", "hardlink", "copy")], ids=str
)
def test_local_place_refuses_a_corrupt_object(local, tmp_path, allow):
    oid = _stored(local, b"soon to rot")
    _local_corrupt(local, oid)
    dest = tmp_path / "out"
    with pytest.raises(CorruptObject):
        local.place(oid, str(dest), allow=allow, mode=0o644)
    assert not dest.exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
