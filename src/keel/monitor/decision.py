"""The decision rule: when a column has drifted, and how the report explains it.

A column's distribution has drifted when the change is **real** (its test's
p-value, corrected with Holm's method for every test in the report, is below
``alpha``) **and large enough to matter** (its effect size reaches a calibrated
threshold). With few rows the test decides: anything it finds significant is
already larger than the threshold, and noise never is. With many rows every
real difference is significant, so the effect size decides: a p-value alone
would flag irrelevant wiggles at a million rows. New or vanished categories and
missing-value rates are judged beside the distribution.

>>> rule = DecisionRule()
>>> rule.numeric_effect, rule.categorical_effect.threshold
(Wasserstein(threshold=0.05), 0.05)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.monitor.categorical import ChiSquare, NewCategories
from keel.monitor.detector import Detector, check_level
from keel.monitor.jensen_shannon import JensenShannon
from keel.monitor.missing import MissingRate
from keel.monitor.numeric import PSI, KolmogorovSmirnov, Wasserstein

__all__ = ["LARGE", "DecisionRule", "holm"]

# From this many rows on both sides the effect size is what decides (see the module doc).
LARGE = 10_000


def _numeric_effect() -> Detector:
    # 0.05: half the subtlest shift worth an alert (0.1 standard deviation), and ten times
    # the noise of the statistic at 10,000 rows a side.
    return Wasserstein(threshold=0.05)


def _categorical_effect() -> Detector:
    # 0.05: about what a 0.12 standard deviation shift does to a normal column, measured
    # the same way; at 10,000 rows a side the noise of the statistic is below 0.02.
    return JensenShannon(threshold=0.05)


def _extra_numeric() -> list[Detector]:
    return [PSI(), JensenShannon()]


@dataclass
class DecisionRule:
    """Which detectors decide, at which thresholds, with which correction."""

    numeric_effect: Detector = field(default_factory=_numeric_effect)
    numeric_test: Detector = field(default_factory=KolmogorovSmirnov)
    categorical_effect: Detector = field(default_factory=_categorical_effect)
    categorical_test: Detector = field(default_factory=ChiSquare)
    categories: Detector = field(default_factory=NewCategories)
    missing: Detector = field(default_factory=MissingRate)
    numeric_extra: list[Detector] = field(default_factory=_extra_numeric)
    alpha: float = 0.05
    min_rows: int = 30

    def __post_init__(self) -> None:
        self.alpha = check_level("alpha", self.alpha)
        if int(self.min_rows) != self.min_rows or self.min_rows < 2:
            from keel.errors import InvalidInput

            raise InvalidInput(
                f"invalid min_rows {self.min_rows!r}: expected a whole number of 2 or more"
            )

    def explain(self) -> str:
        ne, ce = self.numeric_effect, self.categorical_effect
        return (
            f"A column drifts when its change is both real and large enough to matter: "
            f"the test's p-value ({_name(self.numeric_test)} for numbers, "
            f"{_name(self.categorical_test)} for categories), corrected with Holm's method "
            f"for all {{tests}} tests in this report, is below {self.alpha:g}, and the effect "
            f"size reaches its threshold ({_name(ne)} >= {_threshold(ne):g} of a standard "
            f"deviation for numbers, {_name(ce)} distance >= {_threshold(ce):g} for "
            f"categories). Below {LARGE:,} rows a side the test decides (noise is large, so "
            f"only significant changes count); above it the effect size decides (every real "
            f"difference is significant at that size, so only large ones count). Also drift: "
            f"new or vanished categories holding >= {_threshold(self.categories):.0%} of the "
            f"rows, and a missing-value rate that moved by >= "
            f"{_threshold(self.missing):.0%} (significant after correction). Columns with "
            f"fewer than {self.min_rows} values on a side are 'not enough data', not drift."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric_effect": self.numeric_effect.to_dict(),
            "numeric_test": self.numeric_test.to_dict(),
            "categorical_effect": self.categorical_effect.to_dict(),
            "categorical_test": self.categorical_test.to_dict(),
            "categories": self.categories.to_dict(),
            "missing": self.missing.to_dict(),
            "alpha": self.alpha,
            "correction": "holm",
            "large_sample": LARGE,
            "min_rows": self.min_rows,
        }


def _name(d: Detector) -> str:
    return d.name.replace("_", "-")


def _threshold(d: Detector) -> float:
    return float(getattr(d, "threshold", 0.0))


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given).

    >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return [float(x) for x in out]
