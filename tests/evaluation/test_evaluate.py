"""``keel.evaluate``: metrics against scikit-learn, value intervals, slices, bad input, records."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sqlalchemy import select

import keel
from keel.errors import InvalidInput
from keel.evaluation import AsymmetricCost, SliceError, ValueMatrix
from keel.store.db import dataset_versions, evaluations, model_versions
from keel.workspace import Workspace
from tests.conftest import run_keel
from tests.evaluation.helpers import ColumnScore, count_evaluations, log

VALUE = ValueMatrix(tp=120.0, fp=-15.0, fn=-80.0, tn=0.0)
FEATURES = ["x", "z"]


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": x,
            "z": rng.normal(size=n),
            "region": rng.choice(
                ["north", "south", "east", "west"], size=n, p=[0.4, 0.3, 0.2, 0.1]
            ),
            "plan": rng.choice(["pro", "basic"], size=n),
        }
    )
    df["y"] = (x + rng.normal(scale=0.8, size=n) > 0.3).astype(int)
    df["amount"] = 3.0 * x + 10.0 + rng.normal(size=n)
    return df


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame(1200)


@pytest.fixture
def classifier(ws: Workspace, frame: pd.DataFrame) -> tuple[str, LogisticRegression]:
    model = LogisticRegression().fit(frame[FEATURES], frame.y)
    return log(ws, model, "m", frame[FEATURES]), model


@pytest.fixture
def regressor(ws: Workspace, frame: pd.DataFrame) -> tuple[str, LinearRegression]:
    model = LinearRegression().fit(frame[["x"]], frame.amount)
    return log(ws, model, "r", frame[["x"]]), model


def ece(truth: np.ndarray, scores: np.ndarray) -> float:
    """Expected calibration error over ten equal-width bins, by a plain loop."""
    total = 0.0
    for k in range(10):
        lo, hi = k / 10, (k + 1) / 10
        inside = (scores >= lo) & ((scores < hi) if k < 9 else (scores <= hi))
        if inside.any():
            total += inside.sum() * abs(scores[inside].mean() - truth[inside].mean())
    return total / len(truth)


def classification_truth(y: np.ndarray, p: np.ndarray, cut: float = 0.5) -> dict[str, float]:
    d = (p >= cut).astype(int)
    return {
        "auc": skm.roc_auc_score(y, p),
        "logloss": skm.log_loss(y, p),
        "accuracy": skm.accuracy_score(y, d),
        "f1": skm.f1_score(y, d),
        "precision": skm.precision_score(y, d),
        "recall": skm.recall_score(y, d),
        "brier": skm.brier_score_loss(y, p),
        "calibration_error": ece(y, p),
    }


# -- metrics -------------------------------------------------------------------------------


def test_classification_metrics_agree_with_sklearn(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    ref, model = classifier
    p = model.predict_proba(frame[FEATURES])[:, 1]
    ev = keel.evaluate(ref, data=frame, target="y", workspace=ws)
    assert ev.task == "classification"
    assert ev.rows == len(frame)
    assert ev.threshold == 0.5
    expected = classification_truth(frame.y.to_numpy(), p)
    assert ev.metrics.keys() >= expected.keys()
    for name, value in expected.items():
        assert ev.metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert 0.8 < ev.metrics["auc"] < 1  # the data has signal: a sanity check on the generator


def test_metrics_at_a_given_threshold(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    ref, model = classifier
    p = model.predict_proba(frame[FEATURES])[:, 1]
    ev = keel.evaluate(ref, data=frame, target="y", threshold=0.3, workspace=ws)
    expected = classification_truth(frame.y.to_numpy(), p, cut=0.3)
    for name in ("accuracy", "f1", "precision", "recall"):
        assert ev.metrics[name] == pytest.approx(expected[name]), name


def test_custom_metric(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    ref, model = classifier
    seen: dict[str, object] = {}

    def top_decile_rate(y_true: np.ndarray, y_pred: np.ndarray, **context: object) -> float:
        seen.update(context)
        scores = np.asarray(context["scores"])
        top = scores >= np.quantile(scores, 0.9)
        return float(np.asarray(y_true)[top].mean())

    ev = keel.evaluate(
        ref, data=frame, target="y", metrics={"top10": top_decile_rate}, workspace=ws
    )
    p = model.predict_proba(frame[FEATURES])[:, 1]
    assert ev.metrics["top10"] == pytest.approx(frame.y.to_numpy()[p >= np.quantile(p, 0.9)].mean())
    assert set(seen) >= {"scores", "rows"}


def test_regression_metrics_and_asymmetric_cost(
    ws: Workspace, frame: pd.DataFrame, regressor: tuple[str, LinearRegression]
) -> None:
    ref, model = regressor
    pred = model.predict(frame[["x"]])
    y = frame.amount.to_numpy()
    cost = AsymmetricCost(under=3.0, over=1.0)
    ev = keel.evaluate(ref, data=frame, target="amount", outcome=cost, workspace=ws)
    assert ev.task == "regression"
    assert ev.threshold is None
    assert ev.metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert ev.metrics["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert ev.metrics["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert ev.metrics["r2"] == pytest.approx(skm.r2_score(y, pred))
    err = pred - y
    hand = -(np.sum(-err[err < 0]) * 3.0 + np.sum(err[err > 0]) * 1.0)
    assert ev.outcome is not None
    assert ev.outcome.total == pytest.approx(hand)
    assert ev.outcome.per_row == pytest.approx(hand / len(y))
    lo, hi = ev.outcome.total_interval
    assert lo < ev.outcome.total < hi < 0
    assert ev.outcome.definition == {"type": "asymmetric_cost", "under": 3.0, "over": 1.0}
    json.dumps(ev.to_dict(), allow_nan=False)


def test_a_value_matrix_does_not_judge_a_regression(
    ws: Workspace, frame: pd.DataFrame, regressor: tuple[str, LinearRegression]
) -> None:
    with pytest.raises(InvalidInput, match="ValueMatrix"):
        keel.evaluate(regressor[0], data=frame, target="amount", outcome=VALUE, workspace=ws)
    with pytest.raises(InvalidInput, match="AsymmetricCost"):
        keel.evaluate(
            log(ws, ColumnScore("x"), "c", frame[["x"]]),
            data=frame.assign(x=frame.x.clip(0, 1)),
            target="y",
            outcome=AsymmetricCost(1.0, 1.0),
            workspace=ws,
        )
    assert count_evaluations(ws) == 0


def test_evaluate_on_a_dataset_version_is_linked_to_it(
    ws: Workspace,
    tmp_path: Path,
    frame: pd.DataFrame,
    classifier: tuple[str, LogisticRegression],
) -> None:
    ref, _ = classifier
    frame.to_csv(tmp_path / "d.csv", index=False)
    keel.data.add(tmp_path / "d.csv", name="d", workspace=ws)
    ev = keel.evaluate(ref, data="d@v1", target="y", outcome=VALUE, workspace=ws)
    on_frame = keel.evaluate(ref, data=frame, target="y", outcome=VALUE, workspace=ws)
    assert ev.data == "d@v1"
    assert ev.metrics == pytest.approx(on_frame.metrics)
    assert ev.outcome is not None and on_frame.outcome is not None
    assert ev.outcome.total == pytest.approx(on_frame.outcome.total)
    with ws.db.read() as conn:
        row = conn.execute(select(evaluations).where(evaluations.c.id == ev.id)).one()
        mv = conn.execute(select(model_versions.c.id, model_versions.c.number)).all()
        dv = conn.execute(select(dataset_versions.c.id)).scalar_one()
    assert row.kind == "evaluation"
    assert row.model_version_id == mv[0].id
    assert row.against_version_id is None
    assert row.dataset_version_id == dv
    stored = json.loads(ws.objects.get(row.result_oid))
    assert stored["id"] == ev.id
    assert stored["outcome"]["total"] == pytest.approx(ev.outcome.total)


# -- value with an interval ------------------------------------------------------------------


def test_value_interval_contains_the_estimate_and_narrows_with_more_rows(ws: Workspace) -> None:
    big = make_frame(12_000, seed=1)
    model = LogisticRegression().fit(big[FEATURES], big.y)
    ref = log(ws, model, "m", big[FEATURES])
    widths = []
    for n in (600, 12_000):
        ev = keel.evaluate(ref, data=big.head(n), target="y", outcome=VALUE, workspace=ws)
        o = ev.outcome
        assert o is not None
        assert o.per_row == pytest.approx(o.total / n)
        assert o.total_interval[0] < o.total < o.total_interval[1]
        assert o.per_row_interval[0] < o.per_row < o.per_row_interval[1]
        assert o.confidence == 0.95
        widths.append(o.per_row_interval[1] - o.per_row_interval[0])
    # Twenty times the rows: the interval should be about sqrt(20) ~ 4.5 times narrower.
    assert 3.0 < widths[0] / widths[1] < 6.5


def test_value_interval_matches_the_normal_approximation(ws: Workspace) -> None:
    df = make_frame(5000, seed=2)
    model = LogisticRegression().fit(df[FEATURES], df.y)
    ref = log(ws, model, "m", df[FEATURES])
    ev = keel.evaluate(ref, data=df, target="y", outcome=VALUE, resamples=2000, workspace=ws)
    p = model.predict_proba(df[FEATURES])[:, 1]
    values = VALUE.per_row(p >= 0.5, df.y.to_numpy())
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert ev.outcome is not None
    lo, hi = ev.outcome.per_row_interval
    assert lo == pytest.approx(values.mean() - half, abs=0.15 * half)
    assert hi == pytest.approx(values.mean() + half, abs=0.15 * half)


# -- slices ----------------------------------------------------------------------------------


def test_slices_by_category(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    ref, model = classifier
    p = model.predict_proba(frame[FEATURES])[:, 1]
    ev = keel.evaluate(ref, data=frame, target="y", outcome=VALUE, slices=["region"], workspace=ws)
    assert sorted(ev.slices) == ["region=east", "region=north", "region=south", "region=west"]
    for region in ("north", "south", "east", "west"):
        mask = (frame.region == region).to_numpy()
        s = ev.slices[f"region={region}"]
        assert s["rows"] == mask.sum()
        assert s["share"] == pytest.approx(mask.mean())
        assert not s.get("too_small")
        expected = classification_truth(frame.y.to_numpy()[mask], p[mask])
        for name, value in expected.items():
            assert s["metrics"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), (region, name)
        values = VALUE.per_row(p[mask] >= 0.5, frame.y.to_numpy()[mask])
        assert s["value"]["total"] == pytest.approx(values.sum())
        assert s["value"]["per_row"] == pytest.approx(values.mean())
    assert sum(s["value"]["total"] for s in ev.slices.values()) == pytest.approx(
        ev.outcome.total if ev.outcome else None
    )


def test_slices_by_numeric_quartile(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    ref, _ = classifier
    ev = keel.evaluate(ref, data=frame, target="y", slices=["x"], workspace=ws)
    assert len(ev.slices) == 4
    edges = np.quantile(frame.x, [0, 0.25, 0.5, 0.75, 1])
    x = frame.x.to_numpy()
    for i, (name, s) in enumerate(ev.slices.items()):
        lo, hi = edges[i], edges[i + 1]
        mask = (x >= lo) & ((x < hi) if i < 3 else (x <= hi))
        assert name.startswith("x in [")
        assert s["rows"] == mask.sum()
        assert abs(s["rows"] - len(frame) / 4) <= 1
    # The quartiles partition the rows: every row in exactly one.
    assert sum(s["rows"] for s in ev.slices.values()) == len(frame)
    # x drives the predictions: recall rises from the lowest quartile to the highest.
    recalls = [s["metrics"]["recall"] for s in ev.slices.values()]
    assert recalls == sorted(recalls)


@pytest.mark.parametrize(
    ("spec", "select_rows"),
    [
        ("x > 1 and region = north", lambda d: (d.x > 1) & (d.region == "north")),
        ('plan = "pro" and region != south', lambda d: (d.plan == "pro") & (d.region != "south")),
        ("region = 'east' or region = west", lambda d: d.region.isin(["east", "west"])),
        ("x <= -0.5", lambda d: d.x <= -0.5),
        ("z >= 0 and x < 1e0", lambda d: (d.z >= 0) & (d.x < 1)),
        ("region == north", lambda d: d.region == "north"),
    ],
)
def test_slices_by_expression(
    ws: Workspace,
    frame: pd.DataFrame,
    classifier: tuple[str, LogisticRegression],
    spec: str,
    select_rows: object,
) -> None:
    ref, model = classifier
    p = model.predict_proba(frame[FEATURES])[:, 1]
    mask = select_rows(frame).to_numpy()  # type: ignore[operator]
    assert mask.sum() >= 30
    ev = keel.evaluate(ref, data=frame, target="y", slices=[spec], workspace=ws)
    assert list(ev.slices) == [spec]
    s = ev.slices[spec]
    assert s["rows"] == mask.sum()
    assert s["metrics"]["accuracy"] == pytest.approx(
        skm.accuracy_score(frame.y[mask], p[mask] >= 0.5)
    )
    assert s["metrics"]["brier"] == pytest.approx(skm.brier_score_loss(frame.y[mask], p[mask]))


def test_and_binds_tighter_than_or(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    spec = "region = north or region = south and x > 1"
    expected = (frame.region == "north") | ((frame.region == "south") & (frame.x > 1))
    ev = keel.evaluate(classifier[0], data=frame, target="y", slices=[spec], workspace=ws)
    assert ev.slices[spec]["rows"] == expected.sum()


def test_empty_and_small_slices_are_reported_not_computed(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    df = frame.copy()
    df.loc[df.index[:12], "region"] = "tiny"  # a category of 12 rows
    ev = keel.evaluate(
        classifier[0],
        data=df,
        target="y",
        outcome=VALUE,
        slices=["region", "x > 100", "x > 2.2"],
        threshold="optimize",
        workspace=ws,
    )
    assert 0 < (df.x > 2.2).sum() < 30
    for name, rows in (("region=tiny", 12), ("x > 100", 0), ("x > 2.2", (df.x > 2.2).sum())):
        s = ev.slices[name]
        assert s["rows"] == rows
        assert s["too_small"] is True
        assert str(rows) in s["note"] and "30" in s["note"]
        assert "metrics" not in s and "value" not in s
    assert not ev.slices["region=north"].get("too_small")
    text = json.dumps(ev.to_dict(), allow_nan=False)  # no NaN anywhere
    assert "NaN" not in text


def test_min_slice_size_is_a_parameter(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    west = int((frame.region == "west").sum())
    assert 30 <= west < 200
    ev = keel.evaluate(
        classifier[0], data=frame, target="y", slices=["region"], min_slice_size=200, workspace=ws
    )
    assert ev.slices["region=west"]["too_small"] is True
    assert "200" in ev.slices["region=west"]["note"]
    assert "too_small" not in ev.slices["region=north"]


def one_class_frame(frame: pd.DataFrame) -> pd.DataFrame:
    df = frame.copy()
    df["segment"] = "rest"
    df.loc[df.index[:40], "segment"] = "pure"
    df.loc[df.index[:40], "y"] = 0  # 40 rows, one class: AUC is undefined there
    return df


def test_a_one_class_slice_has_no_auc_rather_than_nan(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        ev = keel.evaluate(
            classifier[0],
            data=one_class_frame(frame),
            target="y",
            outcome=VALUE,
            slices=["segment"],
            workspace=ws,
        )
    pure = ev.slices["segment=pure"]
    assert pure["rows"] == 40
    assert pure["metrics"]["auc"] is None
    assert pure["metrics"]["accuracy"] is not None
    json.dumps(ev.to_dict(), allow_nan=False)


def test_a_one_class_slice_raises_no_warning(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keel.evaluate(
            classifier[0],
            data=one_class_frame(frame),
            target="y",
            slices=["segment"],
            workspace=ws,
        )


# -- bad input: one clear error, nothing recorded ----------------------------------------------


def _bad(frame: pd.DataFrame) -> dict[str, tuple[dict[str, object], type[Exception], str]]:
    unseen = frame.copy()
    unseen.loc[unseen.index[:3], "y"] = 2
    text_amount = frame.assign(amount=frame.amount.map(lambda v: f"{v:.2f} EUR"))
    return {
        "target missing": ({"target": "churned"}, InvalidInput, "churned"),
        "regression target of strings": (
            {"model": "r", "data": text_amount, "target": "amount"},
            InvalidInput,
            "numeric",
        ),
        "classes the model never saw": ({"data": unseen}, InvalidInput, "never saw: 2"),
        "slice does not parse": ({"slices": ["x >"]}, SliceError, "x >"),
        "slice with a bad operator": ({"slices": ["x ~ 2"]}, SliceError, "~"),
        "slice with a dangling join": ({"slices": ["x > 1 and"]}, SliceError, "and"),
        "slice names a missing column": ({"slices": ["tenure < 12"]}, SliceError, "tenure"),
        "slice column missing": ({"slices": ["tenure"]}, SliceError, "tenure"),
        "slice compares text to a number column": (
            {"slices": ["x > north"]},
            SliceError,
            "north",
        ),
        "threshold above 1": ({"threshold": 1.5}, InvalidInput, "1.5"),
        "threshold below 0": ({"threshold": -0.1}, InvalidInput, "-0.1"),
        "threshold word": ({"threshold": "best"}, InvalidInput, "best"),
        "optimize without a value matrix": (
            {"threshold": "optimize", "outcome": None},
            InvalidInput,
            "value matrix",
        ),
        "confidence 1": ({"confidence": 1.0}, InvalidInput, "confidence"),
    }


BAD_CASES = list(_bad(make_frame(10)))


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_clear_error_and_records_nothing(
    ws: Workspace,
    frame: pd.DataFrame,
    classifier: tuple[str, LogisticRegression],
    regressor: tuple[str, LinearRegression],
    case: str,
) -> None:
    keel.evaluate(classifier[0], data=frame, target="y", workspace=ws)  # one good record
    before = count_evaluations(ws)
    assert before == 1
    overrides, error, named = _bad(frame)[case]
    kwargs: dict[str, object] = {"data": frame, "target": "y", "outcome": VALUE}
    kwargs.update(overrides)
    model = {"r": regressor[0]}.get(str(kwargs.pop("model", "")), classifier[0])
    with pytest.raises(error) as err:
        keel.evaluate(model, workspace=ws, **kwargs)  # type: ignore[arg-type]
    assert isinstance(err.value, InvalidInput)
    assert err.value.exit_code == 2
    assert named in str(err.value)
    assert "\n" not in str(err.value)
    assert count_evaluations(ws) == before


def test_a_float_target_of_the_same_classes(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    as_int = keel.evaluate(classifier[0], data=frame, target="y", workspace=ws)
    as_float = keel.evaluate(
        classifier[0], data=frame.astype({"y": float}), target="y", workspace=ws
    )
    assert as_float.metrics == pytest.approx(as_int.metrics)


def test_a_value_matrix_with_a_missing_cell(ws: Workspace) -> None:
    with pytest.raises(InvalidInput, match="tn"):
        ValueMatrix.parse("tp=120,fp=-15,fn=-80")
    assert count_evaluations(ws) == 0


# -- lineage ---------------------------------------------------------------------------------


def test_recorded_evaluations_are_found_for_the_model(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    from keel.evaluation.records import evaluations_of
    from keel.registry.versions import resolve_model

    ev = keel.evaluate(classifier[0], data=frame, target="y", outcome=VALUE, workspace=ws)
    found = evaluations_of(ws, resolve_model(ws, classifier[0]))
    assert [e["id"] for e in found] == [ev.id]
    assert found[0]["kind"] == "evaluation"
    assert found[0]["summary"]["outcome"] == pytest.approx(ev.outcome.total if ev.outcome else 0)


def test_an_evaluation_appears_in_lineage_judged_by(
    ws: Workspace,
    tmp_path: Path,
    frame: pd.DataFrame,
    classifier: tuple[str, LogisticRegression],
) -> None:
    frame.to_csv(tmp_path / "d.csv", index=False)
    keel.data.add(tmp_path / "d.csv", name="d", workspace=ws)
    ev = keel.evaluate(classifier[0], data="d@v1", target="y", outcome=VALUE, workspace=ws)
    done = run_keel("lineage", "m/v1", "--json", cwd=ws.root)
    assert done.returncode == 0, done.stderr
    graph = json.loads(done.stdout)
    judged = [e for e in graph["edges"] if e["relation"] == "judged by"]
    assert judged, graph["edges"]
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert any(ev.id[:8] in json.dumps(nodes[e["to"]]) for e in judged) or any(
        ev.id[:8] in json.dumps(nodes[e["from"]]) for e in judged
    )
    assert any(e["from"] == graph["root"] or e["to"] == graph["root"] for e in judged)


# -- data the model cannot use: one clear error, never a crash --------------------------------


class Raises(keel.PythonModel):
    """A regression model that refuses negative inputs."""

    def predict(self, inputs):  # type: ignore[no-untyped-def]
        if (np.asarray(inputs["x"]) < 0).any():
            raise ValueError("x must not be negative")
        return np.asarray(inputs["x"], dtype=float)


def test_missing_input_columns_are_named_with_the_signature(
    ws: Workspace, frame: pd.DataFrame, classifier: tuple[str, LogisticRegression]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        keel.evaluate(classifier[0], data=frame.drop(columns=["x"]), target="y", workspace=ws)
    assert str(caught.value) == (
        "DataFrame lacks 1 of the input columns m/v1 needs: 'x' (its signature: x float, z float)"
    )


def test_a_model_that_raises_on_the_data_is_invalid_input(ws: Workspace, frame: pd.DataFrame) -> None:
    ref = log(ws, Raises(), "raises", frame[["x"]].abs())
    with pytest.raises(InvalidInput, match=r"raises/v1 could not score DataFrame: ValueError: x must"):
        keel.evaluate(ref, data=frame, target="amount", workspace=ws)
    assert count_evaluations(ws) == 0
