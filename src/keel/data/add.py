"""``keel data add``: version a file or a folder.

Unchanged files cost a ``stat`` (the stat cache knows their digests); new or
changed files are read once, hashed while they are written to the object
store. Objects are made durable before the version record commits, so a crash
at any moment leaves either the whole version or nothing a record can see.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from keel.data.names import check_name
from keel.data.scan import ScannedFile, scan
from keel.data.tabular import TABULAR_SUFFIXES
from keel.data.version import DatasetVersion
from keel.errors import BadPath, KeelError
from keel.store.db.peek import dataset_head
from keel.store.db.revision import HEAD_REVISION
from keel.store.objects.backend import ObjectStore
from keel.store.objects.digest import hash_bytes
from keel.store.objects.files import store_file
from keel.store.objects.tree import Tree, TreeEntry
from keel.workspace import Workspace

if TYPE_CHECKING:
    from concurrent.futures import Future

    from sqlalchemy import Connection

__all__ = ["Progress", "add"]

# Called with (bytes done, bytes to do) as files are stored.
Progress = Callable[[int, int], None]


def add(
    path: str | os.PathLike[str],
    *,
    name: str,
    message: str = "",
    workspace: Workspace | None = None,
    progress: Progress | None = None,
    also: Callable[[Connection, int], None] | None = None,
    source: str | None = None,
    profiled: Future[tuple[dict[str, Any] | None, str | None]] | None = None,
) -> DatasetVersion:
    """Version the file or folder at ``path`` as dataset ``name``.

    Returns the new version (``is_new=True``), or the head when nothing changed.
    ``also(conn, version_id)`` records more with the version, in its transaction (in a
    transaction of its own when the head was unchanged and nothing else is written).
    ``source`` says where the data came from when ``path`` is only where it was written
    (a built training set); the path by default. ``profiled``: for a single file written
    from rows in memory, the future of their profile (``profile_files``' answer, computed
    from the rows while the file was written), used instead of reading the file back.
    """
    check_name(name)
    if workspace is None:
        from keel.workspace import connect

        workspace = connect()
    ws = workspace
    started_ns = time.time_ns()
    kind, root, files = scan(path)
    signature = _listing_signature(files)
    known = ws.stat_cache.tree_for(root, signature)
    if known is not None:  # the same listing as a recorded add: no per-file work at all
        _, head = dataset_head(ws.settings.db_url, name, HEAD_REVISION)
        if head is not None and head["digest"] == known:
            return _also(ws, DatasetVersion(name=name, **head, workspace=ws), also)
    cache = ws.stat_cache.load_under(root)
    cached: list[tuple[TreeEntry, ScannedFile]] = []
    todo: list[ScannedFile] = []
    for f in files:
        hit = cache.get(f.path)
        if hit is not None and hit.matches(f.st):
            entry = TreeEntry(f.rel, hit.oid, hit.size, f.st.st_mode & 0o777, bool(hit.chunked))
            cached.append((entry, f))
        else:
            todo.append(f)

    if not todo:
        digest = hash_bytes(Tree(e for e, _ in cached).encode())
        _, head = dataset_head(ws.settings.db_url, name, HEAD_REVISION)
        if head is not None and head["digest"] == digest:
            newest = max((f.st.st_mtime_ns for f in files), default=0)
            ws.stat_cache.remember_tree(root, signature, digest, newest, started_ns)
            return _also(ws, DatasetVersion(name=name, **head, workspace=ws), also)

    hashed_ns = time.time_ns()
    learned: list[tuple[str, os.stat_result, str, bool]] = []
    with ws.writing_objects():
        store = ws.objects
        try:
            version = _store_and_record(
                ws, store, name, message, kind, root, files, cached, todo, learned, progress, also,
                source, profiled,
            )
        except BaseException:
            store.abort()  # nothing half written: staged temporaries go, no record was made
            raise
    ws.stat_cache.record(learned, hashed_ns)
    newest = max((f.st.st_mtime_ns for f in files), default=0)
    ws.stat_cache.remember_tree(root, signature, version.digest, newest, started_ns)
    return version


def _listing_signature(files: list[ScannedFile]) -> str:
    """A digest of the listing: every file's tree path, inode, size, mtime and mode."""
    text = "\n".join(
        f"{f.rel}\0{f.st.st_ino}\0{f.st.st_size}\0{f.st.st_mtime_ns}\0{f.st.st_mode}" for f in files
    )
    return hash_bytes(text.encode("utf-8", "surrogateescape"))


