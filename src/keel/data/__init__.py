"""Datasets: version files and folders, inspect and compare versions, restore them exactly.

>>> import keel, tempfile, pathlib
>>> ws = keel.init(tempfile.mkdtemp())
>>> src = pathlib.Path(ws.root, "data.csv")
>>> _ = src.write_text("x,y\\n1,a\\n2,b\\n")
>>> v1 = keel.data.add(src, name="demo", workspace=ws)
>>> v1.ref, v1.is_new, v1.profile["tables"][0]["rows"]
('demo@v1', True, 2)
>>> keel.data.add(src, name="demo", workspace=ws).is_new
False
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.data.add import Progress, add
from keel.data.diff import DatasetDiff
from keel.data.names import check_name, parse_ref
from keel.data.version import DatasetVersion

if TYPE_CHECKING:
    from keel.data.catalog import DatasetSummary
    from keel.store.db import Event
    from keel.workspace import Workspace

__all__ = [
    "DatasetDiff",
    "DatasetVersion",
    "Progress",
    "add",
    "check_name",
    "diff",
    "get",
    "head_history",
    "list_datasets",
    "log",
    "parse_ref",
    "remove",
]


def _ws(workspace: Workspace | None) -> Workspace:
    if workspace is not None:
        return workspace
    from keel.workspace import connect

    return connect()


def get(ref: str, *, workspace: Workspace | None = None) -> DatasetVersion:
    """The version ``ref`` names (``churn@v3``, ``churn`` or a digest prefix)."""
    from keel.data.catalog import resolve

    return resolve(_ws(workspace), ref)


def diff(
    a: str | DatasetVersion, b: str | DatasetVersion, *, workspace: Workspace | None = None
) -> DatasetDiff:
    """What changed from ``a`` to ``b``: files, schema, rows and column statistics."""
    from keel.data.diff import diff_versions

    ws = _ws(workspace)
    va = a if isinstance(a, DatasetVersion) else get(a, workspace=ws)
    vb = b if isinstance(b, DatasetVersion) else get(b, workspace=ws)
    return diff_versions(va, vb)


def list_datasets(*, workspace: Workspace | None = None) -> list[DatasetSummary]:
    """Every dataset with its head version."""
    from keel.data.catalog import list_datasets as _list

    return _list(_ws(workspace))


def log(name: str, *, workspace: Workspace | None = None) -> list[DatasetVersion]:
    """Every version of dataset ``name``, newest first."""
    from keel.data.catalog import versions

    return versions(_ws(workspace), name)


def head_history(name: str, *, workspace: Workspace | None = None) -> list[Event]:
    """Every move of the head of ``name``, newest first."""
    from keel.data.catalog import head_history as _history

    return _history(_ws(workspace), name)


def remove(ref: str, *, message: str = "", workspace: Workspace | None = None) -> DatasetVersion:
    """Mark a version removed so ``keel gc`` can reclaim its objects; the record stays."""
    from keel.data.catalog import remove as _remove

    return _remove(_ws(workspace), ref, message)
