"""Intervals for a proportion (an accuracy, an error rate) that stay inside [0, 1].

The normal interval ``p ± z·sqrt(p(1-p)/n)`` of an accuracy near 1 on few
outcomes reaches past 1 (``[0.9494, 1.008]``) and has zero width at 0 or 1.
Wilson's score interval (Wilson, 1927) does neither and keeps close to its
nominal coverage at any n.

>>> lo, hi = wilson(49, 50)
>>> round(lo, 4), round(hi, 4)
(0.895, 0.9965)
>>> wilson(0, 0)
(nan, nan)
"""

from __future__ import annotations

import math

__all__ = ["wilson"]


def wilson(successes: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's score interval for ``successes`` out of ``n`` (z: 1.96 for 95 %)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / denom
    return max(0.0, mid - half), min(1.0, mid + half)
