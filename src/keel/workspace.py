"""A workspace: settings, the metadata store, the object store and the stat cache, opened lazily.

>>> import tempfile
>>> ws = init(tempfile.mkdtemp())
>>> (ws.root / ".keel").is_dir()
True
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from keel.config import KEEL_DIR, Settings, find_workspace, load_settings
from keel.errors import BadPath

if TYPE_CHECKING:
    from keel.store.db import Database
    from keel.store.logs import LogLake
    from keel.store.objects import ObjectStore, StatCache

__all__ = ["Workspace", "connect", "exclude_from_git", "init"]

_CONFIG_TEMPLATE = """\
# keel workspace settings. Uncomment to grow past one machine.
# [metadata]
# url = "postgresql://user@host/db"
# [objects]
# url = "s3://bucket/prefix"
"""


class Workspace:
    """An open workspace. Stores open on first use, so cheap commands stay cheap."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.root
        self.git_exclude: dict[str, str] | None = None  # what init did to .git/info/exclude

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    @cached_property
    def db(self) -> Database:
        from keel.store.db import Database, ensure_schema

        database = Database(self.settings.db_url)
        ensure_schema(database)
        return database

    @cached_property
    def objects(self) -> ObjectStore:
        from keel.store.objects import open_store

        return open_store(self.settings.store_url)

    @cached_property
    def logs(self) -> LogLake:
        """The log lake: prediction logs and outcomes (``.keel/logs``)."""
        from keel.store.logs import LogLake

        return LogLake(self.settings.keel_dir / "logs")

    @cached_property
    def stat_cache(self) -> StatCache:
        from keel.store.objects import StatCache

        return StatCache(self.settings.local_cache / "stat.sqlite")

    @contextlib.contextmanager
    def writing_objects(self) -> Iterator[None]:
        """Hold off garbage collection while objects are written and their record commits."""
        with self._lock(fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def collecting_garbage(self) -> Iterator[None]:
        """Exclusive: no writer is between writing objects and recording them."""
        with self._lock(fcntl.LOCK_EX):
            yield

    @contextlib.contextmanager
    def _lock(self, mode: int) -> Iterator[None]:
        if not self.settings.keel_dir.is_dir():
            # A Dask worker on another machine: no collector runs there, and the driver
            # holds the lock on the workspace's own machine while its workers write.
            yield
            return
        path = self.settings.keel_dir / "objects.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()
        if "stat_cache" in self.__dict__:
            self.stat_cache.close()


def init(path: str | os.PathLike[str] = ".", *, git_exclude: bool = True) -> Workspace:
    """Create a workspace in ``path`` (idempotent) and migrate its metadata store.

    Inside a git repository, ``.keel/`` is added to the repository's ``info/exclude``
    (``git_exclude``), so ``git add -A`` never stages the metadata store and the
    objects; :func:`exclude_from_git` says how that went."""
    root = Path(path).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise BadPath(f"cannot make a workspace in {root}: it is a file, expected a folder")
    keel_dir = root / KEEL_DIR
    for sub in ("objects", "logs", "cache"):
        (keel_dir / sub).mkdir(parents=True, exist_ok=True)
    cfg = keel_dir / "config.toml"
    if not cfg.exists():
        tmp = keel_dir / f"config.toml.{os.getpid()}.tmp"
        tmp.write_text(_CONFIG_TEMPLATE)
        os.replace(tmp, cfg)
    ws = Workspace(load_settings(root))
    ws.db  # noqa: B018 - creates and migrates the metadata store now
    if git_exclude:
        ws.git_exclude = exclude_from_git(root)
    return ws


def _git_dirs(start: Path) -> tuple[Path, Path] | None:
    """The top of the git work tree ``start`` is in, and the folder holding its
    ``info/exclude`` (the common git folder of a worktree); None outside a repository."""
    for top in (start, *start.parents):
        dot = top / ".git"
        if dot.is_dir():
            return top, dot
        if dot.is_file():  # a worktree or a submodule: "gitdir: PATH"
            text = dot.read_text(errors="replace").strip()
            if not text.startswith("gitdir:"):
                return None
            gitdir = (top / text.split(":", 1)[1].strip()).resolve()
            common = gitdir / "commondir"
            if common.is_file():
                gitdir = (gitdir / common.read_text().strip()).resolve()
            return top, gitdir
    return None


def exclude_from_git(root: Path) -> dict[str, str] | None:
    """Add ``.keel/`` under ``root`` to its git repository's ``info/exclude`` (kept local:
    the file is not versioned); None outside a repository. ``{"status": "added" |
    "present" | "failed", "file": ..., "line": ...}``; on failure, the line to add."""
    found = _git_dirs(root)
    if found is None:
        return None
    top, gitdir = found
    rel = root.relative_to(top).as_posix()
    line = f"/{rel}/{KEEL_DIR}/" if rel != "." else f"/{KEEL_DIR}/"
    exclude = gitdir / "info" / "exclude"
    try:
        text = exclude.read_text() if exclude.exists() else ""
        if line in (x.strip() for x in text.splitlines()):
            return {"status": "present", "file": str(exclude), "line": line}
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a", encoding="utf-8") as fh:
            fh.write(("\n" if text and not text.endswith("\n") else "") + f"{line}\n")
    except OSError:
        return {"status": "failed", "file": str(exclude), "line": line}
    return {"status": "added", "file": str(exclude), "line": line}


_OPEN: dict[tuple[Path, str, str], Workspace] = {}


def connect(path: str | os.PathLike[str] | None = None) -> Workspace:
    """Open the workspace at ``path``, or the one ``KEEL_HOME`` or the current folder leads to.

    The same workspace (same root and settings) is opened once per process, so
    repeated calls reuse its connections.
    """
    root = find_workspace(Path(path) if path is not None else None)
    settings = load_settings(root)
    key = (settings.root, settings.db_url, settings.store_url)
    ws = _OPEN.get(key)
    if ws is None:
        ws = _OPEN[key] = Workspace(settings)
    return ws
