"""Outcome definitions and the value-maximizing threshold, against hand-computed truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keel
from keel.errors import InvalidInput
from keel.evaluation import AsymmetricCost, RowValue, ValueMatrix
from keel.evaluation.threshold import optimal_threshold, value_curve
from keel.workspace import Workspace
from tests.evaluation.helpers import ColumnScore, count_evaluations, log

VALUE = ValueMatrix(tp=120.0, fp=-15.0, fn=-80.0, tn=0.0)

# Ten rows with known scores. At the threshold 0.5 (positive when score >= 0.5):
#   TP: 0.9, 0.7, 0.5   FP: 0.8, 0.6   FN: 0.3   TN: 0.4, 0.2, 0.1, 0.05
# value = 3*120 + 2*(-15) + 1*(-80) + 4*0 = 250, per decision 25.
# Every cut by hand (pos = 4, neg = 6):
#   t     TP FP FN TN  total
#   inf    0  0  4  6  -320
#   0.9    1  0  3  6  -120
#   0.8    1  1  3  5  -135
#   0.7    2  1  2  5    65
#   0.6    2  2  2  4    50
#   0.5    3  2  1  4   250
#   0.4    3  3  1  3   235
#   0.3    4  3  0  3   435   <- best
#   0.2    4  4  0  2   420
#   0.1    4  5  0  1   405
#   0.05   4  6  0  0   390
TABLE = pd.DataFrame(
    {
        "s": [0.9, 0.7, 0.8, 0.6, 0.3, 0.2, 0.1, 0.5, 0.4, 0.05],
        "y": [1, 1, 0, 0, 1, 0, 0, 1, 0, 0],
    }
)
HAND_CURVE = {
    math.inf: -320.0,
    0.9: -120.0,
    0.8: -135.0,
    0.7: 65.0,
    0.6: 50.0,
    0.5: 250.0,
    0.4: 235.0,
    0.3: 435.0,
    0.2: 420.0,
    0.1: 405.0,
    0.05: 390.0,
}


@pytest.fixture
def table_model(ws: Workspace) -> str:
    return log(ws, ColumnScore("s"), "m", TABLE[["s"]])


# -- value matrices ------------------------------------------------------------------------


def test_value_matrix_per_row_is_the_cell_of_each_decision() -> None:
    predicted = (TABLE.s >= 0.5).astype(int).to_numpy()
    values = VALUE.per_row(predicted, TABLE.y.to_numpy())
    assert values.tolist() == [120.0, 120.0, -15.0, -15.0, -80.0, 0.0, 0.0, 120.0, 0.0, 0.0]
    assert values.sum() == 250.0


def test_value_totals_equal_the_hand_computation(ws: Workspace, table_model: str) -> None:
    ev = keel.evaluate(table_model, data=TABLE, target="y", outcome=VALUE, workspace=ws)
    assert ev.threshold == 0.5
    assert ev.outcome is not None
    assert ev.outcome.total == 250.0
    assert ev.outcome.per_row == 25.0
    lo, hi = ev.outcome.total_interval
    assert lo <= 250.0 <= hi
    # The per-decision interval is the total's, divided by the number of rows.
    assert ev.outcome.per_row_interval == pytest.approx((lo / 10, hi / 10))
    assert ev.metrics["accuracy"] == pytest.approx(7 / 10)
    assert ev.metrics["precision"] == pytest.approx(3 / 5)
    assert ev.metrics["recall"] == pytest.approx(3 / 4)


def test_value_at_a_given_threshold(ws: Workspace, table_model: str) -> None:
    ev = keel.evaluate(
        table_model, data=TABLE, target="y", outcome=VALUE, threshold=0.7, workspace=ws
    )
    assert ev.threshold == 0.7
    assert ev.outcome is not None
    assert ev.outcome.total == HAND_CURVE[0.7]
    assert ev.outcome.per_row == HAND_CURVE[0.7] / 10


def test_optimized_threshold_is_the_hand_computed_best(ws: Workspace, table_model: str) -> None:
    ev = keel.evaluate(
        table_model, data=TABLE, target="y", outcome=VALUE, threshold="optimize", workspace=ws
    )
    assert ev.threshold == 0.3
    assert ev.outcome is not None
    assert ev.outcome.total == 435.0
    assert ev.outcome.per_row == 43.5
    assert ev.metrics["recall"] == 1.0
    assert ev.metrics["precision"] == pytest.approx(4 / 7)


def test_value_curve_is_the_hand_computed_curve() -> None:
    thresholds, totals = value_curve(TABLE.y, TABLE.s, VALUE)
    assert dict(zip(thresholds.tolist(), totals.tolist(), strict=True)) == HAND_CURVE
    assert optimal_threshold(TABLE.y, TABLE.s, VALUE) == (0.3, 435.0)


def test_optimize_when_predicting_nothing_is_best(ws: Workspace) -> None:
    # A probability of exactly 1.0 is common (trees, calibrated ensembles).
    df = pd.DataFrame({"s": [1.0, 0.2, 0.9, 0.1], "y": [0, 1, 0, 0]})
    ref = log(ws, ColumnScore("s"), "m", df[["s"]])
    value = ValueMatrix(tp=1.0, fp=-10.0, fn=-1.0, tn=0.0)
    # Best: predict nothing (one FN, -1). A cut at 1.0 adds an FP: -11.
    assert optimal_threshold(df.y, df.s, value) == (math.inf, -1.0)
    ev = keel.evaluate(ref, data=df, target="y", outcome=value, threshold="optimize", workspace=ws)
    assert ev.outcome is not None
    assert ev.outcome.total == -1.0


def test_value_matrix_parse() -> None:
    assert ValueMatrix.parse("tp=120,fp=-15,fn=-80,tn=0") == VALUE
    assert ValueMatrix.parse(" TP = 120 , fp=-1.5e1, fn=-80.0 ,tn=0 ") == VALUE
    assert ValueMatrix.parse("tn=0,fn=-80,fp=-15,tp=120") == VALUE  # any order
    assert ValueMatrix.from_dict({"tp": 120, "fp": -15, "fn": -80, "tn": 0}) == VALUE


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("tp=120,fp=-15,fn=-80", "tn"),
        ("tp=120,fn=-80,tn=0", "fp"),
        ("tp=120", "fp, fn, tn"),
        ("tp=120,fp=-15,fn=abc,tn=0", "fn"),
        ("tp=120,fp=-15,fn=-80,tn=", "tn"),
        ("tp=120,fp=-15,fn=-80,xx=0", "xx"),
        ("tp:120,fp=-15,fn=-80,tn=0", "tp:120"),
        ("", "tp"),
    ],
)
def test_value_matrix_parse_rejects_bad_text(text: str, named: str) -> None:
    with pytest.raises(InvalidInput) as err:
        ValueMatrix.parse(text)
    assert named in str(err.value)
    assert err.value.exit_code == 2


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf"])
def test_value_matrix_parse_rejects_non_finite_cells(cell: str) -> None:
    with pytest.raises(InvalidInput, match="tp"):
        ValueMatrix.parse(f"tp={cell},fp=-15,fn=-80,tn=0")


def test_value_matrix_from_dict_names_the_missing_cell() -> None:
    with pytest.raises(InvalidInput, match="tn"):
        ValueMatrix.from_dict({"tp": 1, "fp": 2, "fn": 3})


# -- regression and custom value -----------------------------------------------------------


def test_asymmetric_cost_hand_computation() -> None:
    cost = AsymmetricCost(under=2.0, over=1.0)
    predicted = np.array([8.0, 12.0, 10.0, 7.0, 10.5])
    truth = np.array([10.0, 10.0, 10.0, 10.0, 10.0])
    # under by 2 -> -4; over by 2 -> -2; exact -> 0; under by 3 -> -6; over by 0.5 -> -0.5
    assert cost.per_row(predicted, truth).tolist() == [-4.0, -2.0, 0.0, -6.0, -0.5]
    assert cost.per_row(predicted, truth).sum() == -12.5


def test_row_value_sees_rows_predictions_and_truth() -> None:
    rows = pd.DataFrame({"amount": [10.0, 20.0, 30.0]})

    def fn(r: pd.DataFrame, predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
        return np.where(predicted == truth, r["amount"].to_numpy(), -r["amount"].to_numpy())

    value = RowValue(fn, name="amount")
    out = value.per_row(np.array([1, 0, 1]), np.array([1, 1, 1]), rows)
    assert out.tolist() == [10.0, -20.0, 30.0]


@pytest.mark.parametrize(
    "returned", [np.zeros(2), np.zeros(4), np.zeros((3, 1)), np.float64(1.0)], ids=str
)
def test_row_value_of_the_wrong_length_is_invalid_input(returned: np.ndarray) -> None:
    value = RowValue(lambda rows, p, t: returned, name="broken")
    with pytest.raises(InvalidInput, match="broken"):
        value.per_row(np.zeros(3), np.zeros(3))


def test_row_value_of_the_wrong_length_records_nothing(ws: Workspace, table_model: str) -> None:
    value = RowValue(lambda rows, p, t: np.zeros(3), name="broken")
    with pytest.raises(InvalidInput, match="one value per row"):
        keel.evaluate(table_model, data=TABLE, target="y", outcome=value, workspace=ws)
    assert count_evaluations(ws) == 0


def test_row_value_in_an_evaluation(ws: Workspace, table_model: str) -> None:
    # 1 for each right decision, minus 2 for each wrong one: 7 right, 3 wrong at 0.5.
    value = RowValue(lambda rows, p, t: np.where(p == t, 1.0, -2.0), name="right")
    ev = keel.evaluate(table_model, data=TABLE, target="y", outcome=value, workspace=ws)
    assert ev.outcome is not None
    assert ev.outcome.total == 7 - 6
    assert ev.outcome.definition == {"type": "function", "name": "right"}


# -- the threshold: brute force over every candidate ---------------------------------------

cells = st.integers(-50, 50).map(float)
scores_and_labels = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.lists(
            st.one_of(st.integers(0, 10).map(lambda k: k / 10), st.floats(0, 1)),
            min_size=n,
            max_size=n,
        ),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)


def brute_force(truth: np.ndarray, scores: np.ndarray, value: ValueMatrix) -> dict[float, float]:
    """The total value of predicting positive when score >= t, for every candidate t."""
    candidates = [math.inf, *sorted(set(scores.tolist()), reverse=True)]
    return {t: float(value.per_row(scores >= t, truth).sum()) for t in candidates}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scores_and_labels, cells, cells, cells, cells)
def test_optimal_threshold_equals_brute_force(
    data: tuple[list[float], list[bool]], tp: float, fp: float, fn: float, tn: float
) -> None:
    scores, labels = np.array(data[0]), np.array(data[1])
    value = ValueMatrix(tp=tp, fp=fp, fn=fn, tn=tn)
    everything = brute_force(labels, scores, value)
    best = max(everything.values())
    best_threshold = max(t for t, v in everything.items() if v == best)  # ties: highest cut
    assert optimal_threshold(labels, scores, value) == (best_threshold, best)


@settings(max_examples=200, deadline=None)
@given(scores_and_labels, cells, cells, cells, cells)
def test_value_curve_bookkeeping(
    data: tuple[list[float], list[bool]], tp: float, fp: float, fn: float, tn: float
) -> None:
    scores, labels = np.array(data[0]), np.array(data[1])
    pos, neg = int(labels.sum()), int((~labels).sum())
    value = ValueMatrix(tp=tp, fp=fp, fn=fn, tn=tn)
    thresholds, totals = value_curve(labels, scores, value)
    # +inf first (predicts nothing), then every distinct score, highest first.
    assert thresholds[0] == math.inf
    assert thresholds[1:].tolist() == sorted(set(scores.tolist()), reverse=True)
    assert totals[0] == pos * fn + neg * tn
    assert totals[-1] == pos * tp + neg * fp  # the lowest cut predicts everything positive
    assert dict(zip(thresholds.tolist(), totals.tolist(), strict=True)) == brute_force(
        labels, scores, value
    )
    # Counting matrices: true and false positives only grow as the threshold falls.
    _, tps = value_curve(labels, scores, ValueMatrix(tp=1.0, fp=0.0, fn=0.0, tn=0.0))
    _, fps = value_curve(labels, scores, ValueMatrix(tp=0.0, fp=1.0, fn=0.0, tn=0.0))
    assert tps[0] == 0 and fps[0] == 0
    assert tps[-1] == pos and fps[-1] == neg
    assert np.all(np.diff(tps) >= 0) and np.all(np.diff(fps) >= 0)
    assert np.all(np.diff(tps) + np.diff(fps) >= 1)  # each cut switches at least one row
