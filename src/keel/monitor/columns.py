"""One column on one side of a comparison, summarised from a table or from a stored profile.

A numeric column answers ``cdf(points)`` and ``quantile(levels)``: exactly from
its sorted values when it comes from a table, by linear interpolation between
the 101 stored quantiles when it comes from a profile. A categorical column
holds its counts per category (all of them from a table; the top 50 and an
"other" count from a profile). Every detector works on these two shapes, so
the same detector judges a table against a table or a profile against a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "CategoricalColumn",
    "Column",
    "NumericColumn",
    "categorical_codes",
    "column_from_codes",
    "column_from_profile",
    "column_from_series",
    "kind_of",
]

# How many quantile points stand for a numeric column from a table.
GRID = 1001
# An object column whose non-null values are numbers at least this often is read as numbers.
NUMERIC_SHARE = 0.95


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
        if self.values is not None:
            return np.unique(self.quantile(np.linspace(0.0, 1.0, GRID)))
        return np.unique(np.asarray(self.quantiles, dtype=float))

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


def kind_of(series: Any) -> tuple[str, str | None]:
    """``("numeric" | "categorical", note)`` for a pandas Series."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical", None
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric", None
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "numeric", None
    if inferred in ("empty",):
        return "numeric", None
    if inferred.startswith("mixed"):
        values = series.dropna()
        numbers = pd.to_numeric(values, errors="coerce")
        share = float(numbers.notna().mean()) if len(values) else 0.0
        if share >= NUMERIC_SHARE:
            return "numeric", None
        return "categorical", (
            f"mixes types ({_type_names(values)}); compared as text, "
            f"{share:.0%} of its values are numbers"
        )
    return "categorical", None


def _type_names(values: Any) -> str:
    seen: dict[str, None] = {}
    for v in values.iloc[:1000]:
        seen.setdefault(type(v).__name__, None)
    return ", ".join(seen)


def column_from_series(series: Any, kind: str) -> Column:
    """Summarise a pandas Series as ``kind``."""
    import pandas as pd

    count = len(series)
    if kind == "numeric":
        notes: list[str] = []
        invalid = 0
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype
        ):
            arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            nonnull = int(series.notna().sum())
            coerced = pd.to_numeric(series, errors="coerce")
            arr = coerced.to_numpy(dtype=np.float64, na_value=np.nan)
            invalid = nonnull - int(np.count_nonzero(~np.isnan(arr)))
            if invalid:
                bad = series[series.notna() & coerced.isna()].iloc[:3].tolist()
                notes.append(
                    f"{invalid:,} values are not numbers (e.g. {', '.join(map(repr, bad))}); "
                    "counted as missing"
                )
        nan = np.isnan(arr)
        inf = np.isinf(arr)
        n_inf = int(inf.sum())
        finite = arr[~(nan | inf)]
        if n_inf:
            notes.append(f"{n_inf:,} infinite values left out of the distribution")
        finite.sort()
        n = len(finite)
        return NumericColumn(
            count=count,
            missing=int(nan.sum()),
            inf=n_inf,
            n=n,
            mean=float(finite.mean()) if n else float("nan"),
            std=float(finite.std(ddof=1)) if n > 1 else 0.0,
            min=float(finite[0]) if n else float("nan"),
            max=float(finite[-1]) if n else float("nan"),
            values=finite,
            invalid=invalid,
            notes=notes,
        )
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
    import pandas as pd

    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    values = pd.Series(uniques)
    if pd.api.types.is_bool_dtype(series.dtype):
        labels = ["true" if b else "false" for b in values]
    elif values.dtype == object:
        labels = [_text(v) for v in values]
    else:
        labels = [str(v) for v in values.astype(str)]
    return np.asarray(codes), labels


def column_from_codes(codes: Any, labels: list[str]) -> CategoricalColumn:
    """A categorical column from codes of :func:`categorical_codes` (a slice of them)."""
    counts = np.bincount(codes[codes >= 0], minlength=len(labels))
    merged: dict[str, int] = {}
    for label, c in zip(labels, counts.tolist(), strict=True):
        if c:
            merged[label] = merged.get(label, 0) + int(c)
    return CategoricalColumn(count=len(codes), missing=int((codes < 0).sum()), counts=merged)


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
