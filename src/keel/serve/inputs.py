"""Request bodies to model inputs: parse, check against the signature, build the frame.

The server's fast path for JSON values: one pass over the records (or
columns) checks each value against its column's type and nullability and
collects one problem per bad field, naming the row and the column; then one
DataFrame is built with the dtypes :meth:`Signature.enforce` would give, so
a model sees online exactly what it saw offline.

>>> from keel.registry.signature import ColumnSpec, Signature
>>> sig = Signature(columns=(ColumnSpec("tenure", "integer"), ColumnSpec("plan", "string")))
>>> batch = parse_inputs({"inputs": [{"tenure": 3, "plan": "pro"}]}, sig, max_rows=10)
>>> batch.rows, batch.columns["tenure"]
(1, [3])
>>> parse_inputs({"inputs": [{"tenure": "3", "plan": "pro"}]}, sig, max_rows=10)
Traceback (most recent call last):
...
keel.registry.signature.SignatureError: input does not match the model's signature: inputs[0].tenure: expected integer, got '3'
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.registry.signature import SignatureError, parse_datetimes

if TYPE_CHECKING:
    from keel.registry.signature import Signature

__all__ = ["Batch", "MalformedBody", "TooLarge", "decode_json", "parse_inputs"]

MAX_PROBLEMS = 20


class MalformedBody(InvalidInput):
    """The body is not JSON, or not the shape the route takes."""


class TooLarge(InvalidInput):
    """A body over the byte limit or a batch over the row limit."""

    http_status = 413


@dataclass
class Batch:
    """Checked inputs: columns of plain values (what is logged), the frame the model gets."""

    columns: dict[str, list[Any]]
    rows: int
    frame: Any = None  # pandas DataFrame or numpy array, built on demand
    tensor: bool = False
    riders: tuple[str, ...] = ()  # fields outside the signature: logged, never given to the model


def decode_json(body: bytes) -> Any:
    """JSON from bytes; NaN and Infinity literals are read (so the signature can refuse them)."""
    import orjson

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        import json

        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedBody(f"the body is not valid JSON: {exc}") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_MAX_FLOAT_INT = int(sys.float_info.max)  # a larger JSON integer cannot become a float


def _check(kind: str, nullable: bool, v: Any) -> tuple[bool, Any]:
    """(ok, converted value) for one JSON value against a column type."""
    if v is None:
        return nullable, None
    if kind == "float":
        if isinstance(v, float):  # Infinity is never a feature value: models raise on it
            return (math.isfinite(v) or (nullable and math.isnan(v))), v
        if isinstance(v, int) and not isinstance(v, bool):
            return abs(v) <= _MAX_FLOAT_INT, float(v) if abs(v) <= _MAX_FLOAT_INT else v
        return False, v
    if kind == "integer":
        if isinstance(v, int) and not isinstance(v, bool):
            return -(2**63) <= v < 2**63, v
        if isinstance(v, float) and math.isfinite(v) and v.is_integer() and abs(v) < 2.0**63:
            return True, int(v)
        return False, v
    if kind == "string":
        return isinstance(v, str), v
    if kind == "boolean":
        return isinstance(v, bool), v
    if isinstance(v, str):  # datetime
        try:
            datetime.fromisoformat(v)
        except ValueError:
            return False, v
        return True, v
    return False, v


def _problem(
    row: int | None, column: str, expected: str, value: Any, missing: bool = False
) -> dict[str, Any]:
    where = f"inputs[{row}].{column}" if row is not None else f"inputs.{column}"
    if missing:
        message = f"{where}: missing ({expected})"
    elif value is None or (isinstance(value, float) and math.isnan(value)):
        message = f"{where}: may not be null or NaN (expected {expected})"
    else:
        message = f"{where}: expected {expected}, got {_shown(value)}"
    return {"field": column, "row": row, "expected": expected, "message": message}


def _records_to_columns(
    records: list[Any], names: list[str]
) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    problems: list[dict[str, Any]] = []
    columns: dict[str, list[Any]] = {n: [] for n in names}
    known = set(names)
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            problems.append(
                {
                    "field": None,
                    "row": i,
                    "message": f"inputs[{i}]: expected an object (one record), got {_shown(rec)}",
                }
            )
            for n in names:
                columns[n].append(_SKIP)
            continue
        if len(rec) != len(known) or not known.issuperset(rec):
            for extra in rec.keys() - known:
                problems.append(
                    {
                        "field": extra,
                        "row": i,
                        "message": f"inputs[{i}]: unexpected field {extra!r}",
                    }
                )
        for n in names:
            columns[n].append(rec.get(n, _MISSING))
        if len(problems) >= MAX_PROBLEMS:
            break
    return columns, problems


_MISSING = object()
_SKIP = object()


def _columns_of(
    payload: Any, names: list[str] | None
) -> tuple[dict[str, list[Any]], int, list[dict[str, Any]]]:
    """Columns from records, a dict of columns or one record (a dict of scalars), and the
    problems of the records' shape (extra fields, rows that are not objects)."""
    if isinstance(payload, list):
        if names is None:
            names = list(dict.fromkeys(k for r in payload if isinstance(r, dict) for k in r))
        columns, problems = _records_to_columns(payload, names)
        return columns, len(payload), problems
    if isinstance(payload, dict):
        if payload and all(isinstance(v, list) for v in payload.values()):
            lengths = {len(v) for v in payload.values()}
            if len(lengths) > 1:
                raise SignatureError(
                    [
                        {
                            "field": None,
                            "row": None,
                            "message": f"inputs: columns have different lengths {sorted(lengths)}",
                        }
                    ]
                )
            n = lengths.pop()
            if names is not None:
                extra = [k for k in payload if k not in set(names)]
                if extra:
                    raise SignatureError(
                        [
                            {"field": k, "row": None, "message": f"inputs: unexpected field {k!r}"}
                            for k in extra
                        ]
                    )
                return {k: payload.get(k, [_MISSING] * n) for k in names}, n, []
            return dict(payload), n, []
        if any(isinstance(v, list | dict) for v in payload.values()):
            raise MalformedBody(
                "inputs: expected a list of records, a dict of equal-length columns or one record"
            )
        return _columns_of([payload], names)
    raise MalformedBody(
        f"inputs: expected a list of records or a dict of columns, got {type(payload).__name__}"
    )


