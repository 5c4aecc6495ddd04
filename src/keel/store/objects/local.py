"""Objects in a local folder: ``ab/cdef…``, written atomically, synced in batches.

A write goes to a temporary file beside its final name. ``commit`` syncs the
file system once, renames every staged file into place, and syncs once more,
so that a crash at any instant leaves each object whole or absent and many
small files do not cost one fsync each. Objects are read-only on disk.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import blake3

from keel.errors import CorruptObject, MissingObject
from keel.store.objects.digest import hash_bytes, is_oid

__all__ = ["LinkMethod", "LocalObjectStore"]

LinkMethod = Literal["reflink", "hardlink", "copy"]
_FICLONE = 0x40049409  # linux/fs.h: share the source's blocks (btrfs, XFS, …)
_BIG = 8 << 20
_FSYNC_EACH_UP_TO = 64  # objects in one commit synced one by one; more: one syncfs


def _syncfs(folder: Path) -> None:
    """Flush the file system holding ``folder``: one call for a whole batch."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        libc = _libc()
        if libc is None or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


_LIBC: list[ctypes.CDLL | None] = []


def _libc() -> ctypes.CDLL | None:
    if not _LIBC:
        try:
            lib = ctypes.CDLL(None, use_errno=True)
            _LIBC.append(lib if hasattr(lib, "syncfs") else None)
        except OSError:
            _LIBC.append(None)
    return _LIBC[0]


