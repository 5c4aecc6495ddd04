"""Which files are tables (profiled while added, readable with ``to_pandas``). No imports."""

from __future__ import annotations

__all__ = ["TABULAR_SUFFIXES", "is_tabular"]

TABULAR_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")


def is_tabular(path: str) -> bool:
    """True for CSV, TSV and Parquet files.

    >>> is_tabular("data/part-0.parquet"), is_tabular("notes.txt")
    (True, False)
    """
    return path.lower().endswith(TABULAR_SUFFIXES)
