"""Known truth: five drifted features among 25 found, none of the twenty others; a
concept-drift step found quickly with no false alarm; CBPE close to realized accuracy."""

from __future__ import annotations

import numpy as np
import pytest

import keel
from keel.monitor import ADWIN, PageHinkley, estimate_performance
from tests.monitor.synthetic import DRIFTED, error_stream, table

N = 100_000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_five_drifted_features_found_and_no_other(seed: int) -> None:
    ref = table(N, seed, drift=False)
    cur = table(N, seed + 100, drift=True)
    report = keel.monitor.drift(ref, cur, multivariate=False)
    assert sorted(report.drifted_features) == sorted(DRIFTED)
    assert report.features["subtle_shift"].statistic == pytest.approx(0.1, abs=0.02)
    assert report.features["cat_new"].scores["new_categories"].details["new"] == ["f"]
    assert report.status == "drift"


@pytest.mark.parametrize("seed", [4])
def test_no_drift_flags_nothing(seed: int) -> None:
    report = keel.monitor.drift(table(N, seed, False), table(N, seed + 100, False))
    assert report.drifted_features == []
    assert report.multivariate is not None and not report.multivariate.drifted
    assert report.multivariate.auc == pytest.approx(0.5, abs=0.03)
    assert report.status == "no drift" and not report.drifted


def test_multivariate_domain_classifier_sees_the_drift() -> None:
    report = keel.monitor.drift(table(N, 7, False), table(N, 8, True))
    mv = report.multivariate
    assert mv is not None and mv.drifted
    assert mv.auc_interval is not None and mv.auc_interval[0] > 0.6
    assert mv.top_columns[0][0] == "mean_shift"


def test_pca_sees_a_broken_correlation_no_single_column_shows() -> None:
    rng = np.random.default_rng(0)
    import pandas as pd

    z = rng.normal(size=(20_000, 2))
    ref = pd.DataFrame({"a": z[:, 0], "b": 0.95 * z[:, 0] + np.sqrt(1 - 0.95**2) * z[:, 1]})
    w = rng.normal(size=(20_000, 2))
    cur = pd.DataFrame({"a": w[:, 0], "b": w[:, 1]})  # same marginals, correlation gone
    report = keel.monitor.drift(ref, cur)
    assert report.drifted_features == []
    assert report.multivariate is not None and report.multivariate.pca["drifted"]
    assert report.drifted


def test_adwin_finds_an_error_rate_step_within_500_with_no_false_alarm() -> None:
    change = 20_000
    delays = []
    for seed in range(7):
        points = ADWIN().detect(error_stream(40_000, change, seed))
        assert points, "no detection"
        assert points[0] >= change, f"false alarm at {points[0]} (seed {seed})"
        delays.append(points[0] - change)
    assert float(np.median(delays)) <= 500, delays


def test_page_hinkley_detects_the_step_too() -> None:
    # Page-Hinkley restarts after each alarm and, with its defaults, alarms on noise too
    # (docs/monitoring.md); what must hold is a detection soon after the step.
    stream = error_stream(40_000, 20_000, 0, before=0.1, after=0.5)
    points = PageHinkley().detect(stream)
    assert any(20_000 <= p < 20_500 for p in points), points[:20]


def test_performance_by_chunk_reports_the_detection_point() -> None:
    import pandas as pd

    rng = np.random.default_rng(3)
    n = 20_000
    y = rng.integers(0, 2, n)
    wrong = rng.random(n) < np.where(np.arange(n) < 10_000, 0.1, 0.2)
    cur = pd.DataFrame({"x": rng.normal(size=n), "y": y, "pred": np.where(wrong, 1 - y, y)})
    ref = cur.iloc[:5000]
    report = keel.monitor.drift(ref, cur, target="y", prediction="pred", multivariate=False)
    perf = report.performance
    assert perf is not None and perf.metric == "accuracy"
    assert perf.chunks[0]["accuracy"] == pytest.approx(0.9, abs=0.02)
    assert perf.chunks[-1]["accuracy"] == pytest.approx(0.8, abs=0.02)
    assert perf.first_detection is not None and 10_000 <= perf.first_detection < 11_000
    assert report.to_dict()["performance"]["first_detection"] == perf.first_detection


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cbpe_within_002_of_realized_accuracy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref_p = rng.beta(2, 3, 20_000)
    ref_y = rng.random(20_000) < ref_p
    cur_p = rng.beta(3, 2, 20_000)  # a different mix of rows, still calibrated
    cur_y = rng.random(20_000) < cur_p
    est = estimate_performance(cur_p, ref_p, ref_y)
    realized = float(((cur_p >= 0.5) == cur_y).mean())
    assert abs(est.accuracy - realized) <= 0.02
    assert est.accuracy_interval[0] <= realized + 0.01 <= est.accuracy_interval[1] + 0.02
    from sklearn.metrics import roc_auc_score

    assert est.auc == pytest.approx(roc_auc_score(cur_y, cur_p), abs=0.02)
    assert est.trustworthy


def test_cbpe_says_when_it_is_not_trustworthy() -> None:
    rng = np.random.default_rng(0)
    truth_p = rng.beta(2, 2, 20_000)
    y = rng.random(20_000) < truth_p
    overconfident = np.clip(truth_p + (truth_p - 0.5), 0, 1)
    raw = estimate_performance(overconfident, overconfident, y, calibrator="none")
    assert not raw.trustworthy and "not calibrated" in raw.reason
    # calibrated on the reference (the default), the same scores give a trustworthy estimate
    fixed = estimate_performance(overconfident, overconfident, y)
    realized = float(((overconfident >= 0.5) == y).mean())
    assert fixed.trustworthy and abs(fixed.accuracy - realized) <= 0.01
    assert fixed.calibrator in ("isotonic", "platt")
    assert not estimate_performance(truth_p).trustworthy  # no outcomes to check with
    one_class = estimate_performance(truth_p, truth_p, np.ones(len(truth_p)))
    assert not one_class.trustworthy and "one class" in one_class.reason
    few = estimate_performance(truth_p, truth_p[:50], y[:50])
    assert not few.trustworthy and "only 50 reference rows" in few.reason


def test_drift_estimates_performance_when_the_current_table_has_no_target() -> None:
    import pandas as pd

    rng = np.random.default_rng(0)
    p = rng.beta(2, 2, 10_000)
    ref = pd.DataFrame({"x": rng.normal(size=10_000), "score": p, "y": rng.random(10_000) < p})
    cur = pd.DataFrame({"x": rng.normal(size=10_000), "score": rng.beta(2, 2, 10_000)})
    report = keel.monitor.drift(ref, cur, target="y", prediction="score", multivariate=False)
    est = report.estimated_performance
    assert est is not None and est.trustworthy
    assert report.to_dict()["estimated_performance"]["accuracy"] == est.accuracy
    assert report.prediction is not None and not report.prediction.drifted
