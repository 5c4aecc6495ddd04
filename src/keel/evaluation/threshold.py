"""The decision threshold that maximizes value (the best business threshold is rarely 0.5).

Predicting positive when ``score >= t``: sorting the scores once gives the
confusion counts at every distinct cut, so the whole value curve costs
O(n log n) and its maximum is exact (the same as trying every threshold).
"""

from __future__ import annotations

from typing import Any

from keel.evaluation.outcomes import ValueMatrix

__all__ = ["optimal_threshold", "value_curve"]


def value_curve(truth: Any, scores: Any, value: ValueMatrix) -> tuple[Any, Any]:
    """(thresholds, total value) at every distinct score, plus +inf (predict nothing positive)."""
    import numpy as np

    y = np.asarray(truth).astype(bool)
    s = np.asarray(scores, dtype=float)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(~y_sorted)
    # The last index of each run of equal scores: all of them switch to positive together.
    ends = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    pos, neg = int(y.sum()), int((~y).sum())
    tp_at, fp_at = tp[ends], fp[ends]
    totals = (
        tp_at * value.tp + fp_at * value.fp + (pos - tp_at) * value.fn + (neg - fp_at) * value.tn
    )
    thresholds = np.r_[np.inf, s_sorted[ends]]
    totals = np.r_[pos * value.fn + neg * value.tn, totals]
    return thresholds, totals.astype(float)


def optimal_threshold(truth: Any, scores: Any, value: ValueMatrix) -> tuple[float, float]:
    """(threshold, total value) of the best cut; ties go to the highest threshold."""
    import numpy as np

    thresholds, totals = value_curve(truth, scores, value)
    best = int(np.argmax(totals))
    return float(thresholds[best]), float(totals[best])
