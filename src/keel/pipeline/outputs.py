"""A step's output as an object, and back: in the safest format that holds it.

- a pandas DataFrame or an Arrow table: Parquet (the frame's index kept);
- a numpy array of numbers: ``.npy`` without pickled objects;
- ``None``, booleans, numbers, text, and lists and dicts of them: canonical JSON;
- anything else (a fitted model, a tuple of frames): pickle, the recorded fallback.
  Objects are verified against their digest when read, so a pickle is loaded only
  from the exact bytes keel wrote.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

__all__ = ["FORMATS", "decode", "encode"]

FORMATS = ("parquet", "arrow", "npy", "json", "pickle")


def _json(value: Any) -> bytes | None:
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    # JSON keeps only what reads back equal: not tuples, not non-text keys.
    return text.encode() if json.loads(text) == value and _plain(value) else None


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def encode(value: Any) -> tuple[str, bytes]:
    """``(format, bytes)`` of ``value``."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, pd.DataFrame) and value.columns.is_unique:
        try:
            out = io.BytesIO()
            value.to_parquet(out)
            return "parquet", out.getvalue()
        except (ValueError, TypeError, ImportError):
            pass  # columns Parquet cannot hold: the fallback below
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(value, pa.Table):
        import pyarrow.parquet as pq

        out = io.BytesIO()
        pq.write_table(value, out)
        return "arrow", out.getvalue()
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray) and value.dtype.kind in "biufcmM":
        out = io.BytesIO()
        np.save(out, value, allow_pickle=False)
        return "npy", out.getvalue()
    as_json = _json(value)
    if as_json is not None:
        return "json", as_json
    import pickle

    return "pickle", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def decode(fmt: str, data: bytes) -> Any:
    """The value ``encode`` made ``data`` from."""
    if fmt == "parquet":
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))
    if fmt == "arrow":
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data))
    if fmt == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if fmt == "json":
        return json.loads(data)
    if fmt == "pickle":
        import pickle

        return pickle.loads(data)  # noqa: S301 - keel's own bytes, verified by digest
    raise ValueError(f"unknown output format {fmt!r}")
