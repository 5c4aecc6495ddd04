"""Detectors for categorical columns: chi-square, and new or vanished categories.

Categories are compared as text. A reference from a profile lists its top 50
categories and an "other" count; current categories it does not list fall in
that "other" bucket, and whether they are new cannot be known (the detector
says so).

>>> import pandas as pd
>>> from keel.monitor.columns import column_from_series
>>> ref = column_from_series(pd.Series(["a", "b"] * 500), "categorical")
>>> cur = column_from_series(pd.Series(["a", "b", "c", "c"] * 250), "categorical")
>>> NewCategories().score(ref, cur).details["new"]
['c']
>>> ChiSquare().score(ref, cur).drifted
True
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from keel.monitor.columns import CategoricalColumn
from keel.monitor.detector import Detector, Score, check_level, check_positive
from keel.monitor.noise import chi2_sf, pool_sparse

__all__ = ["OTHER", "ChiSquare", "NewCategories", "aligned_counts", "pearson_chi_square"]

OTHER = "(other)"
# A reference category counts as vanished only when the current window should have
# held at least this many of its rows: absent by chance then has odds below e^-7 (0.09 %),
# under the rule's false-alarm rate of 0.1 % per column.
EXPECTED_ROWS = 7


def aligned_counts(
    reference: CategoricalColumn, current: CategoricalColumn
) -> tuple[list[str], Any, Any]:
    """Category labels and both sides' counts over them (an ``(other)`` bucket when the
    reference does not list every category)."""
    labels = list(reference.counts)
    ref = [reference.counts[c] for c in labels]
    cur = [current.counts.get(c, 0) for c in labels]
    unseen = [c for c in current.counts if c not in reference.counts]
    if reference.complete:
        labels += unseen
        ref += [0] * len(unseen)
        cur += [current.counts[c] for c in unseen]
    else:
        labels.append(OTHER)
        ref.append(reference.other)
        cur.append(sum(current.counts[c] for c in unseen))
    return labels, np.asarray(ref, dtype=float), np.asarray(cur, dtype=float)


class ChiSquare(Detector):
    """Pearson's chi-square test of homogeneity on the two sides' category counts.

    Categories expected fewer than ``min_expected`` times on the smaller side are pooled
    into one cell first (Cochran's rule): with sparse cells the chi-square distribution
    no longer describes the statistic, and rare categories would raise false alarms.
    """

    name: ClassVar[str] = "chi_square"
    kinds: ClassVar[tuple[str, ...]] = ("categorical",)
    test: ClassVar[bool] = True

    def __init__(self, alpha: float = 0.05, min_expected: float = 5.0) -> None:
        self.alpha = check_level("alpha", alpha)
        self.min_expected = check_positive("min_expected", min_expected)

    def score(self, reference: Any, current: Any) -> Score:
        _, ref, cur = aligned_counts(reference, current)
        ref, cur, pooled = pool_sparse(ref, cur, self.min_expected)
        if len(ref) < 2:
            return Score(self.name, 0.0, 1.0, self.alpha, False, {"categories": len(ref)})
        statistic = pearson_chi_square(ref, cur)
        p = chi2_sf(statistic, len(ref) - 1)
        cells = float(ref.sum() + cur.sum())
        cramers_v = float(np.sqrt(statistic / cells)) if cells else 0.0
        return Score(
            self.name,
            statistic,
            p,
            self.alpha,
            p < self.alpha,
            {"cramers_v": cramers_v, "categories": len(ref), "pooled": pooled},
        )


def pearson_chi_square(ref: Any, cur: Any) -> float:
    """Pearson's chi-square statistic of a 2 x k table of counts (no empty column)."""
    table = np.vstack([ref, cur]).astype(float)
    total = table.sum()
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / total
    return float(((table - expected) ** 2 / expected).sum())


class NewCategories(Detector):
    """Share of current rows in categories the reference never had, or of reference rows in
    categories that vanished; the larger of the two against ``threshold``."""

    name: ClassVar[str] = "new_categories"
    kinds: ClassVar[tuple[str, ...]] = ("categorical",)

    def __init__(self, threshold: float = 0.01) -> None:
        self.threshold = check_positive("threshold", threshold)

    def score(self, reference: Any, current: Any) -> Score:
        ref_n = max(reference.n, 1)
        cur_n = max(current.n, 1)
        details: dict[str, Any] = {}
        new_share = 0.0
        if reference.complete:
            new = {c: n for c, n in current.counts.items() if c not in reference.counts}
            new_share = sum(new.values()) / cur_n
            details["new"] = sorted(new, key=lambda c: -new[c])[:20]
        else:
            details["new"] = None
            details["note"] = (
                "the reference profile lists only its top categories; new ones cannot be told"
            )
        vanished = {
            c: n
            for c, n in reference.counts.items()
            if current.counts.get(c, 0) == 0 and n / ref_n * current.n >= EXPECTED_ROWS
        }
        vanished_share = sum(vanished.values()) / ref_n
        details["vanished"] = sorted(vanished, key=lambda c: -vanished[c])[:20]
        details["new_share"] = new_share
        details["vanished_share"] = vanished_share
        stat = max(new_share, vanished_share)
        return Score(self.name, stat, None, self.threshold, stat >= self.threshold, details)