def _store_and_record(
    ws: Workspace,
    store: ObjectStore,
    name: str,
    message: str,
    kind: Literal["file", "dir"],
    root: str,
    files: list[ScannedFile],
    cached: list[tuple[TreeEntry, ScannedFile]],
    todo: list[ScannedFile],
    learned: list[tuple[str, os.stat_result, str, bool]],
    progress: Progress | None,
    also: Callable[[Connection, int], None] | None = None,
    source: str | None = None,
    profiled: Future[tuple[dict[str, Any] | None, str | None]] | None = None,
) -> DatasetVersion:
    # Entries from the cache name objects that gc may have removed since: store those again.
    # The head version's objects exist (a record names them), so only the others are checked.
    # Read under the objects lock: gc cannot remove the head's objects until we commit.
    _, head = dataset_head(ws.settings.db_url, name, HEAD_REVISION)
    present = _head_objects(ws, head)
    entries: list[TreeEntry] = []
    for entry, f in cached:
        if entry.oid in present or store.has(entry.oid):
            entries.append(entry)
        else:
            todo.append(f)
    total = sum(f.st.st_size for f in todo)
    done = 0
    for f in todo:
        try:
            stored = store_file(store, f.path)
        except PermissionError:
            raise BadPath(f"cannot read {f.path}: permission denied") from None
        except FileNotFoundError:
            raise BadPath(f"{f.path} disappeared while it was being added") from None
        mode = f.st.st_mode & 0o777
        entries.append(TreeEntry(f.rel, stored.oid, stored.size, mode, stored.chunked))
        learned.append((f.path, f.st, stored.oid, stored.chunked))
        done += f.st.st_size
        if progress is not None:
            progress(done, total)
    tree = Tree(entries)
    digest = store.put(tree.encode())
    profile_oid, profile_error = _profile_if_new(ws, head, digest, files, profiled)
    store.commit()
    from keel.data.catalog import record_version

    return record_version(
        ws,
        name=name,
        digest=digest,
        kind=kind,
        size=tree.size,
        file_count=len(tree),
        profile_oid=profile_oid,
        profile_error=profile_error,
        message=message,
        source=source or root,
        also=also,
    )


def _also(
    ws: Workspace, version: DatasetVersion, also: Callable[[Connection, int], None] | None
) -> DatasetVersion:
    """The head was unchanged: record ``also`` against it."""
    if also is not None:
        from keel.data.catalog import version_id

        def txn(conn: Connection) -> None:
            also(conn, version_id(conn, version.name, version.number))

        ws.db.write(txn)
    return version


def _head_objects(ws: Workspace, head: dict[str, Any] | None) -> set[str]:
    if head is None:
        return set()
    try:
        return {e.oid for e in Tree.decode(ws.objects.get(head["digest"]))}
    except KeelError:
        return set()  # unreadable: check every object instead


def _profile_if_new(
    ws: Workspace,
    head: dict[str, Any] | None,
    digest: str,
    files: list[ScannedFile],
    profiled: Future[tuple[dict[str, Any] | None, str | None]] | None = None,
) -> tuple[str | None, str | None]:
    if head is not None and head["digest"] == digest:
        return head["profile_oid"], head["profile_error"]
    if not any(f.rel.lower().endswith(TABULAR_SUFFIXES) for f in files):
        return None, None  # nothing to profile: do not pay for importing numpy and pyarrow
    from keel.data.profile import profile_files

    if profiled is not None and len(files) == 1:
        profile, error = profiled.result()
    else:
        profile, error = profile_files([(f.rel, f.path) for f in files])
    if profile is None:
        return None, error
    return ws.objects.put(_json(profile)), error


def _json(doc: Any) -> bytes:
    import json

    return json.dumps(doc, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()
