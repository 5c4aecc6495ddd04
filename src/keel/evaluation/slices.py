"""Slices: segments of the evaluation data, by column or by a small boolean expression.

``region`` (one slice per value, or per quartile for numbers),
``tenure < 12``, ``plan = "pro" and region != south``. Expressions are parsed
here (never evaluated as code): comparisons of a column with a literal,
joined by ``and`` / ``or``.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from keel.errors import InvalidInput

__all__ = ["SliceError", "slice_masks"]


class SliceError(InvalidInput):
    """A slice that does not parse or names a missing column."""


_TOKEN = re.compile(
    r"""\s*(?:(?P<num>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)|(?P<str>"[^"]*"|'[^']*')|(?P<op><=|>=|!=|==|=|<|>)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"""
)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SliceError(
                f"slice {text!r}: unexpected {text[pos:].strip()[:10]!r} at column {pos + 1}"
            )
        kind = m.lastgroup or ""
        raw = m.group(kind)
        if kind == "num":
            out.append(("value", float(raw)))
        elif kind == "str":
            out.append(("value", raw[1:-1]))
        elif kind == "op":
            out.append(("op", "=" if raw == "==" else raw))
        elif raw.lower() in ("and", "or"):
            out.append(("join", raw.lower()))
        else:
            out.append(("word", raw))
        pos = m.end()
    return out


def _compare(df: Any, column: str, op: str, value: Any, text: str) -> Any:
    import pandas as pd

    if column not in df.columns:
        raise SliceError(f"slice {text!r} names column {column!r}, which the data does not have")
    series = df[column]
    if isinstance(value, str) and pd.api.types.is_numeric_dtype(series.dtype):
        try:
            value = float(value)
        except ValueError:
            raise SliceError(f"slice {text!r}: {column} is numeric, {value!r} is not") from None
    ops = {"=": series == value, "!=": series != value}
    if op in ops:
        return ops[op]
    if not pd.api.types.is_numeric_dtype(series.dtype) or isinstance(value, str):
        raise SliceError(f"slice {text!r}: {op} needs a numeric column and a number")
    return {"<": series < value, "<=": series <= value, ">": series > value, ">=": series >= value}[
        op
    ]


def _expression(df: Any, text: str) -> Any:
    """``A and B or C and D`` is ``(A and B) or (C and D)``: and binds tighter, as usual."""
    toks = _tokens(text)
    if not toks:
        raise SliceError("empty slice: expected a column name or COLUMN OP VALUE")
    result: Any = None  # OR of the AND-groups seen so far
    group: Any = None  # the AND-group being built
    i = 0
    while True:
        if i + 2 >= len(toks):
            raise SliceError(f"slice {text!r}: expected COLUMN OP VALUE, like `tenure < 12`")
        (k1, col), (k2, op), (k3, val) = toks[i], toks[i + 1], toks[i + 2]
        if k1 != "word" or k2 != "op" or k3 not in ("value", "word"):
            raise SliceError(f"slice {text!r}: expected COLUMN OP VALUE, like `tenure < 12`")
        part = _compare(df, col, op, val, text)
        group = part if group is None else group & part
        i += 3
        if i == len(toks):
            break
        if toks[i][0] != "join":
            raise SliceError(f"slice {text!r}: expected 'and' or 'or' after a comparison")
        if toks[i][1] == "or":
            result = group if result is None else result | group
            group = None
        i += 1
        if i >= len(toks):
            raise SliceError(f"slice {text!r}: nothing after {toks[i - 1][1]!r}")
    result = group if result is None else result | group
    return result.to_numpy()


def slice_masks(df: Any, spec: str) -> dict[str, Any]:
    """Boolean masks for one slice spec: {slice name: mask}."""
    import numpy as np
    import pandas as pd

    text = spec.strip()
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", text):
        if text not in df.columns:
            raise SliceError(f"slice {text!r}: the data has no column {text!r}")
        series = df[text]
        if pd.api.types.is_numeric_dtype(series.dtype) and series.nunique() > 12:
            edges = np.unique(np.quantile(series.dropna(), [0, 0.25, 0.5, 0.75, 1.0]))
            out = {}
            for lo, hi in itertools.pairwise(edges):
                last = hi == edges[-1]
                mask = (series >= lo) & ((series <= hi) if last else (series < hi))
                out[f"{text} in [{lo:g}, {hi:g}{']' if last else ')'}"] = mask.to_numpy()
            return out
        return {
            f"{text}={v}": (series == v).to_numpy()
            for v in sorted(series.dropna().unique(), key=str)
        }
    return {text: _expression(df, text)}
