"""Bootstrap intervals, paired when two models are compared on the same rows.

Resampling 1,000 times a million rows by index costs a billion gathers. When
the per-row values take few distinct values (a value matrix has four), the
resampled total is a multinomial draw over those values: exact and instant.
Otherwise indices are drawn in blocks that bound memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["bootstrap_mean", "bootstrap_statistic", "interval"]

_BLOCK = 20_000_000  # indices per block: 160 MB of int64


def interval(samples: Any, confidence: float) -> tuple[float, float]:
    import numpy as np

    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(np.asarray(samples, dtype=float), [alpha, 1 - alpha])
    return float(lo), float(hi)


def bootstrap_mean(values: Any, resamples: int, seed: int) -> Any:
    """``resamples`` bootstrap means of ``values``."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    n = len(v)
    rng = np.random.default_rng(seed)
    if n == 0:
        return np.full(resamples, np.nan)
    uniques, counts = np.unique(v, return_counts=True)
    if len(uniques) <= 4096:
        draws = rng.multinomial(n, counts / n, size=resamples)
        return draws @ uniques / n
    out = np.empty(resamples)
    per_block = max(1, _BLOCK // n)
    for start in range(0, resamples, per_block):
        k = min(per_block, resamples - start)
        idx = rng.integers(0, n, size=(k, n))
        out[start : start + k] = v[idx].mean(axis=1)
    return out


def bootstrap_statistic(
    n: int, statistic: Callable[[Any], float], resamples: int, seed: int
) -> Any:
    """``statistic(indices)`` on ``resamples`` bootstrap samples of row indices (paired use:
    compute both models' statistics from the same indices inside ``statistic``)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return np.array([statistic(rng.integers(0, n, size=n)) for _ in range(resamples)])
