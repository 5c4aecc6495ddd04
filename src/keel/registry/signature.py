"""Model signatures: what a model takes and returns, inferred from an example, enforced at predict.

Tabular models take named columns with a type (integer, float, boolean,
string, datetime) and a nullability; array models take a 2-D tensor of a
dtype and width. Enforcement converts what is safe (an integer column given
as floats that are whole numbers, a list of dicts to a DataFrame) and refuses
the rest with one problem per bad field, naming the column and the expectation.

>>> import pandas as pd
>>> sig = infer_signature(pd.DataFrame({"tenure": [3, 10], "plan": ["pro", "basic"]}))
>>> [(c.name, c.type) for c in sig.columns]
[('tenure', 'integer'), ('plan', 'string')]
>>> sig.enforce([{"tenure": "three", "plan": "pro"}])
Traceback (most recent call last):
...
keel.registry.signature.SignatureError: input does not match the model's signature: column 'tenure' expects integer, got 'three'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keel.errors import InvalidInput, listed

__all__ = [
    "ColumnSpec",
    "DroppedColumnsWarning",
    "Signature",
    "SignatureError",
    "infer_signature",
    "parse_datetimes",
    "to_frame",
]

TYPES = ("integer", "float", "boolean", "string", "datetime")


class DroppedColumnsWarning(UserWarning):
    """Input columns the model's signature does not name were dropped before predicting
    (``strict=True`` refuses them instead)."""


class SignatureError(InvalidInput):
    """Inputs that do not match the signature; ``problems`` lists each bad field."""

    http_status = 422

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        text = "; ".join(p["message"] for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"input does not match the model's signature: {text}{more}")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    nullable: bool = False


@dataclass(frozen=True)
class Signature:
    """Inputs (named columns, or a tensor) and outputs of a model."""

    columns: tuple[ColumnSpec, ...] = ()
    tensor_dtype: str | None = None
    tensor_width: int | None = None
    output: dict[str, Any] = field(default_factory=dict)
    # a model trained on a training set: the feature views (versions) and entity keys its
    # columns come from, so ``keel serve`` looks them up (keel.features.online_table)
    features: dict[str, Any] | None = None

    @property
    def is_tensor(self) -> bool:
        return self.tensor_dtype is not None

    def to_dict(self) -> dict[str, Any]:
        if self.is_tensor:
            inputs: dict[str, Any] = {
                "tensor": {"dtype": self.tensor_dtype, "width": self.tensor_width}
            }
        else:
            inputs = {
                "columns": [
                    {"name": c.name, "type": c.type, "nullable": c.nullable} for c in self.columns
                ]
            }
        doc: dict[str, Any] = {"inputs": inputs, "output": self.output}
        if self.features:
            doc["features"] = self.features
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Signature:
        inputs = doc.get("inputs", {})
        if "tensor" in inputs:
            t = inputs["tensor"]
            return cls(
                tensor_dtype=t["dtype"], tensor_width=t["width"], output=doc.get("output", {})
            )
        columns = tuple(
            ColumnSpec(c["name"], c["type"], bool(c.get("nullable")))
            for c in inputs.get("columns", [])
        )
        return cls(columns=columns, output=doc.get("output", {}), features=doc.get("features"))

    def describe(self, limit: int = 12) -> str:
        """The inputs in one line, for error messages.

        >>> Signature(columns=(ColumnSpec("x", "float"), ColumnSpec("plan", "string", True))).describe()
        'x float, plan string (nullable)'
        """
        if self.is_tensor:
            return f"a {self.tensor_dtype} tensor of width {self.tensor_width}"
        shown = [f"{c.name} {c.type}{' (nullable)' if c.nullable else ''}" for c in self.columns]
        more = f", … ({len(shown) - limit} more)" if len(shown) > limit else ""
        return ", ".join(shown[:limit]) + more

    def enforce(self, inputs: Any, strict: bool = False) -> Any:
        """Check and convert ``inputs``; returns a DataFrame (columns) or an ndarray (tensor).
        Columns the signature does not name are dropped with a DroppedColumnsWarning, or
        refused when ``strict``."""
        if self.is_tensor:
            return _enforce_tensor(self, inputs)
        return _enforce_columns(self, inputs, strict)


def to_frame(inputs: Any) -> Any:
    """A DataFrame from a DataFrame, a list of dicts (records), a dict of lists (columns) or
    one record (a dict of scalars)."""
    import numpy as np
    import pandas as pd

    if isinstance(inputs, pd.DataFrame):
        return inputs
    if isinstance(inputs, dict):
        if inputs and not any(
            isinstance(v, list | tuple | np.ndarray | pd.Series) for v in inputs.values()
        ):
            return pd.DataFrame.from_records([inputs])  # one record, given as a dict of scalars
        lengths = {len(v) for v in inputs.values() if isinstance(v, list | tuple)}
        if len(lengths) > 1:
            raise SignatureError([{"field": None, "message": "columns have different lengths"}])
        return pd.DataFrame(inputs)
    if isinstance(inputs, list | tuple):
        if not all(isinstance(r, dict) for r in inputs):
            raise SignatureError(
                [{"field": None, "message": "expected a list of records (objects), one per row"}]
            )
        return pd.DataFrame.from_records(list(inputs))
    raise SignatureError(
        [
            {
                "field": None,
                "message": f"expected a DataFrame, a list of records or a dict of columns, not {type(inputs).__name__}",
            }
        ]
    )


def parse_datetimes(series: Any) -> Any:
    """Times from text: ISO 8601 in any mix of precisions first (fast), then each value on its
    own for the rest (slow, rare); what parses as neither is NaT. Mixed zones compare in UTC."""
    import pandas as pd

    def convert(fmt: str) -> Any:
        try:
            return pd.to_datetime(series, errors="coerce", format=fmt)
        except (ValueError, TypeError):  # mixed time zones (or aware and naive)
            return pd.to_datetime(series, errors="coerce", format=fmt, utc=True)

    converted = convert("ISO8601")
    if (converted.isna() & series.notna()).any():
        converted = convert("mixed")
    return converted


def _column_type(series: Any) -> str:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        non_null = series.dropna()
        if (
            len(non_null)
            and (non_null % 1 == 0).all()
            and (non_null.abs() < 2.0**63).all()
            and series.isna().any()
        ):
            return "integer"  # integers with gaps come back from pandas as floats
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    present = series.dropna()
    if len(present) and present.map(lambda v: isinstance(v, bool)).all():
        return "boolean"  # booleans with gaps come back from pandas as objects
    return "string"


def infer_signature(
    example: Any,
    predictions: Any | None = None,
    classes: Any | None = None,
    nullable: bool | list[str] = False,
) -> Signature:
    """A signature from an input example (DataFrame, records, dict of columns, or a 2-D array).

    Columns with nulls in the example are nullable; ``nullable=True`` (or a list of
    column names) allows nulls where the example has none.
    """
    import numpy as np

    output: dict[str, Any] = {}
    if predictions is not None:
        pred = np.asarray(predictions)
        output = {"dtype": str(pred.dtype), "shape": list(pred.shape[1:])}
    if classes is not None:
        output["classes"] = [c.item() if hasattr(c, "item") else c for c in np.asarray(classes)]
    if isinstance(example, np.ndarray):
        if example.ndim != 2:
            raise InvalidInput(
                f"an array input example must be 2-D (rows, features), not {example.ndim}-D"
            )
        return Signature(
            tensor_dtype=str(example.dtype), tensor_width=int(example.shape[1]), output=output
        )
    frame = to_frame(example)
    columns = []
    for name in frame.columns:
        series = frame[name]
        allow = nullable is True or (isinstance(nullable, list) and str(name) in nullable)
        columns.append(
            ColumnSpec(str(name), _column_type(series), bool(series.isna().any()) or allow)
        )
    return Signature(columns=tuple(columns), output=output)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _wrong_type(column: str, expected: str, value: Any) -> dict[str, Any]:
    """The problem of one value of the wrong type, naming the column and the expectation."""
    return {
        "field": column,
        "expected": expected,
        "message": f"column {column!r} expects {expected}, got {_shown(value)}",
    }


def _positional(sig: Signature, inputs: Any) -> Any:
    """A 2-D array (or a list of lists) of rows, its columns in the signature's order, as a
    DataFrame named by the signature; anything else as it is."""
    import numpy as np
    import pandas as pd

    rows = inputs
    if isinstance(inputs, list | tuple) and inputs and all(
        isinstance(r, list | tuple) for r in inputs
    ):
        rows = np.empty((len(inputs), max(len(r) for r in inputs)), dtype=object)
        if any(len(r) != rows.shape[1] for r in inputs):
            raise SignatureError([{"field": None, "message": "rows have different lengths"}])
        for i, r in enumerate(inputs):
            rows[i, :] = r
    if not isinstance(rows, np.ndarray):
        return inputs
    if rows.ndim != 2 or rows.shape[1] != len(sig.columns):
        raise SignatureError(
            [
                {
                    "field": None,
                    "message": f"an array of shape {rows.shape}: expected rows of "
                    f"{len(sig.columns)} values in the signature's order ({sig.describe()})",
                }
            ]
        )
    return pd.DataFrame({c.name: rows[:, j] for j, c in enumerate(sig.columns)})


def _enforce_columns(sig: Signature, inputs: Any, strict: bool = False) -> Any:
    import numpy as np
    import pandas as pd

    frame = to_frame(_positional(sig, inputs))
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)  # signatures name by str
    problems: list[dict[str, Any]] = []
    if len(frame) == 0:
        raise SignatureError([{"field": None, "message": "the input has no rows"}])
    expected = {c.name for c in sig.columns}
    extra = [str(name) for name in frame.columns if str(name) not in expected]
    if strict:
        problems += [{"field": name, "message": f"unexpected column {name!r}"} for name in extra]
    out = {}
    for spec in sig.columns:
        if spec.name not in frame.columns:
            problems.append(
                {
                    "field": spec.name,
                    "expected": spec.type,
                    "message": f"missing column {spec.name!r} ({spec.type})",
                }
            )
            continue
        series = frame[spec.name]
        nulls = series.isna()
        if nulls.any() and not spec.nullable:
            problems.append(
                {
                    "field": spec.name,
                    "expected": spec.type,
                    "message": f"column {spec.name!r} may not be null or NaN",
                }
            )
            continue
        present = series[~nulls]
        if spec.type in ("integer", "float"):
            if (
                pd.api.types.is_bool_dtype(series.dtype)
                or present.map(lambda v: isinstance(v, bool | str)).any()
            ):
                bad = next((v for v in present if isinstance(v, bool | str)), None)
                problems.append(_wrong_type(spec.name, spec.type, bad))
                continue
            numeric = pd.to_numeric(series, errors="coerce")
            broken = numeric.isna() & ~nulls
            if broken.any():
                bad = series[broken].iloc[0]
                problems.append(_wrong_type(spec.name, spec.type, bad))
                continue
            if spec.type == "integer":
                if pd.api.types.is_integer_dtype(series.dtype):
                    out[spec.name] = series  # already integers (nullable Int64 too): exact
                    continue
                finite = numeric[~nulls].astype("float64")
                whole = np.isfinite(finite) & (finite % 1 == 0) & (finite.abs() < 2.0**63)
                if not whole.all():
                    bad = series[~nulls][~whole].iloc[0]
                    problems.append(_wrong_type(spec.name, "integer", bad))
                    continue
                out[spec.name] = (
                    numeric.astype("int64") if not nulls.any() else numeric.astype("Int64")
                )
            else:
                out[spec.name] = numeric.astype("float64")
        elif spec.type == "boolean":
            if not present.map(lambda v: isinstance(v, bool | np.bool_)).all():
                bad = next(v for v in present if not isinstance(v, bool | np.bool_))
                problems.append(_wrong_type(spec.name, "boolean", bad))
                continue
            out[spec.name] = series
        elif spec.type == "string":
            if not present.map(lambda v: isinstance(v, str)).all():
                bad = next(v for v in present if not isinstance(v, str))
                problems.append(_wrong_type(spec.name, "string", bad))
                continue
            out[spec.name] = series.astype(object)
        else:  # datetime
            if pd.api.types.is_datetime64_any_dtype(series.dtype):
                # Aware times compare in UTC; naive ones stay naive (no zone is invented).
                aware = getattr(series.dt, "tz", None) is not None
                out[spec.name] = series.dt.tz_convert("UTC") if aware else series
                continue
            converted = parse_datetimes(series)
            broken = converted.isna() & ~nulls
            if broken.any():
                problems.append(_wrong_type(spec.name, "datetime", series[broken].iloc[0]))
                continue
            out[spec.name] = converted
    if problems:
        raise SignatureError(problems)
    if extra:  # said once the rest is known to be fine: what was dropped, and how to refuse it
        import warnings

        warnings.warn(
            f"dropped {len(extra)} column(s) the model's signature does not name: "
            f"{listed(extra, 10)} (strict=True refuses them)",
            DroppedColumnsWarning,
            stacklevel=4,
        )
    return pd.DataFrame(out, index=frame.index)


def _enforce_tensor(sig: Signature, inputs: Any) -> Any:
    import numpy as np

    try:
        array = np.asarray(inputs)
    except ValueError as exc:  # ragged rows
        raise SignatureError(
            [{"field": None, "message": f"rows of different lengths: {exc}"}]
        ) from None
    if array.ndim == 1 and sig.tensor_width is not None and array.shape[0] == sig.tensor_width:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != sig.tensor_width:
        raise SignatureError(
            [
                {
                    "field": None,
                    "expected": f"(rows, {sig.tensor_width})",
                    "message": f"expected an array of shape (rows, {sig.tensor_width}), got {array.shape}",
                }
            ]
        )
    if array.shape[0] == 0:
        raise SignatureError([{"field": None, "message": "the input has no rows"}])
    if array.dtype.kind not in "biuf":
        raise SignatureError(
            [
                {
                    "field": None,
                    "expected": sig.tensor_dtype,
                    "message": f"expected numbers ({sig.tensor_dtype}), got {array.dtype}",
                }
            ]
        )
    target = np.dtype(sig.tensor_dtype)
    if (
        target.kind in "iu"
        and array.dtype.kind == "f"
        and not (
            np.all(np.isfinite(array))
            and np.all(np.mod(array, 1) == 0)
            and np.all(np.abs(array) <= np.iinfo(target).max)
        )
    ):
        raise SignatureError(
            [
                {
                    "field": None,
                    "expected": str(target),
                    "message": f"expected whole numbers ({target}), got fractions",
                }
            ]
        )
    if target.kind == "f" and array.dtype.kind == "f" and np.isnan(array).any():
        raise SignatureError(
            [{"field": None, "message": "the input has NaN, which the signature forbids"}]
        )
    return array.astype(target, copy=False)
