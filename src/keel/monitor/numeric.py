"""Detectors for numeric columns: Kolmogorov–Smirnov, normalized Wasserstein, PSI.

Each works on :class:`~keel.monitor.columns.NumericColumn`, so a reference can
be a table (exact sorted values) or a stored profile (101 quantiles). From a
profile the statistics are computed on the quantile function (interpolated
linearly between stored quantiles): close for continuous columns, and the
report says the reference came from a profile.

>>> import numpy as np, pandas as pd
>>> from keel.monitor.columns import column_from_series
>>> rng = np.random.default_rng(0)
>>> ref = column_from_series(pd.Series(rng.normal(size=5000)), "numeric")
>>> cur = column_from_series(pd.Series(rng.normal(0.5, 1, size=5000)), "numeric")
>>> round(Wasserstein().score(ref, cur).statistic, 1)
0.5
>>> KolmogorovSmirnov().score(ref, cur).drifted
True
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from keel.monitor.columns import NumericColumn, distinct_sorted
from keel.monitor.detector import Detector, Score, check_level, check_positive
from keel.monitor.noise import ks_p_value

__all__ = ["PSI", "KolmogorovSmirnov", "Wasserstein", "bin_shares", "scale_of"]

# Exact two-sample statistics from sorted values up to this many rows (both sides together);
# above it, from the CDFs at both sides' quantile grids (within ~1/1000 of exact).
EXACT_ROWS = 40_000
LEVELS = 2000


def scale_of(reference: NumericColumn, current: NumericColumn) -> float:
    """The unit a numeric difference is measured in: the reference's standard deviation
    (the current one's when the reference is constant; 1 when both are)."""
    for s in (reference.std, current.std):
        if s > 0 and np.isfinite(s):
            return float(s)
    return 1.0


def bin_shares(reference: NumericColumn, current: NumericColumn, bins: int) -> tuple[Any, Any]:
    """Shares of both columns in ``bins`` bins cut at the reference's quantiles
    (equal reference mass; ties merge bins); the outer bins are open-ended."""
    inner = distinct_sorted(reference.quantile(np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    p = np.diff(np.concatenate([[0.0], reference.cdf(inner), [1.0]]))
    q = np.diff(np.concatenate([[0.0], current.cdf(inner), [1.0]]))
    return p, q


class KolmogorovSmirnov(Detector):
    """Two-sample Kolmogorov–Smirnov: the largest gap between the two CDFs, with its p-value.

    ``alpha`` is the level of its own verdict; the report's decision corrects
    p-values for testing many columns at once.
    """

    name: ClassVar[str] = "kolmogorov_smirnov"
    kinds: ClassVar[tuple[str, ...]] = ("numeric",)
    test: ClassVar[bool] = True

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = check_level("alpha", alpha)

    def score(self, reference: Any, current: Any) -> Score:
        if (
            reference.values is not None
            and current.values is not None
            and reference.n + current.n <= EXACT_ROWS
        ):
            points = np.concatenate([reference.values, current.values])
            d = float(np.max(np.abs(reference.cdf(points) - current.cdf(points))))
            n_ref, how = reference.n, "exact"
        else:
            # The largest gap over both grids (each side's CDF at the other's points too).
            ours, theirs = reference.grid(), current.grid()
            d = float(
                max(
                    np.max(np.abs(reference.grid_cdf() - current.cdf(ours)), initial=0.0),
                    np.max(np.abs(reference.cdf(theirs) - current.grid_cdf()), initial=0.0),
                )
            )
            # A profile's quantiles come from a sample of at most 100,000 values.
            n_ref = reference.n if reference.values is not None else min(reference.n, 100_000)
            how = "grid"
        p = ks_p_value(d, n_ref, current.n)
        return Score(self.name, d, p, self.alpha, p < self.alpha, {"computed": how})


class Wasserstein(Detector):
    """Wasserstein-1 (earth mover's) distance divided by the reference's standard deviation.

    A mean shift of ``k`` standard deviations scores ``k``; ``threshold`` is the
    smallest normalized distance called drift.
    """

    name: ClassVar[str] = "wasserstein"
    kinds: ClassVar[tuple[str, ...]] = ("numeric",)

    def __init__(self, threshold: float = 0.1) -> None:
        self.threshold = check_positive("threshold", threshold)

    def score(self, reference: Any, current: Any) -> Score:
        scale = scale_of(reference, current)
        if (
            reference.values is not None
            and current.values is not None
            and reference.n + current.n <= EXACT_ROWS
        ):
            w = exact_wasserstein(reference.values, current.values)
        else:
            # W1 = integral over u of |Q_ref(u) - Q_cur(u)|, on a fine grid of levels.
            levels = (np.arange(LEVELS) + 0.5) / LEVELS
            w = float(np.mean(np.abs(reference.quantile(levels) - current.quantile(levels))))
        stat = w / scale
        return Score(self.name, stat, None, self.threshold, stat >= self.threshold)


class PSI(Detector):
    """Population stability index over ``bins`` reference-quantile bins.

    The conventional reading: below 0.1 stable, 0.1 to 0.25 a moderate shift,
    above 0.25 a major one.
    """

    name: ClassVar[str] = "psi"
    kinds: ClassVar[tuple[str, ...]] = ("numeric",)

    def __init__(self, threshold: float = 0.2, bins: int = 10) -> None:
        self.threshold = check_positive("threshold", threshold)
        if int(bins) != bins or bins < 2:
            from keel.errors import InvalidInput

            raise InvalidInput(f"invalid bins {bins!r}: expected a whole number of 2 or more")
        self.bins = int(bins)

    def score(self, reference: Any, current: Any) -> Score:
        p, q = bin_shares(reference, current, self.bins)
        stat = psi(p, q)
        return Score(self.name, stat, None, self.threshold, stat >= self.threshold)


def exact_wasserstein(a: Any, b: Any) -> float:
    """Wasserstein-1 distance between two sorted samples: the area between their CDFs."""
    points = np.concatenate([a, b])
    points.sort()
    gaps = np.diff(points)
    cdf_a = np.searchsorted(a, points[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, points[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * gaps))


def psi(p: Any, q: Any, eps: float = 1e-4) -> float:
    """PSI of shares ``q`` against ``p`` (empty bins count as ``eps``)."""
    p = np.clip(np.asarray(p, dtype=float), eps, None)
    q = np.clip(np.asarray(q, dtype=float), eps, None)
    return float(np.sum((q - p) * np.log(q / p)))
