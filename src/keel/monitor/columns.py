"""One column on one side of a comparison, summarised from a table or from a stored profile.

A numeric column answers ``cdf(points)`` and ``quantile(levels)``: exactly from
its sorted values when it comes from a table, by linear interpolation between
the 101 stored quantiles when it comes from a profile. A categorical column
holds its counts per category (all of them from a table; the top 50 and an
"other" count from a profile). Every detector works on these two shapes, so
the same detector judges a table against a table or a profile against a table.

A column of a table is a pandas Series or an Arrow (chunked) array. Arrow columns of
numbers, text and booleans are read straight from their buffers, so judging files needs
no pandas; any other Arrow type goes through pandas, which decides as it always has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "CategoricalColumn",
    "Column",
    "Columns",
    "NumericColumn",
    "categorical_codes",
    "column_from_codes",
    "column_from_profile",
    "column_from_series",
    "column_from_values",
    "column_names",
    "distinct_sorted",
    "is_arrow",
    "kind_of",
    "numeric_values",
]

# How many quantile points stand for a numeric column from a table.
GRID = 1001
# An object column whose non-null values are numbers at least this often is read as numbers.
NUMERIC_SHARE = 0.95
# numpy's name for each Arrow type read from its buffers.
_NUMPY = {
    **{f"int{b}": f"int{b}" for b in (8, 16, 32, 64)},
    **{f"uint{b}": f"uint{b}" for b in (8, 16, 32, 64)},
    "halffloat": "float16",
    "float": "float32",
    "double": "float64",
}


@dataclass
class NumericColumn:
    """Finite values of a numeric column; nulls, NaN and infinities are counted apart."""

    count: int
    missing: int
    inf: int
    n: int
    mean: float
    std: float
    min: float
    max: float
    values: Any | None = None  # sorted finite values (from a table)
    quantiles: Any | None = None  # 101 quantiles (from a profile)
    invalid: int = 0  # values that were not numbers (mixed-type columns), counted in missing
    notes: list[str] = field(default_factory=list)
    kind: Literal["numeric"] = "numeric"
    # grid() and the CDF there, kept: a reference is compared with every chunk of a table.
    _grid: Any = field(default=None, init=False, repr=False, compare=False)
    _grid_cdf: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def source(self) -> str:
        return "table" if self.values is not None else "profile"

    @property
    def missing_rate(self) -> float:
        return self.missing / self.count if self.count else 0.0

    def cdf(self, points: Any) -> Any:
        """The share of finite values at or below each point."""
        pts = np.asarray(points, dtype=float)
        if self.n == 0:
            return np.zeros_like(pts)
        if self.values is not None:
            return np.searchsorted(self.values, pts, side="right") / self.n
        q, levels = self._knots()
        return np.interp(pts, q, levels, left=0.0, right=1.0)

    def quantile(self, levels: Any) -> Any:
        """Values at the given levels (0..1) of the distribution of finite values."""
        lv = np.clip(np.asarray(levels, dtype=float), 0.0, 1.0)
        if self.values is not None:
            idx = np.minimum((lv * self.n).astype(np.int64), self.n - 1)
            return self.values[idx]
        q = np.asarray(self.quantiles, dtype=float)
        return np.interp(lv, np.linspace(0.0, 1.0, len(q)), q)

    def grid(self) -> Any:
        """Points where the distribution is known: quantiles (deduplicated)."""
        if self._grid is None:
            if self.values is not None:
                self._grid = distinct_sorted(self.quantile(np.linspace(0.0, 1.0, GRID)))
            else:
                self._grid = distinct_sorted(np.sort(np.asarray(self.quantiles, dtype=float)))
        return self._grid

    def grid_cdf(self) -> Any:
        """``cdf(grid())``."""
        if self._grid_cdf is None:
            self._grid_cdf = self.cdf(self.grid())
        return self._grid_cdf

    def _knots(self) -> tuple[Any, Any]:
        # Repeated quantiles (ties) keep the highest level: the CDF jumps there.
        q = np.asarray(self.quantiles, dtype=float)
        levels = np.linspace(0.0, 1.0, len(q))
        uniq, last = np.unique(q[::-1], return_index=True)
        return uniq, levels[::-1][last]


@dataclass
class CategoricalColumn:
    """Counts per category; ``complete`` says every category is listed (no "other")."""

    count: int
    missing: int
    counts: dict[str, int]
    other: int = 0
    complete: bool = True
    notes: list[str] = field(default_factory=list)
    source: str = "table"  # or "profile"
    kind: Literal["categorical"] = "categorical"

    @property
    def n(self) -> int:
        return self.count - self.missing

    @property
    def missing_rate(self) -> float:
        return self.missing / self.count if self.count else 0.0


Column = NumericColumn | CategoricalColumn


def distinct_sorted(values: Any) -> Any:
    """The distinct values of ``values``, which are in order already: ``numpy.unique``
    without its sort, and without its import of ``numpy.ma`` (a hundredth of a second of
    a command that uses it nowhere else).

    >>> distinct_sorted([1.0, 1.0, 2.0, 3.0, 3.0]).tolist()
    [1.0, 2.0, 3.0]
    """
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return v.copy()
    return v[np.concatenate(([True], v[1:] != v[:-1]))]


def is_arrow(obj: Any) -> bool:
    """An Arrow table, array or chunked array (told apart without importing pyarrow)."""
    return type(obj).__module__.startswith("pyarrow")


def column_names(table: Any) -> list[str]:
    """The column names of a DataFrame or an Arrow table."""
    names = table.column_names if is_arrow(table) else table.columns
    return [str(c) for c in names]


def _arrow_kind(column: Any) -> str | None:
    """The kind of an Arrow column read from its buffers; None for types pandas decides."""
    import pyarrow as pa

    t = column.type
    text = pa.types.is_string(t) or pa.types.is_large_string(t)
    if pa.types.is_dictionary(t):  # text only: a dictionary of numbers goes through pandas
        value = t.value_type
        return "categorical" if pa.types.is_string(value) or pa.types.is_large_string(value) else None
    if pa.types.is_boolean(t) or text:
        return "categorical"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t):
        return "numeric"
    return None


def _arrow_numpy(column: Any, dtype: str, null: Any) -> Any:
    """A numeric Arrow column (or dictionary indices) as numpy ``dtype``, nulls as
    ``null``, read from its buffers (data and validity bitmap) in the column's own width
    and converted by numpy. pyarrow's ``to_numpy`` and Python scalars import pandas, and
    its casts import ``pyarrow.compute``: together more than a second of a command that
    needs neither."""
    import pyarrow as pa

    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    source = np.dtype(_NUMPY[str(column.type)])
    parts = []
    for c in chunks:
        if not len(c):
            continue
        validity, data = c.buffers()[:2]
        # A read-only view of Arrow's buffer: whoever changes values works on a copy.
        values = np.frombuffer(data, dtype=source, count=len(c), offset=c.offset * source.itemsize)
        if values.dtype != dtype:
            values = values.astype(dtype)
        if c.null_count:
            values = np.where(_bits(validity, c), values, null)
        parts.append(values)
    if len(parts) == 1:
        parts[0].flags.writeable = False  # perhaps the table's own memory
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def _bits(buffer: Any, chunk: Any) -> Any:
    """An Arrow bitmap (validity, or a boolean column's values) as booleans, one per row
    of ``chunk``."""
    bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
    return bits[chunk.offset : chunk.offset + len(chunk)].astype(bool)


def _as_pandas(series: Any) -> Any:
    if not is_arrow(series):
        return series
    import pyarrow as pa

    if pa.types.is_dictionary(series.type):  # as plain values, not a pandas Categorical
        series = series.cast(series.type.value_type)
    return series.to_pandas()


def kind_of(series: Any, codes: tuple[Any, list[str]] | None = None) -> tuple[str, str | None]:
    """``("numeric" | "categorical", note)`` for a pandas Series or an Arrow column, by one
    rule whatever held the values (a CSV read by Arrow, a DataFrame, a Parquet file):

    - booleans are categorical; numbers are numeric;
    - text, and objects of mixed types, are numeric when at least ``NUMERIC_SHARE`` (95%)
      of the values present read as numbers (``float(str(value))``): the rest did not
      parse, and are counted as missing and named in a note; otherwise categorical;
    - a column with no value present is numeric; other types (dates, decimals) as pandas
      infers them.

    ``codes`` are the column's :func:`categorical_codes`, when already at hand."""
    if is_arrow(series):
        kind = _arrow_kind(series)
        if kind == "numeric":
            return kind, None
        if kind == "categorical":
            import pyarrow as pa

            if pa.types.is_boolean(series.type):
                return kind, None
            return _text_kind(*(codes or categorical_codes(series)), None)
        series = series.to_pandas()
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical", None
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric", None
    if isinstance(dtype, pd.CategoricalDtype) and _is_text(series.cat.categories):
        return _text_kind(*(codes or categorical_codes(series)), None)
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal", "empty"):
        return "numeric", None
    if inferred in ("string", "mixed", "mixed-integer"):
        mixed = _type_names(series.dropna()) if inferred.startswith("mixed") else None
        return _text_kind(*(codes or categorical_codes(series)), mixed)
    return "categorical", None


def _type_names(values: Any) -> str:
    seen: dict[str, None] = {}
    for v in values.iloc[:1000]:
        seen.setdefault(type(v).__name__, None)
    return ", ".join(seen)


def _read_number(label: str) -> float | None:
    try:
        return float(label)
    except (ValueError, OverflowError):
        return None


def _text_kind(codes: Any, labels: list[str], mixed: str | None) -> tuple[str, str | None]:
    """The kind of a text (or mixed) column from its distinct values and their counts: the
    most frequent values are read first, and reading stops once too many did not parse
    for the column to be numeric (an id column stops after a twentieth of its rows)."""
    counts = np.bincount(codes[codes >= 0], minlength=len(labels))
    present = int(counts.sum())
    if not present:
        return "numeric", None
    allowed = present * (1 - NUMERIC_SHARE)  # values that may fail to parse
    failed = 0
    for i in np.argsort(-counts, kind="stable"):
        if counts[i] and _read_number(labels[i]) is None:
            failed += int(counts[i])
            if failed > allowed:
                break
    if failed <= allowed:
        return "numeric", None
    if mixed is None:
        return "categorical", None
    numbers = sum(int(c) for c, label in zip(counts, labels, strict=True) if c and _read_number(label) is not None)
    return "categorical", (
        f"mixes types ({mixed}); compared as text, {numbers / present:.0%} of its values "
        "are numbers"
    )


def _text_numbers(codes: Any, labels: list[str]) -> tuple[Any, int, list[str]]:
    """A text column's values read as numbers (NaN where missing or not a number), how
    many did not parse, and a note naming the most frequent of those."""
    parsed = np.full(len(labels) + 1, np.nan)  # the last slot: missing (code -1)
    bad: list[int] = []
    for i, label in enumerate(labels):
        value = _read_number(label)
        if value is None:
            bad.append(i)
        else:
            parsed[i] = value
    values = parsed[codes]  # code -1 takes the last slot
    if not bad:
        return values, 0, []
    counts = np.bincount(codes[codes >= 0], minlength=len(labels))
    invalid = int(counts[bad].sum())
    if not invalid:
        return values, 0, []
    top = sorted(bad, key=lambda i: -counts[i])[:3]
    note = (
        f"{invalid:,} values did not parse as numbers (e.g. "
        f"{', '.join(repr(labels[i]) for i in top)}); counted as missing"
    )
    return values, invalid, [note]


def numeric_values(series: Any, codes: tuple[Any, list[str]] | None = None) -> tuple[Any, int, list[str]]:
    """A column as float64 (NaN where missing), how many of its values did not parse as
    numbers, and a note naming some of them (the rule of :func:`kind_of`)."""
    if is_arrow(series) and _arrow_kind(series) == "numeric":
        import pyarrow as pa

        if pa.types.is_null(series.type):
            return np.full(len(series), np.nan), 0, []
        return _arrow_numpy(series, "float64", float("nan")), 0, []
    if is_arrow(series):
        if str(series.type) == "bool":  # false 0, true 1
            return np.where(_bool_codes(series) < 0, np.nan, _bool_codes(series)), 0, []
    else:
        import pandas as pd

        if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(
            series.dtype
        ):
            return series.to_numpy(dtype=np.float64, na_value=np.nan), 0, []
        if pd.api.types.infer_dtype(series, skipna=True) == "boolean":
            return series.astype("float64").to_numpy(), 0, []
    return _text_numbers(*(codes or categorical_codes(series)))


def column_from_values(arr: Any, invalid: int = 0, notes: list[str] | None = None) -> NumericColumn:
    """A numeric column from float64 values (NaN where missing)."""
    notes = list(notes or [])
    nan = np.isnan(arr)
    inf = np.isinf(arr)
    n_inf = int(inf.sum())
    finite = arr[~(nan | inf)] if n_inf or nan.any() else arr.copy()
    if n_inf:
        notes.append(f"{n_inf:,} infinite values left out of the distribution")
    finite.sort()
    n = len(finite)
    mean = float(finite.mean()) if n else float("nan")
    centred = finite - mean if n > 1 else finite
    return NumericColumn(
        count=len(arr),
        missing=int(nan.sum()),
        inf=n_inf,
        n=n,
        mean=mean,
        std=float(np.sqrt(np.dot(centred, centred) / (n - 1))) if n > 1 else 0.0,
        min=float(finite[0]) if n else float("nan"),
        max=float(finite[-1]) if n else float("nan"),
        values=finite,
        invalid=invalid,
        notes=notes,
    )


def column_from_series(series: Any, kind: str) -> Column:
    """Summarise a pandas Series or an Arrow column as ``kind``."""
    if kind == "numeric":
        return column_from_values(*numeric_values(series))
    if is_arrow(series) and _arrow_kind(series) == "categorical":
        codes, labels = categorical_codes(series)
        return column_from_codes(codes, labels)
    import pandas as pd

    series = _as_pandas(series)
    count = len(series)
    values = series.dropna()
    if pd.api.types.is_bool_dtype(series.dtype):
        text = values.map(lambda b: "true" if b else "false")
    else:
        text = values.map(_text) if values.dtype == object else values.astype(str)
    counts = text.value_counts(sort=False)
    return CategoricalColumn(
        count=count,
        missing=count - len(values),
        counts={str(k): int(v) for k, v in counts.items()},
    )


def categorical_codes(series: Any) -> tuple[Any, list[str]]:
    """Integer codes of a Series' values (-1 for missing) and each code's label, as
    :func:`column_from_series` names categories: so slices of one column can be counted
    with ``numpy.bincount`` instead of summarised again."""
    if is_arrow(series) and _arrow_kind(series) == "categorical":
        return _arrow_codes(series)
    import pandas as pd

    series = _as_pandas(series)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    values = pd.Series(uniques)
    if pd.api.types.is_bool_dtype(series.dtype):
        labels = ["true" if b else "false" for b in values]
    elif values.dtype == object:
        labels = [_text(v) for v in values]
    else:
        labels = [str(v) for v in values.astype(str)]
    return np.asarray(codes), labels


def _arrow_codes(column: Any) -> tuple[Any, list[str]]:
    import pyarrow as pa

    if pa.types.is_boolean(column.type):
        return _bool_codes(column), ["false", "true"]
    if not pa.types.is_dictionary(column.type):
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        column = column.dictionary_encode()
    if isinstance(column, pa.ChunkedArray):  # one dictionary for every chunk
        column = column.unify_dictionaries()
        if not column.num_chunks:
            return np.empty(0, dtype=np.int64), []
        dictionary = column.chunk(0).dictionary
        indices = pa.chunked_array([c.indices for c in column.chunks], column.type.index_type)
    else:
        dictionary, indices = column.dictionary, column.indices
    codes = _arrow_numpy(indices, "int64", -1)
    return codes, [_text(v) for v in dictionary.to_pylist()]


def _bool_codes(column: Any) -> Any:
    """A boolean Arrow column as codes 0 (false), 1 (true), -1 (missing), from its bits."""
    import pyarrow as pa

    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = []
    for c in chunks:
        if not len(c):
            continue
        validity, data = c.buffers()[:2]
        codes = _bits(data, c).astype(np.int64)
        if c.null_count:
            codes[~_bits(validity, c)] = -1
        parts.append(codes)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def column_from_codes(codes: Any, labels: list[str]) -> CategoricalColumn:
    """A categorical column from codes of :func:`categorical_codes` (a slice of them)."""
    counts = np.bincount(codes[codes >= 0], minlength=len(labels))
    merged: dict[str, int] = {}
    for label, c in zip(labels, counts.tolist(), strict=True):
        if c:
            merged[label] = merged.get(label, 0) + int(c)
    return CategoricalColumn(count=len(codes), missing=int((codes < 0).sum()), counts=merged)


class Columns:
    """A table's columns as numpy, each converted once and kept: a report reads one column
    for the whole table, again for each chunk of it and for the multivariate sample."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._kinds: dict[str, tuple[str, str | None]] = {}
        self._numbers: dict[str, tuple[Any, int, list[str]]] = {}
        self._codes: dict[str, tuple[Any, list[str]]] = {}

    def __len__(self) -> int:
        return len(self.table)

    def kind(self, name: str) -> tuple[str, str | None]:
        """:func:`kind_of` the column."""
        if name not in self._kinds:
            column = self.table[name]
            codes = self.codes(name) if _is_text(column) else None
            self._kinds[name] = kind_of(column, codes)
        return self._kinds[name]

    def numbers(self, name: str) -> tuple[Any, int, list[str]]:
        """:func:`numeric_values` of the column (read-only: copy before changing it)."""
        if name not in self._numbers:
            column = self.table[name]
            codes = self.codes(name) if _is_text(column) else None
            self._numbers[name] = numeric_values(column, codes)
        return self._numbers[name]

    def present(self, name: str) -> int:
        """How many values of the column are not missing."""
        column = self.table[name]
        return len(column) - (column.null_count if is_arrow(column) else int(column.isna().sum()))

    def codes(self, name: str) -> tuple[Any, list[str]]:
        """:func:`categorical_codes` of the column."""
        if name not in self._codes:
            self._codes[name] = categorical_codes(self.table[name])
        return self._codes[name]

    def column(self, name: str, kind: str) -> Column:
        """The column summarised as ``kind``, as :func:`column_from_series` does."""
        if kind == "numeric":
            return column_from_values(*self.numbers(name))
        if is_arrow(self.table):
            return column_from_codes(*self.codes(name))
        return column_from_series(self.table[name], kind)


def _is_text(column: Any) -> bool:
    """Text or objects: the typing rule reads its distinct values (:func:`kind_of`)."""
    if is_arrow(column):
        return _arrow_kind(column) == "categorical" and str(column.type) != "bool"
    dtype = column.dtype
    if str(dtype) == "category":
        return _is_text(dtype.categories)
    return str(dtype) in ("object", "string", "str")


def _text(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def column_from_profile(stats: dict[str, Any]) -> Column | None:
    """A column from one entry of a profile's ``columns`` (None for kinds not compared)."""
    kind = stats.get("kind")
    count = int(stats.get("count", 0))
    if kind == "numeric":
        n = int(stats.get("finite", 0))
        quantiles = stats.get("quantiles")
        return NumericColumn(
            count=count,
            missing=int(stats.get("nulls", 0)) + int(stats.get("nan", 0)),
            inf=int(stats.get("inf", 0)),
            n=n if quantiles else 0,
            mean=float(stats.get("mean", float("nan"))),
            std=float(stats.get("std", 0.0)),
            min=float(stats.get("min", float("nan"))),
            max=float(stats.get("max", float("nan"))),
            quantiles=np.asarray(quantiles, dtype=float) if quantiles else None,
        )
    if kind == "categorical":
        top = {str(v): int(c) for v, c in stats.get("top", [])}
        other = int(stats.get("other", 0))
        return CategoricalColumn(
            count=count,
            missing=int(stats.get("nulls", 0)),
            counts=top,
            other=other,
            complete=other == 0 and bool(stats.get("distinct_exact", True)),
            source="profile",
        )
    return None
