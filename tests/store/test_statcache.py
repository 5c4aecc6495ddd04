"""The stat cache: (path, inode, size, mtime) -> digest, distrusting racy entries."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from keel.store.objects import CachedDigest, StatCache

OID_A, OID_B = "a" * 64, "b" * 64
SECOND = 1_000_000_000


@pytest.fixture
def cache(tmp_path: Path):
    c = StatCache(tmp_path / "cache" / "stat.sqlite")
    yield c
    c.close()


def _old_file(tmp_path: Path, name: str = "f.bin", data: bytes = b"data") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def test_empty_cache_loads_nothing(cache):
    assert cache.load_under("/anywhere") == {}
    assert not cache.path.exists()  # reading does not create it
    cache.record([], StatCache.now_ns())
    assert not cache.path.exists()


def test_record_and_load_round_trip(cache, tmp_path):
    path = _old_file(tmp_path)
    st = os.stat(path)
    now = StatCache.now_ns()
    cache.record([(str(path), st, OID_A, True)], now)
    loaded = cache.load_under(str(tmp_path))
    assert list(loaded) == [str(path)]
    got = loaded[str(path)]
    assert (got.ino, got.size, got.mtime_ns, got.oid, got.hashed_ns) == (
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
        OID_A,
        now,
    )
    assert got.chunked
    assert got.matches(st)
    cache.close()
    again = StatCache(cache.path)  # it persists
    assert again.load_under(str(tmp_path))[str(path)].oid == OID_A
    again.close()


def test_record_replaces(cache, tmp_path):
    path = _old_file(tmp_path)
    st = os.stat(path)
    cache.record([(str(path), st, OID_A, False)], 1)
    cache.record([(str(path), st, OID_B, True)], 2)
    (got,) = cache.load_under(str(tmp_path)).values()
    assert (got.oid, bool(got.chunked), got.hashed_ns) == (OID_B, True, 2)


def test_load_under_isolates_prefixes(cache, tmp_path):
    st = os.stat(_old_file(tmp_path))
    paths = ["/a/b", "/a/b/x", "/a/b/sub/y", "/a/bc", "/a/bc/z", "/a/b.txt", "/a/b-c/w", "/a"]
    cache.record([(p, st, OID_A, False) for p in paths], 1)
    want = {"/a/b", "/a/b/x", "/a/b/sub/y"}
    assert set(cache.load_under("/a/b")) == want
    assert set(cache.load_under("/a/b/")) == want - {"/a/b"}  # a folder: only what is below it
    assert set(cache.load_under("/a/bc")) == {"/a/bc", "/a/bc/z"}
    assert set(cache.load_under("/a/b/x")) == {"/a/b/x"}  # a single file
    assert set(cache.load_under("/a")) == set(paths)
    assert cache.load_under("/a/b/nothing") == {}


def _entry(path: Path, st: os.stat_result, hashed_ns: int, **changes: int) -> CachedDigest:
    fields = {"ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns, **changes}
    return CachedDigest(path=str(path), oid=OID_A, chunked=False, hashed_ns=hashed_ns, **fields)


def test_matches(tmp_path):
    path = _old_file(tmp_path)
    st = os.stat(path)
    now = time.time_ns()
    assert _entry(path, st, now).matches(st)
    assert not _entry(path, st, now, size=st.st_size + 1).matches(st)
    assert not _entry(path, st, now, mtime_ns=st.st_mtime_ns - 1).matches(st)
    assert not _entry(path, st, now, ino=st.st_ino + 1).matches(st)


def test_matches_is_false_after_a_real_change(cache, tmp_path):
    path = _old_file(tmp_path, data=b"v1")
    st = os.stat(path)
    cache.record([(str(path), st, OID_A, False)], StatCache.now_ns())
    cd = cache.load_under(str(path))[str(path)]
    assert cd.matches(os.stat(path))
    path.write_bytes(b"v2 is longer")
    assert not cd.matches(os.stat(path))
    replacement = _old_file(tmp_path, "other.bin", data=b"v1")  # same size, new inode
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, path)
    assert not cd.matches(os.stat(path))


MS = 1_000_000


@pytest.mark.parametrize(
    ("gap_ns", "trusted"),
    [
        (0, False),  # hashed in the same tick it was written
        (10 * MS, False),  # within a coarse clock tick or a few
        (50 * MS, False),
        (50 * MS + 1, True),
        (10 * SECOND, True),
        (-SECOND, False),  # modified after it was hashed
    ],
)
def test_racy_entries_are_not_trusted(tmp_path, gap_ns, trusted):
    path = _old_file(tmp_path)
    os.utime(path, ns=(os.stat(path).st_mtime_ns // SECOND * SECOND + 123_456_789,) * 2)
    st = os.stat(path)
    assert _entry(path, st, st.st_mtime_ns + gap_ns).matches(st) is trusted


@pytest.mark.parametrize(
    ("gap_ns", "trusted"),
    [(SECOND, False), (2 * SECOND, False), (2 * SECOND + 1, True)],
)
def test_whole_second_timestamps_need_two_seconds(tmp_path, gap_ns, trusted):
    """File systems that keep whole seconds (FAT, some network mounts) stamp coarsely."""
    path = _old_file(tmp_path)
    os.utime(path, ns=(os.stat(path).st_mtime_ns // SECOND * SECOND,) * 2)
    st = os.stat(path)
    assert _entry(path, st, st.st_mtime_ns + gap_ns).matches(st) is trusted


def test_a_freshly_written_file_is_racy(cache, tmp_path):
    path = tmp_path / "fresh.bin"
    path.write_bytes(b"just now")
    st = os.stat(path)
    cache.record([(str(path), st, OID_A, False)], StatCache.now_ns())
    assert not cache.load_under(str(path))[str(path)].matches(os.stat(path))


@pytest.mark.parametrize("garbage", [b"this is not a database" * 100, b"", b"SQLite format 3\x00"])
def test_a_corrupt_cache_costs_nothing_but_time(tmp_path, garbage):
    path = tmp_path / "stat.sqlite"
    path.write_bytes(garbage)
    cache = StatCache(path)
    st = os.stat(path)
    cache.record([("/x/y", st, OID_A, False)], 1)  # does not raise
    loaded = cache.load_under("/x")
    assert loaded == {} or loaded["/x/y"].oid == OID_A  # an empty file is simply a new cache
    cache.close()
