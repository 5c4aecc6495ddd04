"""Reading a tabular version back as an Arrow table (and from there, pandas)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.data.tabular import is_tabular
from keel.errors import InvalidInput, NotFound
from keel.store.objects import iter_content

if TYPE_CHECKING:
    from keel.data.version import DatasetVersion

__all__ = ["read_table"]


def read_table(version: DatasetVersion, path: str | None = None) -> Any:
    """The table in ``version``: one file, or all its tabular files when they share columns."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if version.deleted_at is not None:
        raise InvalidInput(f"{version.ref} was removed; its data may be gone (`keel gc`)")
    tree = version.tree()
    if path is not None:
        entry = tree.get(path)
        if entry is None:
            raise NotFound(f"{version.ref} has no file {path!r}")
        entries = [entry]
    else:
        entries = [e for e in tree if is_tabular(e.path)]
    if not entries or not all(is_tabular(e.path) for e in entries):
        raise InvalidInput(
            f"{version.ref} has no tabular file to read; expected .csv, .tsv or .parquet files"
        )
    assert version.workspace is not None
    store = version.workspace.objects
    tables = []
    for e in entries:
        data = b"".join(iter_content(store, e.oid, e.chunked))
        source = pa.BufferReader(data)
        lower = e.path.lower()
        if lower.endswith((".parquet", ".pq")):
            # the file's reader, not pq.read_table: that one imports the dataset API and
            # with it pandas (a quarter of a second) for a single file
            tables.append(pq.ParquetFile(source).read())
        else:
            delim = "\t" if lower.endswith(".tsv") else ","
            try:
                tables.append(
                    pacsv.read_csv(
                        source,
                        parse_options=pacsv.ParseOptions(delimiter=delim),
                        convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
                    )
                )
            except pa.ArrowInvalid as exc:
                raise InvalidInput(
                    f"{version.ref}:{e.path} is not a readable table: {exc}"
                ) from exc
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(
            f"the tables in {version.ref} do not share a schema ({exc}); pass path= to read one"
        ) from exc
