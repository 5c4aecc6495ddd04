"""Outcomes: what each decision is worth, so models are judged on value, not only accuracy.

>>> import numpy as np
>>> value = ValueMatrix(tp=120.0, fp=-15.0, fn=-80.0, tn=0.0)
>>> value.per_row(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])).tolist()
[120.0, -15.0, -80.0, 0.0]
>>> ValueMatrix.parse("tp=120,fp=-15,fn=-80,tn=0") == value
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keel.errors import InvalidInput

__all__ = [
    "AsymmetricCost",
    "ClassValueMatrix",
    "Outcome",
    "RowValue",
    "ValueMatrix",
    "join",
    "outcome_from_dict",
]


@dataclass(frozen=True)
class ValueMatrix:
    """Money (or any value) per decision of a binary classifier: true/false positives/negatives."""

    tp: float
    fp: float
    fn: float
    tn: float

    kind = "classification"

    def per_row(self, predicted: Any, truth: Any) -> Any:
        import numpy as np

        p = np.asarray(predicted).astype(bool)
        t = np.asarray(truth).astype(bool)
        return np.where(p, np.where(t, self.tp, self.fp), np.where(t, self.fn, self.tn)).astype(
            float
        )

    def to_dict(self) -> dict[str, Any]:
        return {"type": "value_matrix", "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}

    @classmethod
    def parse(cls, text: str) -> ValueMatrix:
        """``tp=120,fp=-15,fn=-80,tn=0``; every cell must be given."""
        cells: dict[str, float] = {}
        for part in text.split(","):
            key, sep, raw = part.strip().partition("=")
            key = key.strip().lower()
            if not sep or key not in ("tp", "fp", "fn", "tn"):
                raise InvalidInput(
                    f"invalid value matrix {text!r}: expected tp=N,fp=N,fn=N,tn=N (not {part.strip()!r})"
                )
            try:
                cells[key] = float(raw)
            except ValueError:
                raise InvalidInput(
                    f"invalid value for {key} in {text!r}: {raw!r} is not a number"
                ) from None
            if not math.isfinite(cells[key]):
                raise InvalidInput(f"invalid value for {key} in {text!r}: expected a finite number")
        missing = [k for k in ("tp", "fp", "fn", "tn") if k not in cells]
        if missing:
            raise InvalidInput(
                f"the value matrix {text!r} has no {', '.join(missing)}: give all four cells tp, fp, fn, tn"
            )
        return cls(**cells)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ValueMatrix:
        missing = [k for k in ("tp", "fp", "fn", "tn") if k not in doc]
        if missing:
            raise InvalidInput(f"the value matrix has no {', '.join(missing)}: give all four cells")
        cells = {k: float(doc[k]) for k in ("tp", "fp", "fn", "tn")}
        bad = [k for k, v in cells.items() if not math.isfinite(v)]
        if bad:
            raise InvalidInput(f"the value matrix's {', '.join(bad)} must be finite numbers")
        return cls(**cells)


@dataclass(frozen=True)
class ClassValueMatrix:
    """Value per decision of a multi-class classifier: ``values[i][j]`` is what predicting
    class ``classes[j]`` is worth when the truth is ``classes[i]``.

    >>> import numpy as np
    >>> m = ClassValueMatrix(("a", "b"), ((1.0, -2.0), (-3.0, 4.0)))
    >>> m.per_row(np.array([0, 1, 1]), np.array([0, 0, 1]), ["a", "b"]).tolist()
    [1.0, -2.0, 4.0]
    """

    classes: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]

    kind = "multiclass"

    def aligned(self, classes: list[Any]) -> Any:
        """The matrix in the model's class order (its classes matched as text)."""
        import numpy as np

        names = [str(c) for c in classes]
        if sorted(names) != sorted(self.classes):
            raise InvalidInput(
                f"the value matrix is over the classes {', '.join(self.classes)}, and the model's "
                f"are {', '.join(names)}: give one row and one column per class"
            )
        order = [self.classes.index(n) for n in names]
        return np.asarray(self.values, dtype=float)[np.ix_(order, order)]

    def per_row(self, predicted: Any, truth: Any, classes: list[Any]) -> Any:
        import numpy as np

        matrix = self.aligned(classes)
        return matrix[np.asarray(truth, dtype=int), np.asarray(predicted, dtype=int)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "class_value_matrix",
            "classes": list(self.classes),
            "values": [list(r) for r in self.values],
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ClassValueMatrix:
        return cls._checked([str(c) for c in doc["classes"]], doc["values"], "the value matrix")

    @classmethod
    def _checked(cls, classes: list[str], rows: list[list[Any]], what: str) -> ClassValueMatrix:
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise InvalidInput(f"{what}: expected two or more distinct classes, got {classes}")
        if len(rows) != len(classes) or any(len(r) != len(classes) for r in rows):
            raise InvalidInput(
                f"{what}: expected a {len(classes)}x{len(classes)} table (one row and one column "
                "per class)"
            )
        values = []
        for i, row in enumerate(rows):
            out = []
            for j, raw in enumerate(row):
                try:
                    v = float(raw)
                except (TypeError, ValueError):
                    raise InvalidInput(
                        f"{what}: the value for truth {classes[i]}, predicted {classes[j]} is "
                        f"{raw!r}, not a number"
                    ) from None
                if not math.isfinite(v):
                    raise InvalidInput(f"{what}: every value must be a finite number")
                out.append(v)
            values.append(tuple(out))
        return cls(tuple(classes), tuple(values))

    @classmethod
    def read(cls, path: str) -> ClassValueMatrix:
        """A CSV: a header of the predicted classes (after one cell naming the rows), then one
        row per true class, its name first: ``truth,setosa,versicolor`` / ``setosa,1,-2`` ..."""
        import csv
        import os

        if not os.path.isfile(path):
            raise InvalidInput(f"value matrix {path}: no such file (expected a K x K CSV)")
        with open(path, newline="", encoding="utf-8") as fh:
            table = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
        if len(table) < 3:
            raise InvalidInput(
                f"value matrix {path}: expected a header of classes and one row per class"
            )
        header = [c.strip() for c in table[0][1:]]
        names = [r[0].strip() for r in table[1:]]
        if sorted(names) != sorted(header):
            raise InvalidInput(
                f"value matrix {path}: its rows ({', '.join(names)}) and columns "
                f"({', '.join(header)}) name different classes"
            )
        by_column = [header.index(n) for n in names]  # columns in the rows' order
        rows = [[r[1:][k] if k < len(r) - 1 else None for k in by_column] for r in table[1:]]
        return cls._checked(names, rows, f"value matrix {path}")


def outcome_from_dict(doc: dict[str, Any]) -> ValueMatrix | ClassValueMatrix | AsymmetricCost:
    """An outcome from its stored form (an evaluation's or a policy's)."""
    kind = doc.get("type", "value_matrix")
    if kind == "class_value_matrix":
        return ClassValueMatrix.from_dict(doc)
    if kind == "asymmetric_cost":
        return AsymmetricCost(float(doc["under"]), float(doc["over"]))
    return ValueMatrix.from_dict(doc)


@dataclass(frozen=True)
class AsymmetricCost:
    """Regression value: under-forecasting costs ``under`` per unit, over-forecasting ``over``.

    >>> import numpy as np
    >>> AsymmetricCost(under=2.0, over=1.0).per_row(np.array([8.0, 12.0]), np.array([10.0, 10.0])).tolist()
    [-4.0, -2.0]
    """

    under: float
    over: float

    kind = "regression"

    def per_row(self, predicted: Any, truth: Any) -> Any:
        import numpy as np

        error = np.asarray(predicted, dtype=float) - np.asarray(truth, dtype=float)
        return -np.where(error < 0, -error * self.under, error * self.over)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "asymmetric_cost", "under": self.under, "over": self.over}


@dataclass(frozen=True)
class RowValue:
    """Any value: ``fn(rows, predicted, truth) -> array`` (vectorized over the rows)."""

    fn: Callable[[Any, Any, Any], Any]
    name: str = "custom"
    kind = "any"

    def per_row(self, predicted: Any, truth: Any, rows: Any = None) -> Any:
        import numpy as np

        values = np.asarray(self.fn(rows, predicted, truth), dtype=float)
        if values.shape != (len(np.asarray(truth)),):
            raise InvalidInput(
                f"the value function {self.name!r} returned {values.shape}, expected one value per row"
            )
        return values

    def to_dict(self) -> dict[str, Any]:
        return {"type": "function", "name": self.name}


Outcome = ValueMatrix | ClassValueMatrix | AsymmetricCost | RowValue


def join(
    model: str, *, since: float | str | None = None, workspace: Any = None, how: str = "inner"
) -> Any:
    """Logged predictions of ``model`` joined to the outcomes fed back (a DataFrame); see
    :func:`keel.evaluation.online.join`."""
    from keel.evaluation.online import join as _join

    return _join(model, since=since, workspace=workspace, how=how)
