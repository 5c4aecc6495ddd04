"""Jensen–Shannon distance, for numeric columns (over reference-quantile bins) and
categorical ones (over categories).

The distance (square root of the divergence, base 2) runs from 0 (same
distribution) to 1 (no overlap). For a normal column a mean shift of ``k``
standard deviations scores about ``0.42 k``.

>>> import pandas as pd
>>> from keel.monitor.columns import column_from_series
>>> ref = column_from_series(pd.Series(["a", "b"] * 500), "categorical")
>>> cur = column_from_series(pd.Series(["a", "a", "a", "b"] * 250), "categorical")
>>> round(JensenShannon().score(ref, cur).statistic, 3)
0.221
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from keel.errors import InvalidInput
from keel.monitor.categorical import aligned_counts
from keel.monitor.detector import Detector, Score, check_positive
from keel.monitor.noise import pool_sparse
from keel.monitor.numeric import bin_shares

__all__ = ["JensenShannon", "js_distance"]


def js_distance(p: Any, q: Any) -> float:
    """Jensen–Shannon distance (base 2) between two vectors of counts or shares."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.sum() <= 0 or q.sum() <= 0:
        return 0.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(np.sqrt(max((kl_p + kl_q) / 2, 0.0)))


class JensenShannon(Detector):
    """Jensen–Shannon distance against ``threshold``; numeric columns use ``bins``
    equal-mass bins of the reference, categorical ones their categories, with those
    expected fewer than ``min_expected`` times on the smaller side pooled into one cell
    (their noise would otherwise dominate the distance of a small sample)."""

    name: ClassVar[str] = "jensen_shannon"
    kinds: ClassVar[tuple[str, ...]] = ("numeric", "categorical")

    def __init__(self, threshold: float = 0.1, bins: int = 20, min_expected: float = 5.0) -> None:
        self.threshold = check_positive("threshold", threshold)
        if int(bins) != bins or bins < 2:
            raise InvalidInput(f"invalid bins {bins!r}: expected a whole number of 2 or more")
        self.bins = int(bins)
        self.min_expected = check_positive("min_expected", min_expected)

    def score(self, reference: Any, current: Any) -> Score:
        details: dict[str, Any] = {}
        if reference.kind == "numeric":
            p, q = bin_shares(reference, current, self.bins)
        else:
            _, p, q = aligned_counts(reference, current)
            p, q, pooled = pool_sparse(p, q, self.min_expected)
            details = {"cells": len(p), "pooled": pooled}
        stat = js_distance(p, q)
        return Score(self.name, stat, None, self.threshold, stat >= self.threshold, details)
