"""Where a side of a comparison comes from: a DataFrame, a CSV/Parquet path, a dataset
version (``churn@v3``, read from its stored profile where the detectors allow), a
stored profile, or a model version (``churn/v4``, ``churn@champion``), which leads
through lineage to the dataset version it was trained on."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import BadPath, InvalidInput, KeelError, NotFound
from keel.monitor.columns import Columns, column_names, is_arrow

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["Side", "load_side"]

SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")


@dataclass
class Side:
    """One side: a table (a DataFrame or, read from a file, an Arrow table; or a way to
    read it), or only a profile table."""

    label: str
    frame: Any | None = None
    profile: dict[str, Any] | None = None
    loader: Callable[[], Any] | None = None
    dataset: Any | None = None  # DatasetVersion
    model: Any | None = None  # ModelVersion
    notes: list[str] = field(default_factory=list)
    _columns: Columns | None = field(default=None, repr=False)

    def table(self) -> Any | None:
        """The table, read on first use; None when only a profile exists."""
        if self.frame is None and self.loader is not None:
            self.frame = self.loader()
            self.loader = None
        return self.frame

    def data(self) -> Columns:
        """The table's columns, each converted to numpy once (the table must exist)."""
        table = self.table()
        if table is None:
            raise InvalidInput(f"{self.label} has no table, only a profile")
        if self._columns is None or self._columns.table is not table:
            self._columns = Columns(table)
        return self._columns

    @property
    def columns(self) -> list[str]:
        if self.frame is not None:
            return column_names(self.frame)
        if self.profile is not None:
            return list(self.profile["columns"])
        table = self.table()
        return column_names(table) if table is not None else []

    @property
    def rows(self) -> int:
        if self.frame is not None:
            return len(self.frame)
        if self.profile is not None:
            return int(self.profile.get("rows", 0))
        table = self.table()
        return len(table) if table is not None else 0


def read_path(path: str) -> Any:
    """A CSV, TSV or Parquet file as an Arrow table (no pandas: judging files needs none)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    lower = path.lower()
    try:
        if lower.endswith((".parquet", ".pq")):
            # ParquetFile, not read_table: the dataset layer imports pandas. Memory-mapped:
            # reading through a buffered file took 0.3-1.3 s for two 170 MB files, mapped 0.2 s.
            # Text stays dictionary-encoded as the file holds it: its codes need no hashing.
            schema = pq.read_schema(path, memory_map=True)
            text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            return _without_index(
                pq.ParquetFile(path, memory_map=True, read_dictionary=text or None).read()
            )
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter="\t" if lower.endswith(".tsv") else ","),
            # Text of few values arrives dictionary-encoded: its codes need no hashing.
            convert_options=pacsv.ConvertOptions(strings_can_be_null=True, auto_dict_encode=True),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"{path} is not a readable table: {first}") from None


def _profile_table(profile: dict[str, Any], want: list[str] | None) -> dict[str, Any]:
    tables = profile.get("tables") if "tables" in profile else [profile]
    if not tables or not all(isinstance(t, dict) and "columns" in t for t in tables):
        raise InvalidInput("the profile has no table with columns (expected keel.profile/1)")
    if want:
        return max(tables, key=lambda t: len(set(t["columns"]) & set(want)))
    return dict(tables[0])


def _without_index(table: Any) -> Any:
    """An Arrow table without the pandas index a Parquet file stored: an index is no column."""
    meta = table.schema.pandas_metadata or {}
    index = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    return table.drop_columns(index) if index else table


def _arrow(version: Any, path: str | None = None) -> Any:
    """A dataset version's table (or one file of it) as Arrow, as a file path is read."""
    from keel.data.tables import read_table

    return _without_index(read_table(version, path))


def _from_dataset(version: Any, want: list[str] | None) -> Side:
    side = Side(label=version.ref, dataset=version, loader=lambda: _arrow(version))
    profile = version.profile
    if profile is not None and profile.get("tables"):
        side.profile = _profile_table(profile, want)
    return side


def _from_dataset_file(ws: Workspace, ref: str, inner: str, role: str) -> Side:
    """A file inside a dataset version (``churn@v2:current.csv``): read when needed."""
    from keel.data.catalog import resolve

    version = resolve(ws, ref)
    if not inner:
        raise InvalidInput(f"{role} {ref}: name a file after the colon ({ref}:current.csv)")
    if not inner.lower().endswith(SUFFIXES):
        raise BadPath(f"{role} {ref}:{inner} is not a .csv, .tsv or .parquet file")
    return Side(
        label=f"{version.ref}:{inner}", dataset=version, loader=lambda: _arrow(version, inner)
    )


