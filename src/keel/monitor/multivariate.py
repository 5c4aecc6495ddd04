"""Multivariate drift: shifts of the joint distribution that no single column shows.

Two views. A **domain classifier** learns to tell reference rows from current
ones: each column is cut into bins (16 quantile bins of a number, one bin per
frequent category, one for missing), and a row scores the sum over its columns
of log(share of current rows in its bin / share of reference rows), the naive
Bayes log-odds, learned on one half of the rows and scored on the other. Its
out-of-fold AUC is 0.5 when the tables cannot be told apart, with a
Hanley–McNeil interval; the columns whose terms carry the AUC are named. It sees
every change of a column's distribution jointly, in one pass of bin counts; a
change in how columns go together is **PCA reconstruction error**'s to see:
principal components fitted on half the reference (enough to keep 90 % of the
variance) reconstruct the other half and the current rows, and a broken
correlation shows as a larger error. Both subsample for speed, and both are
numpy only: importing scikit-learn took longer here than judging a million rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.monitor.columns import Columns, distinct_sorted

__all__ = ["MultivariateDrift", "multivariate_drift", "roc_auc"]

AUC_THRESHOLD = 0.55  # drift when the interval's lower end is above it
PCA_RATIO = 1.1  # drift when the current error is 10 % above the reference's, beyond noise
SAMPLE = 10_000  # rows a side
TOP = 50  # categories encoded per column; the rest share one code
BINS = 16  # quantile bins of a numeric column in the domain classifier


@dataclass
class MultivariateDrift:
    """What the domain classifier and the PCA reconstruction found."""

    auc: float | None = None
    auc_interval: tuple[float, float] | None = None
    auc_threshold: float = AUC_THRESHOLD
    drifted: bool = False
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    top_columns: list[tuple[str, float]] = field(default_factory=list)
    pca: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    def reasons(self) -> list[str]:
        """What tripped, in words: the domain classifier, the PCA reconstruction, or both."""
        out = []
        if self.auc is not None and self.auc_interval and self.auc_interval[0] > self.auc_threshold:
            lo, hi = self.auc_interval
            top = ", ".join(c for c, _ in self.top_columns[:3])
            out.append(
                f"domain classifier AUC {self.auc:.3f} ({lo:.3f}-{hi:.3f})"
                + (f", told apart mostly by {top}" if top else "")
            )
        if self.pca.get("drifted"):
            out.append(
                f"PCA reconstruction error x{self.pca['ratio']:.2f} "
                f"(drift at x{self.pca['threshold']:g})"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "auc": self.auc,
            "auc_interval": list(self.auc_interval) if self.auc_interval else None,
            "auc_threshold": self.auc_threshold,
            "drifted": self.drifted,
            "rows": self.rows,
            "columns": self.columns,
            "top_columns": [[c, w] for c, w in self.top_columns],
            "pca": self.pca,
            "note": self.note,
            "reasons": self.reasons(),
        }


def auc_interval(auc: float, n_pos: int, n_neg: int, z: float = 1.96) -> tuple[float, float]:
    """Hanley–McNeil interval of an AUC from ``n_pos`` and ``n_neg`` rows.

    >>> lo, hi = auc_interval(0.5, 10_000, 10_000)
    >>> round(lo, 3), round(hi, 3)
    (0.492, 0.508)
    """
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    se = float(np.sqrt(max(var, 0.0)))
    return max(0.0, auc - z * se), min(1.0, auc + z * se)


def _encode(
    ref: Columns, ref_rows: Any, cur: Columns, cur_rows: Any, columns: list[str], kinds: dict[str, str]
) -> tuple[Any, Any, Any]:
    """The sampled rows of both tables as float matrices: numbers as they are (NaN where
    missing or not finite), categories as codes of the reference's TOP - 1 most frequent,
    the rest and missing values one more code."""
    ref_cols, cur_cols, categorical = [], [], []
    for c in columns:
        if kinds[c] == "numeric":
            r = ref.numbers(c)[0][ref_rows]
            k = cur.numbers(c)[0][cur_rows]
            r[~np.isfinite(r)] = np.nan
            k[~np.isfinite(k)] = np.nan
            categorical.append(False)
        else:
            r_codes, r_labels = ref.codes(c)
            k_codes, k_labels = cur.codes(c)
            r_codes, k_codes = r_codes[ref_rows], k_codes[cur_rows]
            counts = np.bincount(r_codes[r_codes >= 0], minlength=len(r_labels))
            top = [r_labels[i] for i in np.argsort(-counts, kind="stable")[: TOP - 1]]
            code_of = {label: float(i) for i, label in enumerate(top)}
            r = _recode(r_codes, r_labels, code_of)
            k = _recode(k_codes, k_labels, code_of)
            categorical.append(True)
        ref_cols.append(r)
        cur_cols.append(k)
    return np.column_stack(ref_cols), np.column_stack(cur_cols), np.asarray(categorical)


def _recode(codes: Any, labels: list[str], code_of: dict[str, float]) -> Any:
    """Codes of one side mapped to the reference's top codes (the rest and missing TOP - 1)."""
    table = np.array([code_of.get(label, TOP - 1) for label in labels] + [TOP - 1], dtype=float)
    return table[np.where(codes < 0, len(labels), codes)]


