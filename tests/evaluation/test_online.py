"""Online evaluation: outcomes joined to predictions once each, judged like offline evaluation."""

from __future__ import annotations

import time

import numpy as np
import pytest

from keel.evaluation.online import join, online_results
from keel.evaluation.outcomes import ValueMatrix
from keel.store.logs import LogWriter


def log_predictions(ws, version, arm, preds, start=0, served=True, scores=None, request="r"):
    n = len(preds)
    writer = LogWriter(ws.logs.root)
    writer.append(
        "predictions",
        "churn",
        {
            "ts": [time.time()] * n,
            "request_id": [f"{request}{start + i}" for i in range(n)],
            "prediction_id": [f"p{start + i}" for i in range(n)],
            "version": [version] * n,
            "arm": [arm] * n,
            "served": [served] * n,
            "deployment": [None] * n,
            "latency_ms": [1.0 + i % 3 for i in range(n)],
            "error": [None] * n,
            "key": [None] * n,
            "prediction": [float(p) for p in preds],
            "label": [None] * n,
            "score": scores if scores is not None else [None] * n,
        },
    )
    writer.flush()


def log_outcomes(ws, ids, outcomes):
    writer = LogWriter(ws.logs.root)
    writer.append(
        "outcomes",
        "churn",
        {
            "ts": [time.time()] * len(ids),
            "prediction_id": ids,
            "outcome": outcomes,
            "outcome_label": [None] * len(ids),
        },
    )
    writer.flush()


def test_join_first_outcome_wins_and_unknown_ids_join_nothing(ws):
    log_predictions(ws, 1, "champion", [1, 0, 1])
    log_outcomes(ws, ["p0", "p1", "zzz"], [1.0, 1.0, 0.0])
    log_outcomes(ws, ["p0"], [0.0])  # a late, different answer for p0: ignored
    joined = join("churn", workspace=ws).set_index("prediction_id")
    assert joined["outcome"].to_dict() == {"p0": 1.0, "p1": 1.0}
    assert len(join("churn", workspace=ws, how="left")) == 3
    result = online_results(ws, "churn")
    assert result.unmatched_outcomes == 1 and result.duplicate_outcomes == 1
    arm = result.arm("champion")
    assert (arm.requests, arm.predictions, arm.outcomes) == (3, 3, 2)
    assert arm.metric == "accuracy" and arm.metric_value == 0.5


def test_value_per_arm_with_an_interval_and_offline_definitions(ws):
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 400)
    good = np.where(rng.random(400) < 0.9, truth, 1 - truth)
    log_predictions(ws, 1, "champion", good[:200], start=0)
    log_predictions(ws, 2, "challenger", good[200:], start=200)
    log_outcomes(ws, [f"p{i}" for i in range(400)], truth.astype(float).tolist())
    value = ValueMatrix(tp=100, fp=-10, fn=-50, tn=0)
    result = online_results(ws, "churn", outcome=value)
    for arm, rows in (("champion", slice(0, 200)), ("challenger", slice(200, 400))):
        a = result.arm(arm)
        expected = value.per_row(good[rows], truth[rows])
        assert a.metric == "value per prediction"
        assert a.metric_value == pytest.approx(expected.mean())
        assert a.value_total == pytest.approx(expected.sum())
        lo, hi = a.metric_interval
        assert lo < a.metric_value < hi
        assert a.metrics["accuracy"] == pytest.approx((good[rows] == truth[rows]).mean())


def test_no_logs_is_empty(ws):
    assert join("churn", workspace=ws).empty
    assert online_results(ws, "churn").arms == []


def test_an_accuracy_interval_stays_inside_0_and_1(ws):
    """49 of 50 right: the normal interval reached 1.008; Wilson's stays below 1."""
    truth = np.ones(50)
    predicted = truth.copy()
    predicted[0] = 0
    log_predictions(ws, 1, "champion", predicted)
    log_outcomes(ws, [f"p{i}" for i in range(50)], truth.tolist())
    arm = online_results(ws, "churn").arm("champion")
    assert arm.metric == "accuracy" and arm.metric_value == pytest.approx(0.98)
    lo, hi = arm.metric_interval
    assert 0.89 < lo < 0.98 < hi < 1.0


def test_online_decisions_are_taken_at_the_offline_threshold(ws):
    """Online accuracy at 0.5 beside offline accuracy at an optimized threshold compared two
    different decision rules; both are now at the offline evaluation's threshold."""
    import pandas as pd

    import keel
    from tests.evaluation.helpers import ColumnScore, log

    rng = np.random.default_rng(4)
    truth = rng.integers(0, 2, 400)
    scores = np.clip(0.25 + 0.3 * truth + rng.normal(0, 0.15, 400), 0, 1)
    frame = pd.DataFrame({"s": scores, "y": truth})
    assert log(ws, ColumnScore("s"), "churn", frame[["s"]]) == "churn/v1"
    ev = keel.evaluate("churn/v1", data=frame, target="y", workspace=ws, threshold=0.4)
    assert ev.threshold == 0.4
    log_predictions(ws, 1, "champion", (scores >= 0.5).astype(int), scores=scores.tolist())
    log_outcomes(ws, [f"p{i}" for i in range(400)], truth.astype(float).tolist())
    arm = online_results(ws, "churn").arm("champion")
    assert arm.threshold == 0.4
    assert arm.metric_value == pytest.approx(((scores >= 0.4) == truth).mean())
    assert arm.metric_value == pytest.approx(ev.metrics["accuracy"])  # the same rows, one rule


def test_a_caller_gives_the_offline_evaluation_and_it_is_read_once(ws, monkeypatch):
    """`keel deploy status` shows each version's offline evaluation and takes the online
    decisions at its threshold: one lookup per version serves both."""
    import pandas as pd

    import keel
    from keel.deploy.status import deployment_status
    from keel.evaluation import records
    from keel.evaluation.online import offline_threshold
    from tests.evaluation.helpers import ColumnScore, log

    rng = np.random.default_rng(5)
    truth = rng.integers(0, 2, 200)
    scores = np.clip(0.25 + 0.3 * truth + rng.normal(0, 0.15, 200), 0, 1)
    frame = pd.DataFrame({"s": scores, "y": truth})
    log(ws, ColumnScore("s"), "churn", frame[["s"]])
    ev = keel.evaluate("churn/v1", data=frame, target="y", workspace=ws, threshold=0.4)
    log_predictions(ws, 1, "champion", (scores >= 0.5).astype(int), scores=scores.tolist())
    log_outcomes(ws, [f"p{i}" for i in range(200)], truth.astype(float).tolist())

    assert records.newest_evaluation(ws, "churn", 1)["id"] == ev.id
    assert records.newest_evaluation(ws, "churn", 7) is None  # no such version: no evaluation
    assert offline_threshold(ws, "churn", 1) == 0.4 and offline_threshold(ws, "churn", 7) is None

    asked: list[int] = []
    real = records.newest_evaluation

    def counted(ws_, model, version):
        asked.append(version)
        return real(ws_, model, version)

    monkeypatch.setattr(records, "newest_evaluation", counted)
    status = deployment_status(ws, "churn")
    (arm,) = status["arms"]
    assert arm["offline"]["evaluation"] == ev.id and arm["threshold"] == 0.4
    assert asked == [1]
