"""Confidence-based performance estimation (CBPE) for binary classifiers.

When a classifier's probabilities are calibrated, a row scored ``p`` is positive
with probability ``p``: a positive decision is correct with probability ``p``
and a negative one with ``1 - p``. The expected accuracy of a chunk of rows is
the mean of that, and the expected ROC curve weighs each row as ``p`` of a
positive and ``1 - p`` of a negative. Raw scores are seldom calibrated, so the
reference period (rows with outcomes) first fits a calibrator from score to
probability: isotonic regression, Platt scaling or none, whichever has the
lowest cross-validated Brier score there. The model's decisions stay its own
(its score against ``threshold``, or the labels it gave); only the probability
that each decision is right comes from the calibrator.

The estimate is only as good as the calibration, so it says when not to trust
it: when the calibrated reference still misfits out of fold, or when a chunk's
scores leave the range the reference covers (the calibration would be
extrapolated there).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = rng.beta(2, 2, 50_000); y = rng.random(50_000) < p
>>> est = estimate_performance(p, p, y)
>>> bool(abs(est.accuracy - ((p >= 0.5) == y).mean()) < 0.01), est.trustworthy
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.errors import InvalidInput

__all__ = [
    "CALIBRATORS",
    "EstimatedPerformance",
    "calibration_error",
    "estimate_performance",
    "expected_auc",
]

CALIBRATORS = ("auto", "isotonic", "platt", "none")
CHUNK_ROWS = 5_000  # rows of each chunk estimated, by default
MIN_REFERENCE_ROWS = 100
CV_FOLDS = 5  # interleaved folds of the reference that choose and check the calibrator
BINS = 10  # equal-mass score bins of the out-of-fold calibration check
# The out-of-fold calibration error may exceed what a perfectly calibrated model shows by
# chance (``2 x noise``) by at most this much; the expected accuracy on the reference may
# miss the realized one by at most MAX_REFERENCE_GAP beyond three standard errors.
MAX_CALIBRATION_ERROR = 0.005
MAX_REFERENCE_GAP = 0.002
# Scores outside the reference's 0.1st..99.9th percentiles: 0.2% of rows when nothing moved.
SUPPORT_QUANTILE = 0.001
MAX_OUTSIDE_REFERENCE = 0.05
_Z = 1.959963984540054  # the 97.5th normal percentile: 95% intervals
_EPS = 1e-6  # scores are clipped to [eps, 1 - eps] before the logit of Platt scaling


@dataclass
class EstimatedPerformance:
    """Expected accuracy and AUC of a window without its outcomes, and whether to trust them.

    ``chunks`` holds the same estimate for consecutive chunks of the window (each with
    ``start``, ``rows``, ``accuracy``, ``accuracy_interval``, ``standard_error``, ``auc``,
    ``outside_reference``, ``trustworthy``, ``reason``, and ``realized_accuracy`` when the
    outcomes were given to compare).
    """

    accuracy: float
    accuracy_interval: tuple[float, float]
    auc: float
    threshold: float
    rows: int
    trustworthy: bool
    reason: str
    calibration: dict[str, Any] = field(default_factory=dict)
    calibrator: str = "none"
    standard_error: float = 0.0
    chunks: list[dict[str, Any]] = field(default_factory=list)
    realized_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "cbpe",
            "accuracy": self.accuracy,
            "accuracy_interval": list(self.accuracy_interval),
            "standard_error": self.standard_error,
            "auc": self.auc,
            "threshold": self.threshold,
            "rows": self.rows,
            "trustworthy": self.trustworthy,
            "reason": self.reason,
            "calibrator": self.calibrator,
            "calibration": self.calibration,
            "chunks": self.chunks,
            "realized_accuracy": self.realized_accuracy,
        }


# -- calibrators: score -> probability, and how uncertain the fit leaves a mean ----------


class _Identity:
    kind = "none"

    def predict(self, s: Any) -> Any:
        return s

    def mean_variance(self, s: Any, sign: Any) -> float:
        return 0.0


class _Platt:
    """``p = 1 / (1 + exp(-(a + b logit(s))))``, fitted by (unpenalised) logistic regression.
    Its uncertainty is the delta method on the inverse Fisher information of ``(a, b)``."""

    kind = "platt"

    def __init__(self, levels: Any, rows: Any, positives: Any) -> None:
        from sklearn.linear_model import LogisticRegression

        # One weighted row per (score, outcome) pair: the same likelihood, far fewer rows.
        z = _logit(levels)
        x = np.r_[z, z][:, None]
        y = np.r_[np.ones(len(z)), np.zeros(len(z))]
        w = np.r_[positives, rows - positives]
        model = LogisticRegression(C=1e6, solver="newton-cholesky", max_iter=100)
        model.fit(x[w > 0], y[w > 0], sample_weight=w[w > 0])
        self.a = float(model.intercept_[0])
        self.b = float(model.coef_[0, 0])
        p = self.predict(levels)
        f = rows * p * (1 - p)
        info = np.array([[f.sum(), (f * z).sum()], [(f * z).sum(), (f * z * z).sum()]])
        self.cov = np.linalg.pinv(info)

    def predict(self, s: Any) -> Any:
        return 1 / (1 + np.exp(-(self.a + self.b * _logit(s))))

    def mean_variance(self, s: Any, sign: Any) -> float:
        p = self.predict(s)
        d = sign * p * (1 - p)
        grad = np.array([d.mean(), (d * _logit(s)).mean()])
        return float(max(grad @ self.cov @ grad, 0.0))


class _Isotonic:
    """The monotone step function of score that fits the outcomes best (pool adjacent
    violators). Its uncertainty treats each pooled block as a binomial sample: the rows of
    a chunk in one block share that block's error, so their signed count is squared."""

    kind = "isotonic"

    def __init__(self, levels: Any, rows: Any, positives: Any) -> None:
        from sklearn.isotonic import IsotonicRegression

        self.model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        self.model.fit(levels, positives / rows, sample_weight=rows)
        fitted = self.model.predict(levels)
        starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
        n = np.add.reduceat(rows, starts)
        q = (np.add.reduceat(positives, starts) + 1) / (n + 2)  # a block of 3 is not certain
        self.upper = levels[np.r_[starts[1:] - 1, len(levels) - 1]]
        self.block_variance = q * (1 - q) / n

    def predict(self, s: Any) -> Any:
        return np.asarray(self.model.predict(s), dtype=float)

    def mean_variance(self, s: Any, sign: Any) -> float:
        block = np.minimum(np.searchsorted(self.upper, s, side="left"), len(self.upper) - 1)
        signed = np.bincount(block, weights=sign, minlength=len(self.upper)) / len(s)
        return float(np.sum(signed**2 * self.block_variance))


