"""Listing what ``keel data add`` will version, refusing paths that leave the folder.

A symlink inside the added folder is followed when it leads to a file or
folder inside it, and refused when it leads outside (or nowhere). ``.keel``
and ``.git`` folders are never versioned.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from keel.errors import BadPath

__all__ = ["SKIPPED_DIRS", "ScannedFile", "scan"]

SKIPPED_DIRS = frozenset({".keel", ".git"})


@dataclass(frozen=True, slots=True)
class ScannedFile:
    """A file to version: its path in the tree, where to read it, and its stat."""

    rel: str
    path: str
    st: os.stat_result


def scan(path: str | os.PathLike[str]) -> tuple[Literal["file", "dir"], str, list[ScannedFile]]:
    """Return the kind, the resolved root and the files under ``path``, sorted by tree path."""
    given = os.fspath(path)
    try:
        root = os.path.realpath(given, strict=True)
        st = os.stat(root)
    except FileNotFoundError:
        raise BadPath(f"no such file or folder: {given}") from None
    except PermissionError:
        raise BadPath(f"cannot read {given}: permission denied") from None
    except OSError as exc:
        raise BadPath(f"cannot read {given}: {exc.strerror}") from None
    if stat.S_ISREG(st.st_mode):
        _check_readable(root, given)
        return "file", root, [ScannedFile(os.path.basename(root), root, st)]
    if not stat.S_ISDIR(st.st_mode):
        raise BadPath(f"cannot version {given}: not a regular file or folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise BadPath(f"cannot read folder {given}: permission denied")
    files: list[ScannedFile] = []
    _walk(root, "", root, given, files, {root})
    files.sort(key=lambda f: f.rel)
    return "dir", root, files


def _walk(
    folder: str, rel: str, root: str, given: str, out: list[ScannedFile], active: set[str]
) -> None:
    try:
        entries = list(os.scandir(folder))
    except PermissionError:
        raise BadPath(f"cannot read folder {_shown(given, rel)}: permission denied") from None
    for entry in entries:
        name = entry.name
        child_rel = f"{rel}/{name}" if rel else name
        if entry.is_symlink():
            target = os.path.realpath(entry.path)
            if not (target == root or target.startswith(root + os.sep)):
                raise BadPath(
                    f"symlink {_shown(given, child_rel)} -> {os.readlink(entry.path)} leads outside "
                    f"{given}: expected links that stay inside the added folder"
                )
            try:
                st = os.stat(target)
            except FileNotFoundError:
                raise BadPath(f"symlink {_shown(given, child_rel)} leads nowhere") from None
            if stat.S_ISDIR(st.st_mode):
                if target in active:
                    raise BadPath(f"symlink {_shown(given, child_rel)} makes a loop")
                _walk(target, child_rel, root, given, out, active | {target})
            elif stat.S_ISREG(st.st_mode):
                out.append(ScannedFile(child_rel, target, st))
            continue
        if entry.is_dir(follow_symlinks=False):
            if name in SKIPPED_DIRS:
                continue
            _walk(entry.path, child_rel, root, given, out, active)
        elif entry.is_file(follow_symlinks=False):
            out.append(ScannedFile(child_rel, entry.path, entry.stat(follow_symlinks=False)))
        else:
            raise BadPath(
                f"cannot version {_shown(given, child_rel)}: not a regular file, folder or symlink"
            )


def _check_readable(path: str, shown: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except PermissionError:
        raise BadPath(f"cannot read {shown}: permission denied") from None
    os.close(fd)


def _shown(given: str, rel: str) -> str:
    return str(Path(given) / rel)
