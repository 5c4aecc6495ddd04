"""Drift of the share of missing values in a column (nulls and NaN; for numbers from
mixed-type columns, values that are not numbers).

>>> import numpy as np, pandas as pd
>>> from keel.monitor.columns import column_from_series
>>> ref = column_from_series(pd.Series([1.0] * 1000), "numeric")
>>> cur = column_from_series(pd.Series([1.0] * 900 + [np.nan] * 100), "numeric")
>>> s = MissingRate().score(ref, cur)
>>> round(s.statistic, 2), s.drifted
(0.1, True)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from keel.monitor.detector import Detector, Score, check_level, check_positive
from keel.monitor.noise import norm_sf

__all__ = ["MissingRate"]


class MissingRate(Detector):
    """Absolute change of the missing share against ``threshold``, with a two-proportion
    z-test (its p-value is what the report corrects for many columns)."""

    name: ClassVar[str] = "missing_rate"
    kinds: ClassVar[tuple[str, ...]] = ("numeric", "categorical")
    test: ClassVar[bool] = True

    def __init__(self, threshold: float = 0.02, alpha: float = 0.05) -> None:
        self.threshold = check_positive("threshold", threshold)
        self.alpha = check_level("alpha", alpha)

    def score(self, reference: Any, current: Any) -> Score:
        n1, n2 = reference.count, current.count
        r1 = reference.missing_rate
        r2 = current.missing_rate
        diff = abs(r2 - r1)
        pooled = (reference.missing + current.missing) / max(n1 + n2, 1)
        se = np.sqrt(pooled * (1 - pooled) * (1 / max(n1, 1) + 1 / max(n2, 1)))
        p = 1.0 if se == 0 else 2 * norm_sf(float(diff / se))
        if se == 0 and diff > 0:
            p = 0.0
        return Score(
            self.name,
            diff,
            p,
            self.threshold,
            diff >= self.threshold and p < self.alpha,
            {"reference": r1, "current": r2},
        )