_Calibrator = _Identity | _Platt | _Isotonic


def _fit(kind: str, s: Any, y: Any) -> _Calibrator:
    if kind == "none":
        return _Identity()
    levels, inverse = np.unique(s, return_inverse=True)
    rows = np.bincount(inverse).astype(float)
    positives = np.bincount(inverse, weights=y)
    return (_Platt if kind == "platt" else _Isotonic)(levels, rows, positives)


def _logit(s: Any) -> Any:
    c = np.clip(np.asarray(s, dtype=float), _EPS, 1 - _EPS)
    return np.log(c / (1 - c))


def _out_of_fold(kind: str, s: Any, y: Any) -> Any:
    """Each reference row's probability from a calibrator fitted without its fold."""
    if kind == "none":
        return s
    fold = np.arange(len(s)) % CV_FOLDS
    out = np.empty(len(s))
    for k in range(CV_FOLDS):
        test = fold == k
        out[test] = _fit(kind, s[~test], y[~test]).predict(s[test])
    return out


# -- the pieces of an estimate -------------------------------------------------------------


def _probabilities(values: Any, what: str) -> Any:
    p = np.asarray(values, dtype=float)
    if p.ndim != 1:
        raise InvalidInput(f"{what} must be one column of probabilities, not shape {p.shape}")
    finite = p[~np.isnan(p)]
    if (finite < 0).any() or (finite > 1).any():
        raise InvalidInput(f"{what} holds values outside 0..1; CBPE needs probabilities")
    return p


