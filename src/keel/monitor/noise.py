"""How large a drift statistic noise alone makes: the null distributions behind the rule.

Two samples of one distribution never score exactly zero; how far they wander
depends on their sizes and, for categories, on how many there are. This module
holds the distributions that say so, in plain numpy and :mod:`math` so that
judging a table never has to import scipy:

- Pearson's chi-square survival function and its inverse (the regularized
  incomplete gamma function, by series and continued fraction);
- the Kolmogorov distribution of the two-sample KS statistic, with Stephens'
  small-sample correction;
- the normal tail;
- the Jensen–Shannon distance that same-distribution samples exceed with a
  given probability: between two samples of sizes ``n1`` and ``n2`` over ``k``
  categories, ``8 ln 2 * n1 n2 / (n1 + n2) * JS^2`` is the G statistic of
  homogeneity, which follows chi-square with ``k - 1`` degrees of freedom.

>>> round(chi2_sf(3.841, 1), 3), round(chi2_isf(0.05, 1), 3)
(0.05, 3.841)
>>> round(ks_p_value(0.05, 1000, 1000), 2)
0.16
>>> round(js_noise(5, 10_000, 10_000, 0.001), 4)
0.0258
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = [
    "chi2_isf",
    "chi2_sf",
    "js_noise",
    "kolmogorov_sf",
    "ks_p_value",
    "norm_sf",
    "pool_sparse",
]

_EPS = 1e-15
_TINY = 1e-300


def norm_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x)."""
    if x <= 0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        # Series for P(a, x); Q = 1 - P.
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _EPS:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    # Continued fraction for Q(a, x) (modified Lentz).
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return min(1.0, math.exp(log_front) * h)


def chi2_sf(x: float, df: float) -> float:
    """P(X > x) for X chi-square with ``df`` degrees of freedom."""
    if df <= 0:
        return 0.0 if x > 0 else 1.0
    return _gamma_q(df / 2.0, x / 2.0)


@lru_cache(maxsize=512)
def chi2_isf(p: float, df: float) -> float:
    """The ``x`` with ``chi2_sf(x, df) == p``."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie strictly between 0 and 1, not {p!r}")
    # Wilson–Hilferty for a start, then bisection on a bracket around it.
    z = _norm_isf(p)
    start = df * max(1.0 - 2.0 / (9.0 * df) + z * math.sqrt(2.0 / (9.0 * df)), 0.05) ** 3
    lo, hi = 0.0, max(start, 1.0)
    while chi2_sf(hi, df) > p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if chi2_sf(mid, df) > p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-10 * max(hi, 1.0):
            break
    return (lo + hi) / 2.0


def _norm_isf(p: float) -> float:
    """The ``z`` with ``norm_sf(z) == p`` (bisection; only used for starting points)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if norm_sf(mid) > p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (the limit of sqrt(n) * D)."""
    if x <= 0.0:
        return 1.0
    if x < 1.18:
        # The theta-function form converges fast for small x.
        y = math.exp(-(math.pi**2) / (8.0 * x * x))
        cdf = math.sqrt(2.0 * math.pi) / x * (y + y**9 + y**25 + y**49)
        return min(1.0, max(0.0, 1.0 - cdf))
    total = 0.0
    for k in range(1, 101):
        term = math.exp(-2.0 * k * k * x * x)
        total += term if k % 2 else -term
        if term < 1e-17:
            break
    return min(1.0, max(0.0, 2.0 * total))


def ks_p_value(d: float, n1: int, n2: int) -> float:
    """Two-sided p-value of a two-sample KS distance ``d`` between samples of ``n1`` and
    ``n2`` values (the asymptotic distribution with Stephens' small-sample correction)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    en = math.sqrt(n1 * n2 / (n1 + n2))
    return kolmogorov_sf((en + 0.12 + 0.11 / en) * d)


def js_noise(cells: int, n1: int, n2: int, level: float) -> float:
    """The Jensen–Shannon distance (base 2) that two samples of one distribution, of ``n1``
    and ``n2`` rows over ``cells`` categories, exceed with probability ``level``."""
    if cells < 2 or n1 <= 0 or n2 <= 0:
        return 0.0
    harmonic = n1 * n2 / (n1 + n2)
    return math.sqrt(chi2_isf(level, cells - 1) / (8.0 * math.log(2.0) * harmonic))


def pool_sparse(
    ref: np.ndarray, cur: np.ndarray, min_expected: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Both sides' counts with the categories that are expected fewer than ``min_expected``
    times on the smaller side pooled into one cell (Cochran's rule: with sparse cells the
    chi-square approximation, and the noise of any distance over categories, fall apart).

    Returns the pooled counts and how many categories were pooled. Empty cells are dropped.
    """
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    n1, n2 = ref.sum(), cur.sum()
    if n1 <= 0 or n2 <= 0 or len(ref) < 2:
        return ref, cur, 0
    expected = min(n1, n2) * (ref + cur) / (n1 + n2)
    sparse = expected < min_expected
    pooled = int(sparse.sum())
    if pooled <= 1:
        if pooled == 1 and len(ref) > 2:
            # One sparse cell on its own: fold it into the next-smallest one.
            order = np.argsort(expected)
            a, b = order[0], order[1]
            ref = ref.copy()
            cur = cur.copy()
            ref[b] += ref[a]
            cur[b] += cur[a]
            mask = np.ones(len(ref), dtype=bool)
            mask[a] = False
            return ref[mask], cur[mask], 2
        return ref, cur, 0
    ref_p = np.append(ref[~sparse], ref[sparse].sum())
    cur_p = np.append(cur[~sparse], cur[sparse].sum())
    if min(n1, n2) * (ref_p[-1] + cur_p[-1]) / (n1 + n2) < min_expected and len(ref_p) > 2:
        # The pooled cell is still sparse: fold it into the smallest of the others.
        small = int(np.argmin(ref_p[:-1] + cur_p[:-1]))
        ref_p[small] += ref_p[-1]
        cur_p[small] += cur_p[-1]
        ref_p, cur_p = ref_p[:-1], cur_p[:-1]
        pooled += 1
    return ref_p, cur_p, pooled
