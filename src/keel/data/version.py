"""The record of one dataset version, and what can be done with it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

    from keel.store.objects import LinkMethod, Tree, TreeEntry
    from keel.workspace import Workspace

__all__ = ["DatasetVersion"]


@dataclass
class DatasetVersion:
    """An immutable version of a dataset: ``name@vN``, named by the digest of its tree.

    ``is_new`` says whether the call that returned it created it (``add`` of
    unchanged data returns the existing head with ``is_new=False``).
    """

    name: str
    number: int
    digest: str
    kind: Literal["file", "dir"]
    size: int
    file_count: int
    profile_oid: str | None
    profile_error: str | None
    message: str
    source: str
    created_at: float
    created_by: str
    deleted_at: float | None = None
    is_new: bool = False
    workspace: Workspace | None = field(default=None, repr=False, compare=False)
    _tree: Tree | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        """``name@vN``."""
        return f"{self.name}@v{self.number}"

    @property
    def created(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.created_at, dt.UTC)

    def _ws(self) -> Workspace:
        if self.workspace is None:
            from keel.workspace import connect

            self.workspace = connect()
        return self.workspace

    def tree(self) -> Tree:
        """The tree manifest (verified against the digest)."""
        if self._tree is None:
            from keel.store.objects import Tree

            self._tree = Tree.decode(self._ws().objects.get(self.digest))
        return self._tree

    def files(self) -> list[TreeEntry]:
        """Every file of this version: path, object, size, mode."""
        return list(self.tree())

    @property
    def profile(self) -> dict[str, Any] | None:
        """Column statistics of the tabular files, or None (see ``profile_error``)."""
        if self.profile_oid is None:
            return None
        result: dict[str, Any] = json.loads(self._ws().objects.get(self.profile_oid))
        return result

    def materialize(
        self, out: str, *, link: Literal["auto", "copy"] = "auto"
    ) -> dict[LinkMethod, int]:
        """Write this version's files under ``out``; returns how many files each method placed."""
        from keel.data.materialize import materialize

        return materialize(self, out, link=link)

    def to_pandas(self, path: str | None = None) -> pd.DataFrame:
        """Read a tabular version (one file, or a folder of same-schema files) as a DataFrame."""
        from keel.data.tables import read_table

        return read_table(self, path).to_pandas()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "name": self.name,
            "version": self.number,
            "digest": self.digest,
            "kind": self.kind,
            "size": self.size,
            "files": self.file_count,
            "profile_oid": self.profile_oid,
            "profile_error": self.profile_error,
            "message": self.message,
            "source": self.source,
            "created_at": self.created.isoformat(),
            "created_by": self.created_by,
            "deleted": self.deleted_at is not None,
        }
