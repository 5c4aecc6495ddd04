"""Multivariate drift: shifts of the joint distribution that no single column shows.

Two views. A **domain classifier** (gradient-boosted trees) learns to tell
reference rows from current ones; its out-of-fold AUC is 0.5 when they cannot
be told apart, with a Hanley–McNeil interval. **PCA reconstruction error**:
principal components fitted on half the reference (enough to keep 90 % of the
variance) reconstruct the other half and the current rows; a broken
correlation shows as a larger error. Both subsample for speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MultivariateDrift", "multivariate_drift"]

AUC_THRESHOLD = 0.55  # drift when the interval's lower end is above it
PCA_RATIO = 1.1  # drift when the current error is 10 % above the reference's, beyond noise
SAMPLE = 10_000  # rows a side
TOP = 50  # categories encoded per column; the rest share one code


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


def _encode(ref: Any, cur: Any, columns: list[str], kinds: dict[str, str]) -> tuple[Any, Any, Any]:
    import pandas as pd

    ref_cols, cur_cols, categorical = [], [], []
    for c in columns:
        if kinds[c] == "numeric":
            r = pd.to_numeric(ref[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan).copy()
            k = pd.to_numeric(cur[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan).copy()
            r[~np.isfinite(r)] = np.nan
            k[~np.isfinite(k)] = np.nan
            categorical.append(False)
        else:
            rs = ref[c].astype(str).where(ref[c].notna(), None)
            top = rs.value_counts().index[: TOP - 1]
            codes = {v: i for i, v in enumerate(top)}
            r = rs.map(codes).fillna(TOP - 1).to_numpy(dtype=float)
            ks = cur[c].astype(str).where(cur[c].notna(), None)
            k = ks.map(codes).fillna(TOP - 1).to_numpy(dtype=float)
            categorical.append(True)
        ref_cols.append(r)
        cur_cols.append(k)
    return np.column_stack(ref_cols), np.column_stack(cur_cols), np.asarray(categorical)


def multivariate_drift(
    reference: Any,
    current: Any,
    columns: list[str],
    kinds: dict[str, str],
    *,
    sample: int = SAMPLE,
    seed: int = 0,
) -> MultivariateDrift:
    """Domain classifier and PCA reconstruction on ``columns`` of two DataFrames."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    out = MultivariateDrift(columns=list(columns))
    if not columns:
        out.note = "no column to compare"
        return out
    rng = np.random.default_rng(seed)
    n = min(sample, len(reference), len(current))
    if n < 50:
        out.note = f"not enough data: {n} rows a side (at least 50 are needed)"
        return out
    ref = reference.iloc[np.sort(rng.choice(len(reference), n, replace=False))]
    cur = current.iloc[np.sort(rng.choice(len(current), n, replace=False))]
    xr, xc, categorical = _encode(ref, cur, columns, kinds)
    x = np.vstack([xr, xc])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    model = HistGradientBoostingClassifier(
        max_iter=60,
        max_leaf_nodes=15,
        learning_rate=0.1,
        categorical_features=categorical if categorical.any() else None,
        early_stopping=False,
        random_state=seed,
    )
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: on a busy machine, spinning threads cost more than they give.
    with threadpool_limits(1, user_api="openmp"):
        proba = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, proba))
    out.auc, out.rows = auc, n
    out.auc_interval = auc_interval(auc, n, n)
    out.drifted = out.auc_interval[0] > AUC_THRESHOLD
    if out.drifted:
        with threadpool_limits(1, user_api="openmp"):
            out.top_columns = _importance(model, x, y, columns, rng)
    numeric = [i for i, c in enumerate(columns) if kinds[c] == "numeric"]
    out.pca = (
        _pca(xr[:, numeric], xc[:, numeric], rng)
        if len(numeric) >= 2
        else {"note": "fewer than two numeric columns"}
    )
    if out.pca.get("drifted"):
        out.drifted = True
    return out


def _importance(
    model: Any, x: Any, y: Any, columns: list[str], rng: Any
) -> list[tuple[str, float]]:
    """The columns that tell the two tables apart best (drop in AUC when shuffled)."""
    from sklearn.inspection import permutation_importance

    # Fitted on one half, judged on the other: a few thousand rows rank columns well enough.
    idx = rng.permutation(len(x))[: min(len(x), 6000)]
    fit, judge = idx[: len(idx) // 2], idx[len(idx) // 2 :]
    model.fit(x[fit], y[fit])
    imp = permutation_importance(
        model, x[judge], y[judge], scoring="roc_auc", n_repeats=1, random_state=0
    )
    order = np.argsort(-imp.importances_mean)[:5]
    return [(columns[i], float(imp.importances_mean[i])) for i in order]


def _pca(xr: Any, xc: Any, rng: Any) -> dict[str, Any]:
    from sklearn.decomposition import PCA

    mean = np.nanmean(xr, axis=0)
    std = np.nanstd(xr, axis=0)
    std[~(std > 0)] = 1.0
    mean[~np.isfinite(mean)] = 0.0

    def prep(a: Any) -> Any:
        z = (a - mean) / std
        return np.where(np.isfinite(z), z, 0.0)

    zr, zc = prep(xr), prep(xc)
    half = rng.permutation(len(zr))
    fit, hold = zr[half[: len(zr) // 2]], zr[half[len(zr) // 2 :]]
    pca = PCA(n_components=0.9, svd_solver="full").fit(fit)

    def errors(z: Any) -> Any:
        return np.sum((z - pca.inverse_transform(pca.transform(z))) ** 2, axis=1)

    er, ec = errors(hold), errors(zc)
    ref_err, cur_err = float(er.mean()), float(ec.mean())
    se = float(np.sqrt(er.var() / len(er) + ec.var() / len(ec)))
    ratio = cur_err / ref_err if ref_err > 0 else float("inf") if cur_err > 0 else 1.0
    z = (cur_err - ref_err) / se if se > 0 else 0.0
    return {
        "components": int(pca.n_components_),
        "reference_error": ref_err,
        "current_error": cur_err,
        "ratio": ratio,
        "threshold": PCA_RATIO,
        "z": z,
        "drifted": bool(ratio >= PCA_RATIO and z > 3),
    }
