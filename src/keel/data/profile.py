"""Column statistics of tabular files, computed while streaming (bounded memory).

For each table: schema, row count, and per column the null count; for numbers
min, max, mean, standard deviation, NaN and infinity counts, 101 quantiles and
a 20-bin histogram (exact up to ``SAMPLE`` values, from a uniform reservoir
sample beyond); for categories (strings, booleans) the top values with counts,
an "other" count and the number of distinct values. The profile is stored as
an object and becomes the reference for drift monitoring.

Files of one folder that share their column names are profiled as one table.
A file that cannot be parsed is named in ``errors``; the data still versions.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from keel.data.tabular import TABULAR_SUFFIXES, is_tabular

__all__ = ["FORMAT", "SAMPLE", "TABULAR_SUFFIXES", "Stopped", "is_tabular", "profile_files"]

FORMAT = "keel.profile/1"
SAMPLE = 100_000
TOP_K = 50
MAX_DISTINCT = 100_000
_BATCH = 65_536


def _batches(path: str) -> Iterator[Any]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        yield from pq.ParquetFile(path).iter_batches(batch_size=_BATCH)
        return
    parse = pacsv.ParseOptions(delimiter="\t" if lower.endswith(".tsv") else ",")
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=8 << 20),
        parse_options=parse,
        convert_options=pacsv.ConvertOptions(
            strings_can_be_null=True
        ),  # "" is missing, as in pandas
    )
    yield from reader


def _columns_of(path: str) -> tuple[str, ...]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return tuple(pq.read_schema(path).names)
    parse = pacsv.ParseOptions(delimiter="\t" if lower.endswith(".tsv") else ",")
    reader = pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(block_size=1 << 20), parse_options=parse
    )
    return tuple(reader.schema.names)


_NUMPY = {
    "int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
    "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
    "halffloat": np.float16, "float": np.float32, "double": np.float64,
}  # fmt: skip


def _numbers(array: Any) -> Any:
    """A null-free numeric Arrow array as float64 numbers. Read from its buffer where it is
    plain numbers: Array.to_numpy imports pandas (a quarter of a second) to look for it."""
    dtype = _NUMPY.get(str(array.type))
    if dtype is None or array.null_count:
        return array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    raw = np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array) + array.offset)
    return raw[array.offset :].astype(np.float64, copy=False)


class _Numeric:
    kind = "numeric"

    def __init__(self, arrow_type: str, seed: int) -> None:
        self.type = arrow_type
        self.count = self.nulls = self.nan = self.inf = 0
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.rng = np.random.default_rng(seed)
        self.sample = np.empty(0)
        self.keys = np.empty(0)
        self.cut = 1.0  # keys are below 1: every one may enter until the sample is full
        self.pool: list[tuple[Any, Any]] = []  # candidates not yet cut back
        self.pooled = 0  # values in the pool

    def update(self, column: Any) -> None:
        self.count += len(column)
        self.nulls += column.null_count
        values = _numbers(column.drop_null() if column.null_count else column)
        finite = np.isfinite(values)
        if not finite.all():
            self.nan += int(np.isnan(values).sum())
            self.inf += int(np.isinf(values).sum())
            values = values[finite]
        if not len(values):
            return
        # Chan et al.: merge this batch's mean and M2 into the running ones.
        n_b = len(values)
        mean_b = float(values.mean())
        m2_b = float(((values - mean_b) ** 2).sum())
        total = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / total
        self.m2 += m2_b + delta * delta * self.n * n_b / total
        self.n = total
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        # Reservoir by random keys: keep the SAMPLE values with the smallest keys. Once
        # SAMPLE are held, only a key below the largest of the SAMPLE smallest can enter,
        # and candidates are pooled until there are twice SAMPLE before they are cut back:
        # the same sample as cutting every batch, with a fraction of the work.
        keys = self.rng.random(n_b)
        if self.cut < 1.0:
            enter = keys < self.cut
            values, keys = values[enter], keys[enter]
        self.pool.append((values, keys))
        self.pooled += len(keys)
        if self.pooled > 2 * SAMPLE or (self.cut == 1.0 and self.pooled >= SAMPLE):
            self._cut_back()

    def _cut_back(self) -> None:
        """The pool down to the SAMPLE values with the smallest keys (all, if fewer)."""
        if not self.pool:
            return
        sample = np.concatenate([self.sample, *(v for v, _ in self.pool)])
        allkeys = np.concatenate([self.keys, *(k for _, k in self.pool)])
        self.pool, self.pooled = [], 0
        if len(sample) > SAMPLE:
            keep = np.argpartition(allkeys, SAMPLE)[:SAMPLE]
            sample, allkeys = sample[keep], allkeys[keep]
        if len(sample) == SAMPLE:
            self.cut = float(allkeys.max())
        self.sample, self.keys = sample, allkeys

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "type": self.type,
            "count": self.count,
            "nulls": self.nulls,
            "nan": self.nan,
            "inf": self.inf,
            "finite": self.n,
        }
        if self.n == 0:
            return out
        self._cut_back()
        std = float(np.sqrt(self.m2 / (self.n - 1))) if self.n > 1 else 0.0
        ordered = np.sort(self.sample)
        qs = _percentiles(ordered)
        lo, hi = self.min, self.max
        counts, edges = _histogram(ordered, lo, hi)
        scale = self.n / len(self.sample)
        out.update(
            min=lo,
            max=hi,
            mean=self.mean,
            std=std,
            quantiles=[float(q) for q in qs],
            histogram={
                "edges": [float(e) for e in edges],
                "counts": [round(float(c) * scale, 3) for c in counts],
            },
            sample_size=len(self.sample),
            exact=len(self.sample) == self.n,
        )
        return out


class _Categorical:
    kind = "categorical"

    def __init__(self, arrow_type: str) -> None:
        self.type = arrow_type
        self.count = self.nulls = 0
        self.counts: Counter[str] = Counter()
        self.dropped = 0  # values of categories beyond MAX_DISTINCT

    def update(self, column: Any) -> None:
        import pyarrow.compute as pc

        self.count += len(column)
        self.nulls += column.null_count
        vc = pc.value_counts(column.drop_null())
        for value, n in zip(
            vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True
        ):
            key = str(value).lower() if isinstance(value, bool) else str(value)
            if key in self.counts or len(self.counts) < MAX_DISTINCT:
                self.counts[key] += n
            else:
                self.dropped += n

    def result(self) -> dict[str, Any]:
        top = self.counts.most_common(TOP_K)
        shown = sum(n for _, n in top)
        return {
            "kind": self.kind,
            "type": self.type,
            "count": self.count,
            "nulls": self.nulls,
            "distinct": len(self.counts),
            "distinct_exact": self.dropped == 0,
            "top": [[v, n] for v, n in top],
            "other": self.count - self.nulls - shown,
        }


class _Other:
    kind = "other"

    def __init__(self, arrow_type: str) -> None:
        self.type = arrow_type
        self.count = self.nulls = 0
        self.min: Any = None
        self.max: Any = None

    def update(self, column: Any) -> None:
        import pyarrow.compute as pc

        self.count += len(column)
        self.nulls += column.null_count
        try:
            mm = pc.min_max(column).as_py()
        except Exception:  # noqa: BLE001 - not orderable (lists, structs): count only
            return
        if mm["min"] is not None:
            self.min = mm["min"] if self.min is None else min(self.min, mm["min"])
            self.max = mm["max"] if self.max is None else max(self.max, mm["max"])

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "type": self.type,
            "count": self.count,
            "nulls": self.nulls,
        }
        if self.min is not None:
            out.update(min=str(self.min), max=str(self.max))
        return out


def _accumulator(arrow_type: Any, seed: int) -> _Numeric | _Categorical | _Other:
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    name = str(arrow_type)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return _Numeric(name, seed)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t):
        return _Categorical(name)
    return _Other(name)


_PERCENT = np.linspace(0, 1, 101)


def _histogram(ordered: Any, lo: float, hi: float) -> tuple[Any, Any]:
    """``np.histogram(ordered, bins=20, range=(lo, hi))``, to the count, for sorted values
    within [lo, hi]: the same edges, and each bin's count found by bisection instead of
    binning every value (a wide table has a thousand columns)."""
    if not hi > lo:  # one value: numpy widens the range by half a unit either way
        return np.histogram(ordered, bins=20)
    edges = np.linspace(lo, hi, 21)
    # bin i holds edges[i] <= x < edges[i + 1], the last one closed: as numpy bins them
    below = np.searchsorted(ordered, edges[1:-1], side="left")
    bounds = np.concatenate(([0], below, [len(ordered)]))
    return np.diff(bounds), edges


def _percentiles(ordered: Any) -> Any:
    """``np.quantile(values, np.linspace(0, 1, 101))`` (its linear method, to the bit) of
    sorted values: one sort instead of a partition per quantile."""
    h = (len(ordered) - 1) * _PERCENT
    below = np.floor(h).astype(np.intp)
    above = np.minimum(below + 1, len(ordered) - 1)
    t = h - below
    a, b = ordered[below], ordered[above]
    diff = b - a
    out = np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)
    return np.where(a == b, a, out)


class Stopped(Exception):
    """The profile was no longer wanted (``stop`` was set): nothing is returned."""


def _profile_table(
    name: str,
    paths: list[tuple[str, str]],
    tables: dict[str, Any] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    accs: dict[str, _Numeric | _Categorical | _Other] = {}
    rows = 0
    for _, path in paths:
        held = (tables or {}).get(path)
        batches = (
            _batches(path)
            if held is None  # in memory already: the same batches as read back, without reading
            else held.combine_chunks().to_batches(max_chunksize=_BATCH)
        )
        for batch in batches:
            rows += batch.num_rows
            for i, field in enumerate(batch.schema):
                if stop is not None and stop.is_set():
                    raise Stopped
                acc = accs.get(field.name)
                if acc is None:
                    acc = accs[field.name] = _accumulator(field.type, seed=len(accs))
                column = batch.column(i)
                if isinstance(acc, _Numeric) and not _numeric_type(column.type):
                    raise ValueError(
                        f"column {field.name!r} is {acc.type} in one file and {column.type} in another"
                    )
                acc.update(column)
    return {
        "name": name,
        "files": [rel for rel, _ in paths],
        "rows": rows,
        "columns": {col: _result(acc, stop) for col, acc in accs.items()},
        "order": list(accs),  # the file's column order (the stored document sorts its keys)
    }


def _result(acc: _Numeric | _Categorical | _Other, stop: threading.Event | None) -> dict[str, Any]:
    if stop is not None and stop.is_set():
        raise Stopped
    return acc.result()


def _numeric_type(t: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def profile_files(
    files: list[tuple[str, str]],
    tables: dict[str, Any] | None = None,
    stop: threading.Event | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    """Profile tabular files given as (tree path, file path); ``tables`` holds the rows of
    some of them (file path → pyarrow table) already in memory: those files are not read,
    and need not exist yet. Setting ``stop`` (from another thread) ends it with Stopped.

    Returns (profile, None), or (profile-or-None, reason) when some or all
    files could not be parsed. Files under one folder with the same column
    names form one table.
    """
    tabular = [(rel, path) for rel, path in files if is_tabular(rel)]
    if not tabular:
        return None, None
    groups: dict[tuple[str, tuple[str, ...]], list[tuple[str, str]]] = {}
    errors: list[dict[str, str]] = []
    for rel, path in tabular:
        held = (tables or {}).get(path)
        try:  # rows in memory: their columns, without the file (it may not be written yet)
            cols = tuple(held.column_names) if held is not None else _columns_of(path)
        except Exception as exc:  # noqa: BLE001 - any parse failure is reported, not raised
            errors.append({"file": rel, "error": _reason(exc)})
            continue
        folder = os.path.dirname(rel)
        groups.setdefault((folder, cols), []).append((rel, path))
    profiled = []
    for (folder, _cols), members in sorted(groups.items()):
        name = members[0][0] if len(members) == 1 else (folder or ".") + "/"
        try:
            profiled.append(_profile_table(name, members, tables, stop))
        except Stopped:
            raise
        except Exception as exc:  # noqa: BLE001 - any parse failure is reported, not raised
            errors.append({"file": name, "error": _reason(exc)})
    profile = {"format": FORMAT, "tables": profiled, "errors": errors}
    if errors:
        reason = "; ".join(f"{e['file']}: {e['error']}" for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return (profile if profiled else None), f"could not profile {reason}{more}"
    return profile, None


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
