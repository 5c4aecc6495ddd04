"""The stat cache: (path, inode, size, mtime) → digest, so unchanged files are never re-read.

It lives on this machine only (``.keel/cache/stat.sqlite``), because inodes and
mtimes mean nothing elsewhere. An entry is trusted only when the file's mtime
is older than the moment it was hashed by more than one tick of the clock the
kernel stamps files with (git's "racy clean" problem): a write after the
hashing gets an mtime no earlier than that, so it cannot hide behind an
unchanged stat. Such a fresh entry is simply hashed again next time.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import NamedTuple

__all__ = ["CachedDigest", "StatCache"]

# Linux stamps files from a coarse clock (one tick is 1-10 ms); 50 ms covers it with room.
# File systems that keep whole seconds (FAT, some network mounts) need two seconds.
_RACY_NS = 50_000_000
_RACY_COARSE_NS = 2_000_000_000


class CachedDigest(NamedTuple):
    """What the cache remembers of one file (a tuple: 20,000 of them load in milliseconds)."""

    path: str
    ino: int
    size: int
    mtime_ns: int
    oid: str
    chunked: int
    hashed_ns: int

    def matches(self, st: os.stat_result) -> bool:
        """The file is unchanged since it was hashed, and was not racily fresh then."""
        return (
            st.st_ino == self.ino
            and st.st_size == self.size
            and st.st_mtime_ns == self.mtime_ns
            and st.st_mtime_ns
            < self.hashed_ns
            - (_RACY_COARSE_NS if st.st_mtime_ns % 1_000_000_000 == 0 else _RACY_NS)
        )


class StatCache:
    """A small SQLite table keyed by absolute path.

    >>> import tempfile
    >>> cache = StatCache(Path(tempfile.mkdtemp()) / "stat.sqlite")
    >>> cache.load_under("/nowhere")
    {}
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")  # a cache: losing it costs a re-hash, nothing more
            db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, ino INTEGER, size INTEGER,"
                " mtime_ns INTEGER, oid TEXT, chunked INTEGER, hashed_ns INTEGER) WITHOUT ROWID"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS trees (root TEXT PRIMARY KEY, signature TEXT,"
                " digest TEXT, newest_mtime_ns INTEGER, hashed_ns INTEGER) WITHOUT ROWID"
            )
            self._db = db
        return self._db

    def load_under(self, root: str) -> dict[str, CachedDigest]:
        """Every entry for files below the folder (or file) ``root``."""
        if not self.path.exists():
            return {}
        prefix = root.rstrip("/") + "/"
        try:
            rows = self._conn().execute(
                "SELECT path, ino, size, mtime_ns, oid, chunked, hashed_ns FROM files"
                " WHERE (path >= ? AND path < ?) OR path = ?",
                (prefix, prefix[:-1] + "0", root),
            )
            return {row.path: row for row in map(CachedDigest._make, rows)}
        except sqlite3.Error:
            return {}  # a broken cache only costs time

    def record(self, entries: list[tuple[str, os.stat_result, str, bool]], hashed_ns: int) -> None:
        """Remember digests computed at ``hashed_ns`` (a ``time.time_ns()`` taken before hashing)."""
        if not entries:
            return
        rows = [
            (path, st.st_ino, st.st_size, st.st_mtime_ns, oid, int(chunked), hashed_ns)
            for path, st, oid, chunked in entries
        ]
        with contextlib.suppress(sqlite3.Error):
            db = self._conn()
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")

    def tree_for(self, root: str, signature: str) -> str | None:
        """The tree digest last recorded for ``root`` when its listing had ``signature``,
        if that record is not racy (its newest file is a clock tick older than the record)."""
        if not self.path.exists():
            return None
        try:
            row = (
                self._conn()
                .execute(
                    "SELECT signature, digest, newest_mtime_ns, hashed_ns FROM trees WHERE root = ?",
                    (root,),
                )
                .fetchone()
            )
        except sqlite3.Error:
            return None
        if row is None or row[0] != signature:
            return None
        newest, hashed = row[2], row[3]
        margin = _RACY_COARSE_NS if newest % 1_000_000_000 == 0 else _RACY_NS
        return str(row[1]) if newest < hashed - margin else None

    def remember_tree(
        self, root: str, signature: str, digest: str, newest_mtime_ns: int, hashed_ns: int
    ) -> None:
        """Remember that ``root`` listed as ``signature`` is tree ``digest``."""
        with contextlib.suppress(sqlite3.Error):
            self._conn().execute(
                "INSERT OR REPLACE INTO trees VALUES (?, ?, ?, ?, ?)",
                (root, signature, digest, newest_mtime_ns, hashed_ns),
            )

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @staticmethod
    def now_ns() -> int:
        return time.time_ns()
