"""Confidence-based performance estimation (CBPE) for calibrated binary classifiers.

When a classifier's probabilities are calibrated, a row predicted with
probability ``p`` is positive with probability ``p``: at the threshold 0.5 it is
decided correctly with probability ``max(p, 1 - p)``. The expected accuracy of
a window is the mean of that, with a normal interval from its variance, and
the expected ROC curve weighs each row as ``p`` of a positive and ``1 - p`` of
a negative. All of it rests on calibration, so it is checked on reference data
with outcomes: the estimate says when it is not trustworthy.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = rng.beta(2, 2, 50_000); y = rng.random(50_000) < p
>>> est = estimate_performance(p, p, y)
>>> bool(abs(est.accuracy - ((p >= 0.5) == y).mean()) < 0.01), est.trustworthy
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.errors import InvalidInput

__all__ = ["EstimatedPerformance", "calibration_error", "estimate_performance", "expected_auc"]

MAX_CALIBRATION_ERROR = 0.05
MAX_REFERENCE_GAP = 0.02


@dataclass
class EstimatedPerformance:
    """Expected accuracy and AUC of a window without its outcomes, and whether to trust them."""

    accuracy: float
    accuracy_interval: tuple[float, float]
    auc: float
    threshold: float
    rows: int
    trustworthy: bool
    reason: str
    calibration: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "cbpe",
            "accuracy": self.accuracy,
            "accuracy_interval": list(self.accuracy_interval),
            "auc": self.auc,
            "threshold": self.threshold,
            "rows": self.rows,
            "trustworthy": self.trustworthy,
            "reason": self.reason,
            "calibration": self.calibration,
        }


def _probabilities(values: Any, what: str) -> Any:
    p = np.asarray(values, dtype=float)
    p = p[~np.isnan(p)]
    if not len(p):
        raise InvalidInput(f"{what} has no probabilities (every value is missing)")
    if (p < 0).any() or (p > 1).any():
        raise InvalidInput(f"{what} holds values outside 0..1; CBPE needs probabilities")
    return p


def expected_accuracy(p: Any, threshold: float = 0.5) -> tuple[float, float]:
    """Expected accuracy and its standard error at ``threshold``."""
    correct = np.where(p >= threshold, p, 1 - p)
    mean = float(correct.mean())
    se = float(np.sqrt(np.sum(correct * (1 - correct))) / len(correct))
    return mean, se


def expected_auc(p: Any) -> float:
    """Expected AUC when each row is a positive with probability ``p`` (its own score)."""
    p = np.asarray(p, dtype=float)
    _values, inverse = np.unique(p, return_inverse=True)
    pos = np.bincount(inverse, weights=p)
    neg = np.bincount(inverse, weights=1 - p)
    neg_below = np.cumsum(neg) - neg
    # Pairs of one row with itself are not pairs: remove them from the ties.
    self_pairs = np.bincount(inverse, weights=p * (1 - p))
    numerator = float(np.sum(pos * neg_below) + 0.5 * np.sum(pos * neg - self_pairs))
    denominator = float(pos.sum() * neg.sum() - self_pairs.sum())
    return numerator / denominator if denominator > 0 else float("nan")


def calibration_error(p: Any, y: Any, bins: int = 10) -> float:
    """Expected calibration error: the row-weighted gap between predicted and observed rates
    over ``bins`` equal-width bins."""
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    sp = np.bincount(idx, weights=p, minlength=bins)
    sy = np.bincount(idx, weights=y, minlength=bins)
    return float(np.sum(np.abs(sp - sy)) / len(p))


def estimate_performance(
    current: Any,
    reference: Any | None = None,
    reference_truth: Any | None = None,
    threshold: float = 0.5,
) -> EstimatedPerformance:
    """CBPE of ``current`` probabilities; ``reference`` probabilities with their outcomes
    (0/1) check calibration first."""
    p = _probabilities(current, "the current prediction column")
    acc, se = expected_accuracy(p, threshold)
    calibration: dict[str, Any] = {"checked": False}
    if reference is None or reference_truth is None:
        trustworthy = False
        reason = "the reference has no outcomes, so calibration could not be checked"
    else:
        rp = np.asarray(reference, dtype=float)
        ry = np.asarray(reference_truth, dtype=float)
        keep = ~(np.isnan(rp) | np.isnan(ry))
        rp, ry = rp[keep], ry[keep]
        if len(rp) < 100:
            trustworthy = False
            reason = f"only {len(rp)} reference rows with outcomes; at least 100 are needed"
        else:
            _probabilities(rp, "the reference prediction column")
            ece = calibration_error(rp, ry)
            expected_ref, _ = expected_accuracy(rp, threshold)
            realized_ref = float(((rp >= threshold) == (ry == 1)).mean())
            gap = abs(expected_ref - realized_ref)
            calibration = {
                "checked": True,
                "calibration_error": ece,
                "max_calibration_error": MAX_CALIBRATION_ERROR,
                "reference_expected_accuracy": expected_ref,
                "reference_realized_accuracy": realized_ref,
                "max_gap": MAX_REFERENCE_GAP,
                "rows": len(rp),
            }
            trustworthy = ece <= MAX_CALIBRATION_ERROR and gap <= MAX_REFERENCE_GAP
            reason = (
                f"calibrated on the reference (error {ece:.3f}; expected accuracy "
                f"{expected_ref:.3f} vs realized {realized_ref:.3f})"
                if trustworthy
                else f"not calibrated on the reference (error {ece:.3f} > "
                f"{MAX_CALIBRATION_ERROR}, or expected accuracy {expected_ref:.3f} vs "
                f"realized {realized_ref:.3f}); the estimate is not trustworthy"
            )
    return EstimatedPerformance(
        accuracy=acc,
        accuracy_interval=(acc - 1.96 * se, acc + 1.96 * se),
        auc=expected_auc(p),
        threshold=threshold,
        rows=len(p),
        trustworthy=trustworthy,
        reason=reason,
        calibration=calibration,
    )
