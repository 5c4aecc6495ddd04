"""``keel data get``: put a version's files back on disk, byte for byte.

Each file is placed the cheapest safe way the file system allows: a reflink
(copy-on-write, safe to edit), else a hard link to the read-only object, else
a copy; chunked files are always reassembled by copying. Every object is
verified before it is placed. The files go into a temporary folder beside
``out`` that is renamed into place at the end, so an error leaves nothing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from keel.errors import BadPath, InvalidInput
from keel.store.objects import LinkMethod, LocalObjectStore, write_content

if TYPE_CHECKING:
    from keel.data.version import DatasetVersion
    from keel.store.objects import Tree

__all__ = ["materialize"]


def materialize(
    version: DatasetVersion, out: str, *, link: Literal["auto", "copy"] = "auto"
) -> dict[LinkMethod, int]:
    """Write ``version`` under ``out``; returns how many files each method placed."""
    if version.deleted_at is not None:
        raise InvalidInput(f"{version.ref} was removed; its data may be gone (`keel gc`)")
    if link not in ("auto", "copy"):
        raise InvalidInput(f"invalid link mode {link!r}: expected 'auto' or 'copy'")
    allow: tuple[LinkMethod, ...] = (
        ("reflink", "hardlink", "copy") if link == "auto" else ("reflink", "copy")
    )
    tree = version.tree()
    target = Path(out)
    made = _missing_parents(target)
    try:
        return _materialize(version, tree, target, out, allow)
    except BaseException:
        for folder in made:  # deepest first: leave no trace of a refused get
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _missing_parents(target: Path) -> list[Path]:
    """The folders above ``target`` that do not exist yet, deepest first."""
    missing = []
    parent = target.absolute().parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    return missing


def _materialize(
    version: DatasetVersion, tree: Tree, target: Path, out: str, allow: tuple[LinkMethod, ...]
) -> dict[LinkMethod, int]:
    if version.kind == "file":
        entry = tree.entries[0]
        dest = target / entry.path if (target.is_dir() or out.endswith(os.sep)) else target
        if dest.exists():
            raise BadPath(f"{dest} already exists; expected a path that does not")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.keel-{secrets.token_hex(4)}")
        try:
            method = _place(version, entry.oid, entry.chunked, str(tmp), entry.mode, allow)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return {method: 1}

    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BadPath(
            f"{out} already exists and is not an empty folder; expected a new or empty one"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.keel-{secrets.token_hex(4)}"
    staging.mkdir()
    counts: Counter[LinkMethod] = Counter()
    made: set[str] = {""}
    try:
        for entry in tree:
            parent = os.path.dirname(entry.path)
            if parent not in made:
                os.makedirs(staging / parent, exist_ok=True)
                made.add(parent)
            path = os.path.join(staging, entry.path)
            counts[_place(version, entry.oid, entry.chunked, path, entry.mode, allow)] += 1
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dict(counts)


def _place(
    version: DatasetVersion,
    oid: str,
    chunked: bool,
    dest: str,
    mode: int,
    allow: tuple[LinkMethod, ...],
) -> LinkMethod:
    assert version.workspace is not None
    store = version.workspace.objects
    if not chunked and isinstance(store, LocalObjectStore):
        return store.place(oid, dest, allow=allow, mode=mode)
    write_content(store, oid, chunked, dest, mode)
    return "copy"