def multivariate_drift(
    reference: Any,
    current: Any,
    columns: list[str],
    kinds: dict[str, str],
    *,
    sample: int = SAMPLE,
    seed: int = 0,
) -> MultivariateDrift:
    """Domain classifier and PCA reconstruction on ``columns`` of two tables (DataFrames,
    Arrow tables, or their :class:`Columns`)."""
    out = MultivariateDrift(columns=list(columns))
    if not columns:
        out.note = "no column to compare"
        return out
    rng = np.random.default_rng(seed)
    n = min(sample, len(reference), len(current))
    if n < 50:
        out.note = f"not enough data: {n} rows a side (at least 50 are needed)"
        return out
    ref = reference if isinstance(reference, Columns) else Columns(reference)
    cur = current if isinstance(current, Columns) else Columns(current)
    ref_rows = np.sort(rng.choice(len(ref), n, replace=False))
    cur_rows = np.sort(rng.choice(len(cur), n, replace=False))
    xr, xc, categorical = _encode(ref, ref_rows, cur, cur_rows, columns, kinds)
    x = np.vstack([xr, xc])
    y = np.concatenate([np.zeros(n, dtype=bool), np.ones(n, dtype=bool)])
    terms = _out_of_fold_terms(x, y, categorical, rng)
    score = terms.sum(axis=1)
    auc = roc_auc(y, score)
    out.auc, out.rows = auc, n
    out.auc_interval = auc_interval(auc, n, n)
    out.drifted = out.auc_interval[0] > AUC_THRESHOLD
    if out.drifted:
        # a column's weight: how much AUC is lost without its term
        drops = [auc - roc_auc(y, score - terms[:, j]) for j in range(len(columns))]
        order = np.argsort(drops)[::-1][:5]
        out.top_columns = [(columns[j], float(drops[j])) for j in order]
    numeric = [i for i, c in enumerate(columns) if kinds[c] == "numeric"]
    out.pca = (
        _pca(xr[:, numeric], xc[:, numeric], rng)
        if len(numeric) >= 2
        else {"note": "fewer than two numeric columns"}
    )
    if out.pca.get("drifted"):
        out.drifted = True
    return out