def _binary(values: Any, what: str, n: int) -> Any:
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be 0/1 (or true/false) for each row, not text")
    if v.shape != (n,):
        raise InvalidInput(f"{what} has {v.size} values for {n} scores: expected one per row")
    bad = ~np.isnan(v) & (v != 0) & (v != 1)
    if bad.any():
        raise InvalidInput(
            f"{what} holds {v[bad][0]!r}: expected 0/1 (or true/false) for each row"
        )
    return v


def expected_accuracy(p: Any, threshold: float = 0.5) -> tuple[float, float]:
    """Expected accuracy and its standard error when the decision is ``p >= threshold``."""
    correct = np.where(p >= threshold, p, 1 - p)
    mean = float(correct.mean())
    se = float(np.sqrt(np.sum(correct * (1 - correct))) / len(correct))
    return mean, se


def expected_auc(p: Any, scores: Any | None = None) -> float:
    """Expected AUC when each row is a positive with probability ``p``, ranked by ``scores``
    (by ``p`` itself when not given)."""
    p = np.asarray(p, dtype=float)
    rank = p if scores is None else np.asarray(scores, dtype=float)
    _values, inverse = np.unique(rank, return_inverse=True)
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


def _score_bin_error(s: Any, p: Any, y: Any) -> tuple[float, float]:
    """The row-weighted gap between probability and outcome rate over equal-mass bins of the
    raw score, and what that gap is expected to be by chance alone for calibrated ``p``.

    Binning by score, not by probability, also catches scores whose relation to the outcome
    is not monotone: isotonic regression pools such a stretch into one probability, which
    fits on average and misses in each part.
    """
    edges = np.unique(np.quantile(s, np.linspace(0, 1, BINS + 1)[1:-1]))
    idx = np.searchsorted(edges, s, side="right")
    nb = len(edges) + 1
    gap = np.bincount(idx, weights=y - p, minlength=nb)
    var = np.bincount(idx, weights=p * (1 - p), minlength=nb)
    n = len(s)
    return float(np.abs(gap).sum() / n), float(math.sqrt(2 / math.pi) * np.sqrt(var).sum() / n)


def _chunk(
    s: Any,
    p: Any,
    decision: Any,
    cal: _Calibrator,
    start: int,
    support: tuple[float, float] | None,
    truth: Any | None,
) -> dict[str, Any]:
    correct = np.where(decision, p, 1 - p)
    n = len(s)
    acc = float(correct.mean())
    sign = np.where(decision, 1.0, -1.0)
    se = math.sqrt(float(np.sum(correct * (1 - correct))) / n**2 + cal.mean_variance(s, sign))
    out: dict[str, Any] = {
        "start": start,
        "rows": n,
        "accuracy": acc,
        "accuracy_interval": [max(acc - _Z * se, 0.0), min(acc + _Z * se, 1.0)],
        "standard_error": se,
        "auc": expected_auc(p, s),
    }
    if support is not None:
        lo, hi = support
        outside = float(np.mean((s < lo) | (s > hi)))
        out["outside_reference"] = outside
        out["trustworthy"] = outside <= MAX_OUTSIDE_REFERENCE
        out["reason"] = (
            f"{outside:.1%} of the scores lie outside the reference's {lo:.4g}..{hi:.4g} "
            f"(its 0.1st to 99.9th percentile; at most {MAX_OUTSIDE_REFERENCE:.0%} allowed): "
            "the calibration is extrapolated there"
            if outside > MAX_OUTSIDE_REFERENCE
            else "within the reference's scores"
        )
    if truth is not None:
        out["realized_accuracy"] = float(np.mean(decision == (truth == 1)))
    return out


@dataclass
class _Check:
    calibrator: _Calibrator
    trustworthy: bool
    reason: str
    details: dict[str, Any]
    support: tuple[float, float] | None