def parse_inputs(
    doc: Any,
    sig: Signature | None,
    *,
    max_rows: int,
    key: str | None = None,
    extras: Sequence[str] = (),
) -> Batch:
    """Check ``doc["inputs"]`` against ``sig``.

    ``extras`` (fields the server was told to accept, such as a customer id) and ``key``
    (the live deployment's sticky routing field, which every row must have) may ride along
    outside the signature: they are kept in ``columns`` and logged, never given to the model.
    """
    if not isinstance(doc, dict) or "inputs" not in doc:
        raise MalformedBody(
            'expected a JSON object with "inputs": a list of records or a dict of columns'
        )
    unknown = set(doc) - {"inputs", "id", "parameters"}
    if unknown:
        raise MalformedBody(
            f'unexpected top-level field {sorted(unknown)[0]!r}; expected "inputs" (and optionally "id")'
        )
    payload = doc["inputs"]
    if sig is not None and sig.is_tensor:
        return _tensor(payload, sig, max_rows)
    names = [c.name for c in sig.columns] if sig is not None else None
    riders: tuple[str, ...] = ()
    if names is not None:
        riders = tuple(dict.fromkeys(f for f in (*extras, key) if f is not None and f not in names))
        names = [*names, *riders]
    columns, n, problems = _columns_of(payload, names)
    if n == 0:
        raise SignatureError(
            [
                {
                    "field": None,
                    "row": None,
                    "message": "inputs: the batch is empty; send at least one row",
                }
            ]
        )
    if n > max_rows:
        raise TooLarge(f"inputs: {n} rows is over the limit of {max_rows} rows per request")
    if sig is None:
        if problems:
            raise SignatureError(problems)
        return Batch(columns, n, riders=tuple(f for f in (*extras, key) if f is not None))
    for spec in sig.columns:
        values = columns[spec.name]
        kind, nullable = spec.type, spec.nullable
        for i, v in enumerate(values):
            if v is _SKIP:
                continue  # a row that is not an object: already a problem
            if v is _MISSING:
                problems.append(
                    _problem(
                        i if n > 1 or isinstance(payload, list) else None,
                        spec.name,
                        spec.type,
                        None,
                        missing=True,
                    )
                )
                break
            ok, converted = _check(kind, nullable, v)
            if not ok:
                problems.append(_problem(i, spec.name, spec.type, v))
                break
            if converted is not v:
                values[i] = converted
        if len(problems) >= MAX_PROBLEMS:
            break
    for rider in riders:
        values = columns[rider]
        for i, v in enumerate(values):
            if v is _MISSING:
                values[i] = None
            elif isinstance(v, list | dict):
                problems.append(
                    {
                        "field": rider,
                        "row": i,
                        "message": f"inputs[{i}].{rider}: expected a single value",
                    }
                )
                break
    if key is not None and key in riders:
        missing = [i for i, v in enumerate(columns[key]) if v is _MISSING or v is None]
        if missing:
            problems.append(
                {
                    "field": key,
                    "row": missing[0],
                    "reason": "missing_key",
                    "message": f"inputs[{missing[0]}].{key}: the sticky routing key is missing "
                    "(a live deployment routes by it)",
                }
            )
    if problems:
        raise SignatureError(problems)
    return Batch(columns, n, riders=riders)


def to_frame(batch: Batch, sig: Signature | None) -> Any:
    """The model's input: a DataFrame with the signature's dtypes (or the checked array)."""
    if batch.frame is not None:
        return batch.frame
    import pandas as pd

    if sig is None:
        batch.frame = pd.DataFrame(
            {k: v for k, v in batch.columns.items() if k not in batch.riders}
        )
        return batch.frame
    import numpy as np

    data: dict[str, Any] = {}
    for spec in sig.columns:
        values = batch.columns[spec.name]
        nulls = spec.nullable and any(v is None for v in values)
        if spec.type == "integer":
            data[spec.name] = (
                pd.array(values, dtype="Int64") if nulls else np.array(values, np.int64)
            )
        elif spec.type == "float":
            data[spec.name] = np.array(
                [math.nan if v is None else v for v in values] if nulls else values, np.float64
            )
        elif spec.type == "datetime":
            data[spec.name] = parse_datetimes(pd.Series(values, dtype=object))
        elif spec.type == "string":
            column = np.empty(len(values), dtype=object)
            column[:] = values
            data[spec.name] = column
        else:
            data[spec.name] = pd.array(values, dtype="boolean") if nulls else np.array(values, bool)
    batch.frame = pd.DataFrame(data)
    return batch.frame


def _tensor(payload: Any, sig: Signature, max_rows: int) -> Batch:
    import numpy as np

    if not isinstance(payload, list):
        raise MalformedBody(
            f"inputs: expected a list of rows (a 2-D array of width {sig.tensor_width})"
        )
    if len(payload) > max_rows:
        raise TooLarge(
            f"inputs: {len(payload)} rows is over the limit of {max_rows} rows per request"
        )
    array = sig.enforce(payload)
    cols = {f"x{j}": array[:, j].tolist() for j in range(array.shape[1])}
    return Batch(cols, int(array.shape[0]), frame=np.asarray(array), tensor=True)
