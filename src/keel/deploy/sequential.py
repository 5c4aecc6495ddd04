"""An always-valid comparison of two arms: the mixture sequential probability ratio test (mSPRT).

A fixed-sample test read every few minutes finds a "significant" difference
far more often than its level promises. The mSPRT (Johari, Pekelis and Walsh,
2017) mixes the likelihood ratio over a normal prior N(0, tau^2) on the
difference; its p-value and confidence interval stay valid however often they
are looked at, so a deployment may be stopped at the first look that is sure.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> same = msprt(rng.normal(0, 1, 500), rng.normal(0, 1, 500))
>>> same.decision
'inconclusive'
>>> better = msprt(rng.normal(0, 1, 5000), rng.normal(0.3, 1, 5000))
>>> better.decision, better.interval[0] > 0
('challenger better', True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["SequentialTest", "msprt"]


@dataclass(frozen=True)
class SequentialTest:
    """The challenger's mean minus the champion's, with an always-valid interval and p-value."""

    difference: float | None
    interval: tuple[float, float] | None
    p_value: float | None
    fixed_interval: tuple[float, float] | None  # the classic interval, valid at one look only
    n_champion: int
    n_challenger: int
    alpha: float
    decision: str  # "challenger better", "champion better", "inconclusive", "not enough data"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "mSPRT (normal mixture), always valid",
            "difference": self.difference,
            "interval": list(self.interval) if self.interval else None,
            "p_value": self.p_value,
            "fixed_horizon_interval": list(self.fixed_interval) if self.fixed_interval else None,
            "n_champion": self.n_champion,
            "n_challenger": self.n_challenger,
            "alpha": self.alpha,
            "decision": self.decision,
        }


def msprt(
    champion: Any, challenger: Any, *, alpha: float = 0.05, tau: float | None = None
) -> SequentialTest:
    """Compare per-row values (value, correctness, negative loss) of the two arms.

    ``tau`` is the prior's standard deviation of the difference; by default a
    tenth of the pooled standard deviation of one row, tuned to effects of
    that size.
    """
    import numpy as np

    a = np.asarray(champion, dtype=float)
    b = np.asarray(challenger, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return SequentialTest(None, None, None, None, na, nb, alpha, "not enough data")
    diff = float(b.mean() - a.mean())
    va, vb = float(a.var(ddof=1)), float(b.var(ddof=1))
    v = va / na + vb / nb
    if v <= 0.0:
        decision = "inconclusive" if diff == 0 else _sign(diff)
        return SequentialTest(
            diff, (diff, diff), 0.0 if diff else 1.0, (diff, diff), na, nb, alpha, decision
        )
    pooled = math.sqrt((va + vb) / 2)
    t2 = (tau if tau is not None else 0.1 * pooled) ** 2
    if t2 <= 0.0:
        raise ValueError("tau must be positive")
    # log of the mixture likelihood ratio, and the interval that inverts it
    log_lr = 0.5 * math.log(v / (v + t2)) + diff * diff * t2 / (2 * v * (v + t2))
    p = min(1.0, math.exp(-log_lr)) if log_lr > 0 else 1.0
    half = math.sqrt(v * (v + t2) / t2 * (math.log((v + t2) / v) - 2 * math.log(alpha)))
    z = _z(1 - alpha / 2)
    fixed = (diff - z * math.sqrt(v), diff + z * math.sqrt(v))
    lo, hi = diff - half, diff + half
    decision = "challenger better" if lo > 0 else "champion better" if hi < 0 else "inconclusive"
    return SequentialTest(diff, (lo, hi), p, fixed, na, nb, alpha, decision)


def _sign(diff: float) -> str:
    return "challenger better" if diff > 0 else "champion better"


def _z(q: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(q)