def _check_reference(
    reference: Any | None,
    reference_truth: Any | None,
    reference_labels: Any | None,
    threshold: float,
    calibrator: str,
) -> _Check:
    """Choose and fit the calibrator on the reference, and judge how well it fits there."""
    if reference is None or reference_truth is None:
        return _Check(
            _Identity(),
            False,
            "the reference has no outcomes, so calibration could not be checked",
            {"checked": False},
            None,
        )
    rs = _probabilities(reference, "the reference prediction column")
    ry = _binary(reference_truth, "the reference outcomes", len(rs))
    rl = (
        None
        if reference_labels is None
        else _binary(reference_labels, "the reference labels", len(rs))
    )
    keep = ~(np.isnan(rs) | np.isnan(ry) | (np.isnan(rl) if rl is not None else False))
    rs, ry = rs[keep], ry[keep]
    decision = rs >= threshold if rl is None else rl[keep] == 1
    n = len(rs)
    if n < MIN_REFERENCE_ROWS:
        return _Check(
            _Identity(),
            False,
            f"only {n} reference rows with outcomes; at least {MIN_REFERENCE_ROWS} are needed",
            {"checked": False, "rows": n},
            None,
        )
    minority = int(min(ry.sum(), n - ry.sum()))
    if calibrator != "none" and minority < 2 * CV_FOLDS:
        return _Check(
            _Identity(),
            False,
            f"the reference outcomes hold only {minority} rows of one class; at least "
            f"{2 * CV_FOLDS} of each are needed to calibrate",
            {"checked": False, "rows": n},
            None,
        )
    kinds = ("none", "platt", "isotonic") if calibrator == "auto" else (calibrator,)
    oof = {k: _out_of_fold(k, rs, ry) for k in kinds}
    brier = {k: float(np.mean((v - ry) ** 2)) for k, v in oof.items()}
    kind = min(kinds, key=lambda k: brier[k])  # ties go to the simpler, listed first
    p = oof[kind]
    ece, noise = _score_bin_error(rs, p, ry)
    correct = np.where(decision, p, 1 - p)
    expected_ref = float(correct.mean())
    realized_ref = float(np.mean(decision == (ry == 1)))
    se_ref = float(np.sqrt(np.sum(correct * (1 - correct))) / n)
    gap = abs(expected_ref - realized_ref)
    max_ece = MAX_CALIBRATION_ERROR + 2 * noise
    max_gap = MAX_REFERENCE_GAP + 3 * se_ref
    fits = ece <= max_ece and gap <= max_gap
    lo, hi = (float(v) for v in np.quantile(rs, [SUPPORT_QUANTILE, 1 - SUPPORT_QUANTILE]))
    details = {
        "checked": True,
        "calibrator": kind,
        "cv_brier": brier,
        "calibration_error": ece,
        "calibration_noise": noise,
        "max_calibration_error": max_ece,
        "reference_expected_accuracy": expected_ref,
        "reference_realized_accuracy": realized_ref,
        "reference_gap": gap,
        "max_gap": max_gap,
        "reference_score_range": [lo, hi],
        "rows": n,
    }
    how = "raw scores" if kind == "none" else f"{kind} calibration"
    chosen = " (lowest cross-validated Brier score)" if calibrator == "auto" else ""
    measured = (
        f"out of fold: calibration error {ece:.3f} (at most {max_ece:.3f}), expected "
        f"accuracy {expected_ref:.3f} vs realized {realized_ref:.3f} (gap at most {max_gap:.3f})"
    )
    reason = (
        f"calibrated on the reference with {how}{chosen}; {measured}"
        if fits
        else f"not calibrated on the reference even with {how}{chosen}; {measured}; "
        "the estimate is not trustworthy"
    )
    return _Check(_fit(kind, rs, ry), fits, reason, details, (lo, hi))


