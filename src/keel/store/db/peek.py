"""Read a dataset's head from an embedded SQLite store without importing SQLAlchemy.

``import sqlalchemy`` costs ~0.2 s; answering "is this data unchanged?" must
cost less than that in total. This is a read-only shortcut for the default
store only: on any doubt (another database, another schema revision, any
error) it says it cannot answer, and the caller takes the ordinary path.
"""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = ["dataset_head"]

_COLUMNS = (
    "number",
    "digest",
    "kind",
    "size",
    "file_count",
    "profile_oid",
    "profile_error",
    "message",
    "source",
    "created_at",
    "created_by",
    "deleted_at",
)


def _sqlite_path(url: str) -> str | None:
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = url[len("sqlite:///") :]
    return path if path and path != ":memory:" else None


def dataset_head(url: str, name: str, head_revision: str) -> tuple[bool, dict[str, Any] | None]:
    """(answered, head row): the head version row of dataset ``name`` (None when it has none).

    ``answered`` is False when this shortcut cannot tell; ask the metadata store then.
    """
    path = _sqlite_path(url)
    if path is None:
        return False, None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return False, None
    try:
        rev = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        if rev is None or rev[0] != head_revision:
            return False, None
        cols = ", ".join(f"v.{c}" for c in _COLUMNS)
        row = conn.execute(
            f"SELECT {cols} FROM pointers p"
            " JOIN datasets d ON d.name = p.name"
            " JOIN dataset_versions v ON v.dataset_id = d.id AND v.number = CAST(p.target AS INTEGER)"
            " WHERE p.kind = 'dataset.head' AND p.name = ?",
            (name,),
        ).fetchone()
        return True, (None if row is None else dict(zip(_COLUMNS, row, strict=True)))
    except sqlite3.Error:
        return False, None
    finally:
        conn.close()
