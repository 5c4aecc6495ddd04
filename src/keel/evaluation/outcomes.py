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

__all__ = ["AsymmetricCost", "Outcome", "RowValue", "ValueMatrix", "join"]


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


Outcome = ValueMatrix | AsymmetricCost | RowValue


def join(
    model: str, *, since: float | str | None = None, workspace: Any = None, how: str = "inner"
) -> Any:
    """Logged predictions of ``model`` joined to the outcomes fed back (a DataFrame); see
    :func:`keel.evaluation.online.join`."""
    from keel.evaluation.online import join as _join

    return _join(model, since=since, workspace=workspace, how=how)