def estimate_performance(
    current: Any,
    reference: Any | None = None,
    reference_truth: Any | None = None,
    threshold: float = 0.5,
    *,
    calibrator: str = "auto",
    chunk_size: int | None = CHUNK_ROWS,
    current_labels: Any | None = None,
    reference_labels: Any | None = None,
    current_truth: Any | None = None,
) -> EstimatedPerformance:
    """CBPE of ``current`` scores, calibrated on ``reference`` scores with their outcomes.

    Parameters
    ----------
    current
        The model's scores (probabilities of the positive class) for the window.
    reference, reference_truth
        Scores and 0/1 outcomes of the reference period: the calibrator is fitted, and the
        estimate checked, there. Without them the scores are taken as they are and the
        estimate is marked not trustworthy.
    threshold
        The model decides positive when its score is at least this.
    calibrator
        ``"auto"`` (the lowest 5-fold cross-validated Brier score on the reference of the
        three), ``"isotonic"``, ``"platt"`` or ``"none"``.
    chunk_size
        Rows of each consecutive chunk estimated on its own (the last may be smaller);
        ``None`` for the whole window as one chunk.
    current_labels, reference_labels
        The model's 0/1 decisions, when they do not come from ``threshold`` (give both).
    current_truth
        Outcomes of the window, if they have arrived: each chunk then carries its realized
        accuracy beside the estimate, to compare.

    The interval of a chunk is normal, from the variance of its number of correct rows (a sum
    of independent Bernoulli variables, each right with its calibrated probability) plus the
    variance the calibrator's own fit leaves in the mean (isotonic: each pooled block a
    binomial sample of the reference; Platt: the delta method on its two coefficients). It
    is an interval for the realized accuracy of those rows, not only for its expectation.
    """
    if calibrator not in CALIBRATORS:
        raise InvalidInput(
            f"unknown calibrator {calibrator!r}: expected one of {', '.join(CALIBRATORS)}"
        )
    if not 0 < threshold < 1:
        raise InvalidInput(f"invalid threshold {threshold!r}: expected a number in (0, 1)")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1
    ):
        raise InvalidInput(f"invalid chunk_size {chunk_size!r}: expected a whole number >= 1")
    if current_labels is not None and reference_truth is not None and reference_labels is None:
        raise InvalidInput(
            "current_labels were given without reference_labels: the reference check needs "
            "the model's decisions there too"
        )
    s = _probabilities(current, "the current prediction column")
    n_all = len(s)
    labels = None if current_labels is None else _binary(current_labels, "the labels", n_all)
    truth = None if current_truth is None else _binary(current_truth, "the outcomes", n_all)
    keep = ~np.isnan(s)
    for extra in (labels, truth):
        if extra is not None:
            keep &= ~np.isnan(extra)
    s = s[keep]
    if not len(s):
        raise InvalidInput("the current prediction column has no probabilities (all missing)")
    decision = s >= threshold if labels is None else labels[keep] == 1
    truth = None if truth is None else truth[keep]

    check = _check_reference(reference, reference_truth, reference_labels, threshold, calibrator)
    cal = check.calibrator
    p = cal.predict(s)
    whole = _chunk(s, p, decision, cal, 0, check.support, truth)
    size = chunk_size or len(s)
    chunks = [
        _chunk(
            s[i : i + size],
            p[i : i + size],
            decision[i : i + size],
            cal,
            i,
            check.support,
            None if truth is None else truth[i : i + size],
        )
        for i in range(0, len(s), size)
    ]
    trustworthy, reason = check.trustworthy, check.reason
    if trustworthy:
        outside = [c for c in [whole, *chunks] if not c.get("trustworthy", True)]
        if outside:
            trustworthy = False
            worst = max(outside, key=lambda c: c["outside_reference"])
            where = "the window" if worst is whole else f"the chunk from row {worst['start']:,}"
            reason = (
                f"{len([c for c in chunks if not c['trustworthy']])} of {len(chunks)} chunks "
                f"leave the reference's scores; in {where} {worst['reason']}; {reason}"
            )
    if not trustworthy:
        for c in chunks:
            if c.get("trustworthy", True):
                c["trustworthy"] = False
                c["reason"] = "the calibration is not trustworthy (see the estimate's reason)"
    lo, hi = whole["accuracy_interval"]
    return EstimatedPerformance(
        accuracy=whole["accuracy"],
        accuracy_interval=(lo, hi),
        auc=whole["auc"],
        threshold=threshold,
        rows=len(s),
        trustworthy=trustworthy,
        reason=reason,
        calibration=check.details,
        calibrator=cal.kind,
        standard_error=whole["standard_error"],
        chunks=chunks,
        realized_accuracy=whole.get("realized_accuracy"),
    )