def _from_model(ws: Workspace, mv: Any, want: list[str] | None) -> Side:
    from keel.data.catalog import resolve
    from keel.track.records import get_run

    if mv.run_id is None:
        raise NotFound(f"model {mv.ref} was logged outside a run, so it has no training data")
    inputs = get_run(ws, mv.run_id).inputs
    if not inputs:
        raise NotFound(
            f"model {mv.ref}'s run {mv.run_id[:8]} used no recorded dataset version "
            "(run.use(...)); name the reference data instead"
        )
    candidates = [_from_dataset(resolve(ws, item["ref"]), want) for item in inputs]
    best = max(candidates, key=lambda s: len(set(s.columns) & set(want or [])))
    best.model = mv
    best.label = f"{best.label} (training data of {mv.ref})"
    return best


def _table_file(obj: Any) -> str | None:
    """``obj`` as the path of a table file that exists, else None."""
    if isinstance(obj, os.PathLike):
        obj = os.fspath(obj)
    if isinstance(obj, str) and obj.lower().endswith(SUFFIXES) and os.path.isfile(obj):
        return obj
    return None


def read_together(*objs: Any) -> Callable[[str], Any]:
    """When every one of ``objs`` is a table file, start reading them all at once (Arrow
    reads without the GIL) and return what :func:`load_side` reads a path with."""
    paths = [_table_file(obj) for obj in objs]
    if len(paths) < 2 or any(path is None for path in paths):
        return read_path
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(paths), thread_name_prefix="keel-read") as pool:
        futures = {path: pool.submit(read_path, path) for path in paths if path is not None}
    return lambda path: futures[path].result() if path in futures else read_path(path)


def load_side(
    obj: Any,
    role: str,
    workspace: Callable[[], Workspace],
    want: list[str] | None = None,
    read: Callable[[str], Any] = read_path,
) -> Side:
    """Turn what the caller passed as ``role`` ("reference" or "current") into a Side.

    ``workspace`` is called only when a reference string needs one; ``want`` (the
    other side's columns) picks the best-matching table of a profile; ``read`` reads a
    table file (:func:`read_together` gives one that has read it already)."""
    # Modules not imported yet cannot have made obj: a DataFrame, a DatasetVersion.
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, pd.DataFrame):
        return Side(label="DataFrame", frame=obj)
    if is_arrow(obj) and hasattr(obj, "column_names"):
        return Side(label="Arrow table", frame=obj)
    versions = sys.modules.get("keel.data.version")
    if versions is not None and isinstance(obj, versions.DatasetVersion):
        return _from_dataset(obj, want)
    if isinstance(obj, dict):
        return Side(label="profile", profile=_profile_table(obj, want))
    if isinstance(obj, os.PathLike):
        obj = os.fspath(obj)
    if not isinstance(obj, str):
        raise InvalidInput(
            f"{role} must be a DataFrame or Arrow table, a path to a CSV or Parquet file, a "
            "dataset or model "
            f"reference, or a profile; not {type(obj).__name__}"
        )
    if ":" in obj and not os.path.exists(obj):
        from keel.data.names import split_file_ref

        ref, inner = split_file_ref(obj)
        if inner is not None:
            return _from_dataset_file(workspace(), ref, inner, role)
    if os.path.exists(obj):
        if os.path.isdir(obj) or not obj.lower().endswith(SUFFIXES):
            raise BadPath(f"{role} {obj!r} is not a .csv, .tsv or .parquet file")
        return Side(label=obj, frame=read(obj))
    if obj.lower().endswith(SUFFIXES) or (os.sep in obj and "/v" not in obj):
        raise BadPath(f"{role} {obj!r}: no such file")
    ws = workspace()
    from keel.data.catalog import resolve

    is_dataset = "@v" in obj and obj.split("@v", 1)[1].isdecimal() and "/" not in obj
    if is_dataset:
        return _from_dataset(resolve(ws, obj), want)
    from keel.registry.versions import resolve_model

    try:
        mv = resolve_model(ws, obj)
    except KeelError as model_error:
        if "/" in obj:
            raise
        try:
            return _from_dataset(resolve(ws, obj), want)
        except KeelError:
            raise NotFound(
                f"{role} {obj!r} is neither a file, a dataset nor a model ({model_error})"
            ) from None
    # A model it is: what goes wrong from here is about its lineage, and says so.
    return _from_model(ws, mv, want)
