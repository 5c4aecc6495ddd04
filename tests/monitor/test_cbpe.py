"""Label-free accuracy (CBPE) within 0.005 where a chunk allows it, honest intervals where not.

Below ~14,000 rows the realized accuracy of a chunk itself varies by more than
±0.005 around its expectation, so no estimator can promise 0.005 there: small
chunks are judged by whether their interval covers the realized accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest

from keel.monitor.cbpe import estimate_performance


def _world(n: int, a: float, b: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of an overconfident, biased model: the truth is p ~ Beta(a, b), the score is
    sigmoid(1.8 logit p + 0.3), so the raw scores are not probabilities."""
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, n)
    y = (rng.random(n) < p).astype(float)
    z = np.log(p / (1 - p))
    return 1 / (1 + np.exp(-(1.8 * z + 0.3))), y


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, np.ndarray]:
    return _world(100_000, 0.5, 0.5, seed=0)


@pytest.mark.parametrize(("a", "b"), [(0.5, 0.5), (0.7, 0.4), (0.4, 0.8)])
def test_chunks_of_25000_rows_land_within_0005_after_calibration(
    reference: tuple[np.ndarray, np.ndarray], a: float, b: float
) -> None:
    """The analysis period's mix of rows moves (covariate shift); P(y | score) does not."""
    scores, truth = _world(100_000, a, b, seed=1)
    est = estimate_performance(scores, *reference, chunk_size=25_000, current_truth=truth)
    assert est.trustworthy and est.calibrator in ("platt", "isotonic"), est.reason
    assert len(est.chunks) == 4
    for chunk in est.chunks:
        assert abs(chunk["accuracy"] - chunk["realized_accuracy"]) <= 0.005, chunk
    # uncalibrated, the same scores miss by far more: the calibration is what earns 0.005
    raw = estimate_performance(
        scores, *reference, chunk_size=25_000, current_truth=truth, calibrator="none"
    )
    assert max(abs(c["accuracy"] - c["realized_accuracy"]) for c in raw.chunks) > 0.02


def test_small_chunks_state_an_interval_that_covers_95_percent(
    reference: tuple[np.ndarray, np.ndarray],
) -> None:
    covered = total = 0
    for seed in range(5):
        scores, truth = _world(100_000, 0.7, 0.4, seed=10 + seed)
        est = estimate_performance(scores, *reference, chunk_size=1_000, current_truth=truth)
        for chunk in est.chunks:
            lo, hi = chunk["accuracy_interval"]
            covered += lo <= chunk["realized_accuracy"] <= hi
            total += 1
    assert total == 500 and covered >= 0.95 * total


def _index_split(X: np.ndarray, y: np.ndarray, model: object) -> tuple[np.ndarray, ...]:
    """Train on the first third, calibrate on the second (the reference), estimate the last."""
    n = len(y)
    a, b = n // 3, 2 * n // 3
    model.fit(X[:a], y[:a])  # type: ignore[attr-defined]
    s = model.predict_proba(X)[:, 1]  # type: ignore[attr-defined]
    return s[b:], s[a:b], y[a:b], y[b:]


def _models() -> list[object]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        HistGradientBoostingClassifier(max_iter=50, random_state=0),
    ]


@pytest.mark.parametrize("which", [0, 1], ids=["logistic", "boosting"])
def test_real_data_breast_cancer_interval_covers_the_realized_accuracy(which: int) -> None:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    current, ref, ref_y, truth = _index_split(X, y, _models()[which])
    est = estimate_performance(current, ref, ref_y, chunk_size=None, current_truth=truth)
    lo, hi = est.accuracy_interval
    assert est.trustworthy, est.reason
    assert lo <= est.realized_accuracy <= hi
    assert abs(est.accuracy - est.realized_accuracy) <= 0.02


def test_real_data_digits_interval_covers_the_realized_accuracy() -> None:
    from sklearn.datasets import load_digits

    X, digit = load_digits(return_X_y=True)
    current, ref, ref_y, truth = _index_split(X, (digit >= 5).astype(int), _models()[1])
    est = estimate_performance(current, ref, ref_y, chunk_size=None, current_truth=truth)
    lo, hi = est.accuracy_interval
    assert est.trustworthy and lo <= est.realized_accuracy <= hi
    assert abs(est.accuracy - est.realized_accuracy) <= 0.02


def test_real_data_phishing_chunks_are_each_covered() -> None:
    """UCI's phishing websites, as river ships them, in their order: chunks of 104 rows."""
    from river import datasets

    rows = list(datasets.Phishing())
    keys = list(rows[0][0])
    X = np.array([[r[0][k] for k in keys] for r in rows], dtype=float)
    y = np.array([int(r[1]) for r in rows])
    current, ref, ref_y, truth = _index_split(X, y, _models()[1])
    est = estimate_performance(current, ref, ref_y, chunk_size=104, current_truth=truth)
    assert est.trustworthy
    for chunk in est.chunks:
        lo, hi = chunk["accuracy_interval"]
        assert lo <= chunk["realized_accuracy"] <= hi, chunk
    assert abs(est.accuracy - est.realized_accuracy) <= 0.02


def test_scores_that_cannot_be_calibrated_get_a_flag_not_a_number_to_trust() -> None:
    rng = np.random.default_rng(3)
    s = rng.random(5_000)
    one_class = estimate_performance(s, s, np.zeros(5_000))
    assert not one_class.trustworthy and "one class" in one_class.reason
    few = estimate_performance(s, s[:40], (s[:40] > 0.5).astype(float))
    assert not few.trustworthy and "only 40 reference rows" in few.reason
