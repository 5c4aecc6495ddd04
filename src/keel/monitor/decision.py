"""The decision rule: when a column has drifted, and how the report explains it.

A column's distribution has drifted when the change is **large enough to
matter** (its effect size reaches a threshold) **and beyond what noise does**
at these sample sizes. Noise is judged per column against ``false_alarm``
(0.1 %): the column's test must give a p-value below it on its own, and below
``alpha`` after Holm's correction for every test in the report. For categories
the effect threshold itself is calibrated: the larger of what matters (0.05)
and the Jensen–Shannon distance that two samples of one distribution, of these
sizes and with this many categories, exceed once in a thousand checks. So the
same rule holds for a window of 1,000 rows and one of 5,000,000, and for every
chunk of a stream: with few rows noise decides (only changes noise cannot make
count), with many rows the effect size decides (a p-value alone would flag
irrelevant wiggles at a million rows). New or vanished categories and
missing-value rates are judged beside the distribution, at the same level.

>>> rule = DecisionRule()
>>> rule.numeric_effect, rule.categorical_effect.threshold, rule.false_alarm
(Wasserstein(threshold=0.05), 0.05, 0.001)
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
    # The chance that a column of one unchanged distribution is flagged, per column and
    # per check (a report, or one chunk of a stream), at any sample size.
    false_alarm: float = 0.001

    def __post_init__(self) -> None:
        self.alpha = check_level("alpha", self.alpha)
        self.false_alarm = check_level("false_alarm", self.false_alarm, high=0.5)
        if int(self.min_rows) != self.min_rows or self.min_rows < 2:
            from keel.errors import InvalidInput

            raise InvalidInput(
                f"invalid min_rows {self.min_rows!r}: expected a whole number of 2 or more"
            )

    def explain(self) -> str:
        ne, ce = self.numeric_effect, self.categorical_effect
        return (
            f"A column drifts when its change is large enough to matter and beyond what noise "
            f"does at its sample size: the effect size reaches its threshold "
            f"({_name(ne)} >= {_threshold(ne):g} of a standard deviation for numbers; "
            f"{_name(ce)} distance >= {_threshold(ce):g} for categories, or more when noise "
            f"alone reaches that often: the threshold is the distance two samples of one "
            f"distribution, of these sizes and with this many categories, exceed in "
            f"{self.false_alarm:.1%} of checks), and the test ({_name(self.numeric_test)} "
            f"for numbers, {_name(self.categorical_test)} for categories, rare categories "
            f"pooled) gives p < {self.false_alarm:g} on its own and p < {self.alpha:g} after "
            f"Holm's correction for all {{tests}} tests in this report. A column of an "
            f"unchanged distribution is flagged in at most about {self.false_alarm:.1%} of "
            f"checks at any size, and the report as a whole in at most {self.alpha:.0%}. "
            f"Chunks of the current table are judged by the same rule, each at its own size. "
            f"Also drift: new or vanished categories holding >= "
            f"{_threshold(self.categories):.0%} of the rows, and a missing-value rate that "
            f"moved by >= {_threshold(self.missing):.0%} (beyond noise at the same level). "
            f"Columns with fewer than {self.min_rows} values on a side are 'not enough data', "
            f"not drift."
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
            "false_alarm": self.false_alarm,
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