class LocalObjectStore:
    """Content-addressed objects under one folder.

    >>> import tempfile
    >>> store = LocalObjectStore(tempfile.mkdtemp())
    >>> oid = store.put(b"hello")
    >>> store.has(oid)   # staged: visible to this writer
    True
    >>> store.commit()
    >>> store.get(oid)
    b'hello'
    """

    def __init__(self, root: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.root = Path(root)
        self.url = str(self.root)
        self._prefix = f"{self.root}/"
        self.durable = durable
        self._staged: dict[str, str] = {}
        self._lock = threading.Lock()
        self._dirs: set[str] = set()
        self._no_reflink = False
        self.root.mkdir(parents=True, exist_ok=True)

    # -- paths -------------------------------------------------------------
    def path(self, oid: str) -> Path:
        return self.root / oid[:2] / oid[2:]

    def _ensure_dir(self, prefix: str) -> None:
        if prefix not in self._dirs:
            (self.root / prefix).mkdir(exist_ok=True)
            self._dirs.add(prefix)

    # -- writing -----------------------------------------------------------
    def has(self, oid: str) -> bool:
        # Strings, not pathlib: this runs once per file when a large folder is re-added.
        return oid in self._staged or os.path.exists(f"{self._prefix}{oid[:2]}/{oid[2:]}")

    def put(self, data: bytes | bytearray | memoryview) -> str:
        oid = hash_bytes(data)
        with self._lock:
            if oid in self._staged:
                return oid
        final = self.path(oid)
        if os.path.exists(final):
            return oid
        self._ensure_dir(oid[:2])
        tmp = f"{final}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(fd)
        with self._lock:
            if oid in self._staged:  # another thread staged it meanwhile
                os.unlink(tmp)
            else:
                self._staged[oid] = tmp
        return oid

    def commit(self) -> None:
        with self._lock:
            staged, self._staged = self._staged, {}
        if not staged:
            return
        if not self.durable:
            for oid, tmp in staged.items():
                os.replace(tmp, self.path(oid))
            return
        if len(staged) <= _FSYNC_EACH_UP_TO:
            # A few objects: sync just them. syncfs would also flush every other process's
            # dirty data on this file system, which can cost far more.
            for tmp in staged.values():
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            for oid, tmp in staged.items():
                os.replace(tmp, self.path(oid))
            for folder in {oid[:2] for oid in staged}:
                fd = os.open(self.root / folder, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            return
        _syncfs(self.root)  # the bytes are on disk before any name points at them
        for oid, tmp in staged.items():
            os.replace(tmp, self.path(oid))
        _syncfs(self.root)  # the names are on disk before a record names them

    def abort(self) -> None:
        """Forget staged objects and remove their temporary files."""
        with self._lock:
            staged, self._staged = self._staged, {}
        for tmp in staged.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    # -- reading -----------------------------------------------------------
    def get(self, oid: str) -> bytes:
        try:
            with open(self.path(oid), "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise MissingObject(oid) from None
        actual = hash_bytes(data)
        if actual != oid:
            raise CorruptObject(oid, actual)
        return data

    def size(self, oid: str) -> int:
        try:
            return os.stat(self.path(oid)).st_size
        except FileNotFoundError:
            raise MissingObject(oid) from None

    def check(self, oid: str) -> str | None:
        path = self.path(oid)
        try:
            size = os.stat(path).st_size
            if size >= _BIG:
                hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
                hasher.update_mmap(path)
                actual = hasher.hexdigest()
            else:
                with open(path, "rb") as fh:
                    actual = hash_bytes(fh.read())
        except FileNotFoundError:
            raise MissingObject(oid) from None
        return None if actual == oid else actual

    def iter_oids(self) -> Iterator[str]:
        for prefix in sorted(os.listdir(self.root)):
            folder = self.root / prefix
            if len(prefix) != 2 or not folder.is_dir():
                continue
            for name in sorted(os.listdir(folder)):
                if not name.endswith(".tmp") and is_oid(prefix + name):
                    yield prefix + name

    def delete(self, oid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(oid))

    def local_path(self, oid: str) -> Path | None:
        return self.path(oid)

    def stray_temporaries(self) -> list[str]:
        found = []
        for prefix in os.listdir(self.root):
            folder = self.root / prefix
            if len(prefix) == 2 and folder.is_dir():
                found += [f"{prefix}/{n}" for n in os.listdir(folder) if n.endswith(".tmp")]
        return sorted(found)

    def remove_stray(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.root / name)

    # -- materializing -------------------------------------------------------
    def place(self, oid: str, dest: str, *, allow: tuple[LinkMethod, ...], mode: int) -> LinkMethod:
        """Put a verified copy of object ``oid`` at ``dest`` the cheapest way allowed.

        Reflink shares blocks copy-on-write (safe to edit); a hard link shares
        the read-only object itself; a copy costs the bytes. Returns the method used.
        """
        src = self.path(oid)
        data: bytes | None = None
        if "reflink" in allow and not self._no_reflink:
            data = self.get(oid)  # verify first: the clone itself reads nothing
            if self._reflink(src, dest, mode):
                return "reflink"
        if "hardlink" in allow:
            if data is None:
                bad = self.check(oid)
                if bad is not None:
                    raise CorruptObject(oid, bad)
            try:
                os.link(src, dest)
                return "hardlink"
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
        return self._write_copy(dest, self.get(oid) if data is None else data, mode)

    def _reflink(self, src: Path, dest: str, mode: int) -> bool:
        s = os.open(src, os.O_RDONLY)
        try:
            d = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            try:
                fcntl.ioctl(d, _FICLONE, s)
                return True
            except OSError:
                self._no_reflink = True  # the file system cannot; do not ask per file
                os.close(d)
                d = -1
                os.unlink(dest)
                return False
            finally:
                if d >= 0:
                    os.close(d)
        finally:
            os.close(s)

    @staticmethod
    def _write_copy(dest: str, data: bytes, mode: int) -> LinkMethod:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return "copy"

    def disk_usage(self) -> int:
        """Bytes held by committed objects."""
        total = 0
        for prefix in os.listdir(self.root):
            folder = self.root / prefix
            if len(prefix) == 2 and folder.is_dir():
                with os.scandir(folder) as it:
                    total += sum(e.stat().st_size for e in it if not e.name.endswith(".tmp"))
        return total