def _bins(x: Any, categorical: Any, fit: Any) -> tuple[Any, int]:
    """Each value's bin (per column: numbers by the fit rows' quantiles, categories by code;
    the last bin holds missing values) and the number of bins a column may have."""
    width = max(BINS, TOP) + 1
    out = np.empty(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        col = x[:, j]
        missing = np.isnan(col)
        if categorical[j]:
            b = np.where(missing, 0, col).astype(np.int64)
        else:
            seen = col[fit][~missing[fit]]
            cuts = np.linspace(0, 1, BINS + 1)[1:-1]
            edges: Any = distinct_sorted(np.quantile(seen, cuts)) if len(seen) else np.empty(0)
            b = np.searchsorted(edges, np.where(missing, 0.0, col), side="right")
        out[:, j] = np.where(missing, width - 1, b)
    return out, width


def _out_of_fold_terms(x: Any, y: Any, categorical: Any, rng: Any) -> Any:
    """Each row's per-column naive Bayes log-odds (current vs reference), from bin counts of the
    other half of the rows (so the AUC is out of fold)."""
    half = rng.permutation(len(x)) < len(x) // 2
    terms = np.zeros(x.shape)
    for fit in (half, ~half):
        codes, width = _bins(x, categorical, fit)
        for j in range(x.shape[1]):
            c = codes[:, j]
            cur = np.bincount(c[fit & y], minlength=width) + 0.5  # Jeffreys: no log of zero
            ref = np.bincount(c[fit & ~y], minlength=width) + 0.5
            weight = np.log(cur / cur.sum()) - np.log(ref / ref.sum())
            terms[~fit, j] = weight[c[~fit]]
    return terms


def roc_auc(y: Any, score: Any) -> float:
    """The area under the ROC curve of ``score`` for the boolean ``y`` (ties count half):
    the Mann–Whitney statistic from average ranks.

    >>> roc_auc(np.array([False, False, True, True]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    order = np.argsort(score)  # the order within ties does not change their average rank
    s = np.asarray(score)[order]
    first = np.r_[True, s[1:] != s[:-1]]
    starts = np.flatnonzero(first)
    counts = np.diff(np.r_[starts, len(s)])
    average = starts + (counts + 1) / 2.0  # 1-based rank shared by each run of ties
    ranks = np.empty(len(s))
    ranks[order] = average[np.cumsum(first) - 1]
    pos = int(np.count_nonzero(y))
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return 0.5
    return float((ranks[np.asarray(y, dtype=bool)].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _pca(xr: Any, xc: Any, rng: Any) -> dict[str, Any]:
    # By hand, not nanmean/nanstd: a column with no value at all (all missing) is centred on
    # 0 and scaled by 1 quietly, where those warn of an empty slice.
    seen = ~np.isnan(xr)
    count = np.maximum(seen.sum(axis=0), 1)
    mean = np.where(seen, xr, 0.0).sum(axis=0) / count
    std = np.sqrt(np.where(seen, (xr - mean) ** 2, 0.0).sum(axis=0) / count)
    std[~(std > 0)] = 1.0
    mean[~np.isfinite(mean)] = 0.0

    def prep(a: Any) -> Any:
        z = (a - mean) / std
        return np.where(np.isfinite(z), z, 0.0)

    zr, zc = prep(xr), prep(xc)
    half = rng.permutation(len(zr))
    fit, hold = zr[half[: len(zr) // 2]], zr[half[len(zr) // 2 :]]
    center = fit.mean(axis=0)
    _, singular, axes = np.linalg.svd(fit - center, full_matrices=False)
    share = np.cumsum(singular**2) / max(float(np.sum(singular**2)), 1e-300)
    # the fewest components keeping more than 90 % of the variance (as scikit-learn's PCA)
    k = min(int(np.searchsorted(share, 0.9, side="right")) + 1, len(singular))
    basis = axes[:k]

    def errors(z: Any) -> Any:
        centered = z - center
        return np.sum((centered - centered @ basis.T @ basis) ** 2, axis=1)

    er, ec = errors(hold), errors(zc)
    ref_err, cur_err = float(er.mean()), float(ec.mean())
    se = float(np.sqrt(er.var() / len(er) + ec.var() / len(ec)))
    ratio = cur_err / ref_err if ref_err > 0 else float("inf") if cur_err > 0 else 1.0
    z = (cur_err - ref_err) / se if se > 0 else 0.0
    return {
        "components": k,
        "reference_error": ref_err,
        "current_error": cur_err,
        "ratio": ratio,
        "threshold": PCA_RATIO,
        "z": z,
        "drifted": bool(ratio >= PCA_RATIO and z > 3),
    }
