"""A monitor that reads the situation right, as a new user meets it on scikit-learn's bundled
data and the quickstart's churn table: schema breaks are their own verdict, the headline says
what tripped, and errors point at the fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

import keel
from keel.errors import InvalidInput, NotFound
from keel.monitor.html import render
from keel.registry.versions import promote
from keel.workspace import Workspace
from tests.conftest import run_keel


@pytest.fixture
def diab(ws: Workspace) -> Path:
    """The diabetes table as a dataset version, and diab@champion trained on it."""
    root = Path(ws.root)
    frame = load_diabetes(as_frame=True).frame
    frame.to_csv(root / "diab.csv", index=False)
    keel.data.add(root / "diab.csv", name="diab", workspace=ws)
    with keel.start_run(workspace=ws, capture_code=False) as run:
        train = run.use("diab@v1").to_pandas()
        x = train.drop(columns="target")
        mv = run.log_model(LinearRegression().fit(x, train["target"]), "diab", input_example=x.head())
    promote(ws, "diab", mv.number)
    return root


def test_a_renamed_and_a_dropped_input_break_the_schema(ws: Workspace, diab: Path) -> None:
    frame = pd.read_csv(diab / "diab.csv")
    frame.rename(columns={"bmi": "body_mass"}).drop(columns=["s1", "target"]).to_csv(
        diab / "renamed.csv", index=False
    )
    out = run_keel("drift", "diab@champion", "renamed.csv", cwd=diab)
    assert out.returncode == 1, out.stderr
    head = out.stdout.splitlines()[0]
    assert head.startswith("SCHEMA: inputs bmi, s1 missing from the current table"), head
    assert "1 new column: body_mass" in head and "0 of 8 features drifted" in head
    # target is not an input: missing, but no break of its own
    assert "1 column(s) missing, not inputs of diab/v1: target" in head
    doc = json.loads(run_keel("drift", "diab@champion", "renamed.csv", "--json", cwd=diab).stdout)
    assert doc["status"] == "schema" and doc["drifted"] is False
    assert doc["schema"]["broken"] == ["bmi", "s1"] and doc["schema"]["signature"] == "diab/v1"
    allowed = run_keel(
        "drift", "diab@champion", "renamed.csv", "--allow-missing", "bmi,s1", cwd=diab
    )
    assert allowed.returncode == 0, allowed.stdout
    assert allowed.stdout.startswith("NO DRIFT: 0 of 8 features drifted (diab@v1 (training")
    assert "schema: " in allowed.stdout and "2 allowed to be missing: bmi, s1" in allowed.stdout
    # a file reference knows no model: name one, and its signature decides
    named = run_keel("drift", "diab.csv", "renamed.csv", "--model", "diab@champion", cwd=diab)
    assert named.returncode == 1 and named.stdout.startswith("SCHEMA: inputs bmi, s1")
    unnamed = run_keel("drift", "diab.csv", "renamed.csv", cwd=diab)
    assert unnamed.returncode == 0 and "schema: 3 column(s) missing: bmi, s1, target" in (
        unnamed.stdout
    )
    bad = run_keel("drift", "diab.csv", "renamed.csv", "--allow-missing", "nope", cwd=diab)
    assert bad.returncode == 2 and "--allow-missing names 'nope'" in bad.stderr


def test_a_named_target_or_prediction_that_is_missing_breaks_the_schema(diab: Path) -> None:
    frame = pd.read_csv(diab / "diab.csv")
    frame.drop(columns="target").to_csv(diab / "no_target.csv", index=False)
    out = run_keel("drift", "diab.csv", "no_target.csv", "--target", "target", cwd=diab)
    assert out.returncode == 1
    assert out.stdout.startswith("SCHEMA: target column target missing from the current table")
    ref = frame.assign(score=frame["target"] * 0.9)
    with pytest.raises(InvalidInput, match="prediction column 'nope' is in neither table"):
        keel.monitor.drift(ref, frame, prediction="nope", multivariate=False)
    report = keel.monitor.drift(ref, frame, prediction="score", multivariate=False)
    assert report.schema.broken == ["score"] and report.exit_code == 1


def test_an_input_that_changed_type_is_a_schema_break_not_drift(ws: Workspace, diab: Path) -> None:
    frame = pd.read_csv(diab / "diab.csv")
    text = frame.assign(sex=np.where(frame["sex"] > 0, "male", "female"))
    report = keel.monitor.drift("diab@champion", text, workspace=ws, multivariate=False)
    assert report.status == "schema" and not report.drifted and report.exit_code == 1
    assert report.schema.retyped == [{"name": "sex", "reference": "numeric", "current": "categorical"}]
    assert report.headline().startswith("SCHEMA: input sex changed type (numeric -> categorical)")


def test_a_model_without_training_data_says_to_name_the_reference(ws: Workspace) -> None:
    root = Path(ws.root)
    frame = load_diabetes(as_frame=True).frame
    frame.to_csv(root / "data.csv", index=False)
    x = frame.drop(columns="target")
    with keel.start_run(workspace=ws, capture_code=False) as run:  # no run.use(...)
        mv = run.log_model(LinearRegression().fit(x, frame["target"]), "diab", input_example=x)
    promote(ws, "diab", mv.number)
    by_alias = run_keel("drift", "diab@champion", "data.csv", cwd=root)
    by_number = run_keel("drift", "diab/v1", "data.csv", cwd=root)
    assert by_alias.returncode == by_number.returncode == 2
    assert by_alias.stderr == by_number.stderr
    assert "used no recorded dataset version" in by_alias.stderr
    assert "name the reference data instead" in by_alias.stderr
    assert "invalid version" not in by_alias.stderr
    nothing = run_keel("drift", "nosuch@champion", "data.csv", cwd=root)
    assert nothing.returncode == 2 and "neither a file, a dataset nor a model" in nothing.stderr
    with pytest.raises(NotFound, match="used no recorded dataset version"):
        keel.monitor.drift("diab@champion", frame, workspace=ws)


def _correlated(rho: float, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cov = [[1.0, rho, 0.0], [rho, 1.0, 0.0], [0.0, 0.0, 1.0]]
    return pd.DataFrame(rng.multivariate_normal([0, 0, 0], cov, size=n), columns=["a", "b", "c"])


def test_the_headline_names_what_tripped_when_no_single_feature_did(tmp_path: Path) -> None:
    # Each column is as it was; only how two of them move together flipped.
    _correlated(0.9, 3000, 1).to_parquet(tmp_path / "ref.parquet")
    _correlated(-0.9, 3000, 2).to_parquet(tmp_path / "cur.parquet")
    out = run_keel("drift", "ref.parquet", "cur.parquet", "--report", "r.html", cwd=tmp_path)
    assert out.returncode == 1
    head = out.stdout.splitlines()[0]
    assert head.startswith("DRIFT: 0 of 3 features drifted; multivariate: PCA reconstruction error x")
    sentence = head.split("; ", 1)[1].split(" (ref.parquet")[0]
    assert sentence in (tmp_path / "r.html").read_text()  # the page says the same


def test_the_headline_on_the_diabetes_table_whose_serum_columns_came_apart(
    tmp_path: Path,
) -> None:
    # s2 and s4 shuffled apart from s1 and the others: every column as it was, the rows not.
    ref = load_diabetes(as_frame=True).frame.drop(columns="target")
    cur = ref.assign(
        s2=np.random.default_rng(0).permutation(ref["s2"].to_numpy()),
        s4=np.random.default_rng(1).permutation(ref["s4"].to_numpy()),
    )
    report = keel.monitor.drift(ref, cur)
    assert report.headline().startswith(
        "DRIFT: 0 of 10 features drifted; multivariate: PCA reconstruction error x"
    )
    assert report.multivariate is not None and report.multivariate.reasons()[0] in render(report)


def test_the_domain_classifier_sentence() -> None:
    from keel.monitor.multivariate import MultivariateDrift

    mv = MultivariateDrift(
        auc=0.663, auc_interval=(0.632, 0.694), drifted=True, top_columns=[("tenure", 0.1)]
    )
    assert mv.reasons() == ["domain classifier AUC 0.663 (0.632-0.694), told apart mostly by tenure"]
    assert MultivariateDrift(auc=0.52, auc_interval=(0.5, 0.54)).reasons() == []


def test_the_text_table_and_the_page_print_each_columns_notes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=2000), "k": 3.0})
    cur = pd.DataFrame({"x": rng.normal(size=2000), "k": 3.0})
    cur.loc[:9, "x"] = np.inf
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    out = run_keel("drift", "ref.parquet", "cur.parquet", cwd=tmp_path)
    assert out.returncode == 0
    words = " ".join(out.stdout.split())  # the table folds long cells
    assert "current: 10 infinite values left out" in words
    assert "constant in the reference (3)" in words
    page = render(keel.monitor.drift(ref, cur, multivariate=False))
    assert "10 infinite values left out" in page and "constant in the reference (3)" in page


def _churn(tmp_path: Path, name: str, seed: int) -> Path:
    from keel.cli.quickstart.data import churn_table as _churn_table

    path = tmp_path / name
    _churn_table(path, 5000, seed)
    return path


def test_one_column_one_verdict_from_a_csv_and_from_a_dataframe(tmp_path: Path) -> None:
    # monthly_charges arrives with 2% of its values as words: the CLI reading the CSV and
    # the Python API given a DataFrame read it by the same rule, and count what did not parse.
    ref = _churn(tmp_path, "ref.csv", 1)
    cur = pd.read_csv(_churn(tmp_path, "cur.csv", 2))
    charges = cur["monthly_charges"].astype(object)
    charges[cur.index % 50 == 0] = "n/a yet"
    cur["monthly_charges"] = charges
    cur.to_csv(tmp_path / "dirty.csv", index=False)
    out = run_keel("drift", "ref.csv", "dirty.csv", "--json", cwd=tmp_path)
    from_csv = json.loads(out.stdout)["features"]["monthly_charges"]
    for given in (cur, pd.read_csv(tmp_path / "dirty.csv")):  # objects, and strings
        from_frame = keel.monitor.drift(pd.read_csv(ref), given).features["monthly_charges"]
        assert from_frame.kind == from_csv["kind"] == "numeric"
        assert from_frame.status == from_csv["status"]
        assert from_frame.unparsed == (0, 100) and from_csv["unparsed"]["current"] == 100
        assert from_frame.missing["current"] == from_csv["missing"]["current"] == 0.02
        assert from_frame.statistic == pytest.approx(from_csv["statistic"])
    assert "100 values did not parse as numbers (e.g. 'n/a yet')" in " ".join(from_csv["notes"])
    assert from_csv["status"] == "drift" and "missing values 0.0% -> 2.0%" in from_csv["reasons"][0]


def _scored(ws: Workspace, frame: pd.DataFrame, ref: str = "diab@champion") -> pd.DataFrame:
    model = keel.load_model(ref, workspace=ws)
    return frame.assign(score=model.predict(frame.drop(columns="target")))


def _reference_predictions(ws: Workspace) -> list[str]:
    from sqlalchemy import select

    from keel.store.db import object_refs

    with ws.db.read() as conn:
        rows = conn.execute(
            select(object_refs.c.label).where(object_refs.c.owner_kind == "reference_predictions")
        ).all()
    return [r[0] for r in rows]


def test_predictions_are_compared_with_the_models_own_on_its_training_data(
    ws: Workspace, diab: Path
) -> None:
    frame = pd.read_csv(diab / "diab.csv")
    same = _scored(ws, frame)
    first = keel.monitor.drift("diab@champion", same, prediction="score", workspace=ws)
    p = first.prediction
    assert p is not None and p.reference_source == "model" and p.status == "no drift"
    assert p.statistic == pytest.approx(0.0, abs=1e-9)  # the very predictions it made
    assert "reference: predictions of diab/v1 on diab@v1" in p.notes[0]
    assert _reference_predictions(ws) == ["diab/v1 on diab@v1"]  # kept, with its lineage
    again = keel.monitor.drift("diab@champion", same, prediction="score", workspace=ws)
    assert again.prediction is not None and again.prediction.notes[0].endswith(", read back")
    assert _reference_predictions(ws) == ["diab/v1 on diab@v1"]
    # Heavier patients: the model predicts more progression, and the report says so.
    heavier = _scored(ws, frame.assign(bmi=frame["bmi"] + 0.04))
    moved = keel.monitor.drift("diab@champion", heavier, prediction="score", workspace=ws)
    assert moved.prediction is not None and moved.prediction.drifted
    assert "prediction score drifted: wasserstein" in moved.headline()
    # The CLI, with a file reference and the model named: scored, not kept (no version).
    heavier.to_csv(diab / "heavier.csv", index=False)
    out = run_keel(
        "drift", "diab.csv", "heavier.csv", "--prediction", "score", "--model", "diab@champion",
        "--json", cwd=diab,
    )  # fmt: skip
    doc = json.loads(out.stdout)
    assert out.returncode == 1 and doc["prediction"]["drifted"] is True
    assert doc["prediction"]["reference_source"] == "model"
    assert _reference_predictions(ws) == ["diab/v1 on diab@v1"]
    unnamed = keel.monitor.drift(diab / "diab.csv", heavier, prediction="score", multivariate=False)
    assert unnamed.prediction is None
    assert any("prediction score not compared" in n and "--model" in n for n in unnamed.notes)


def test_a_classifiers_scores_are_compared_with_its_scores(ws: Workspace) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = Path(ws.root)
    data = load_breast_cancer(as_frame=True).frame
    data.to_parquet(root / "cancer.parquet")
    keel.data.add(root / "cancer.parquet", name="cancer", workspace=ws)
    with keel.start_run(workspace=ws, capture_code=False) as run:
        train = run.use("cancer@v1").to_pandas()
        x = train.drop(columns="target")
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        mv = run.log_model(model.fit(x, train["target"]), "cancer", input_example=x.head())
    promote(ws, "cancer", mv.number)
    current = x.assign(score=model.predict_proba(x)[:, 1], label=model.predict(x).astype(str))
    by_score = keel.monitor.drift("cancer@champion", current, prediction="score", workspace=ws)
    assert by_score.prediction is not None and by_score.prediction.kind == "numeric"
    assert "reference: scores of cancer/v1" in by_score.prediction.notes[0]
    assert by_score.prediction.statistic == pytest.approx(0.0, abs=1e-9)
    # Classes 0 and 1 as text read as numbers (the one typing rule): the model's answers.
    by_class = keel.monitor.drift(
        "cancer@champion", current, prediction="label", workspace=ws, multivariate=False
    )
    assert by_class.prediction is not None and by_class.prediction.kind == "numeric"
    assert "reference: predictions of cancer/v1" in by_class.prediction.notes[0]
    assert by_class.prediction.statistic == pytest.approx(0.0, abs=1e-9)
    # Named classes are compared as labels.
    names = np.where(train["target"] == 1, "benign", "malignant")
    with keel.start_run(workspace=ws, capture_code=False) as run:
        run.use("cancer@v1")
        named = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, names)
        run.log_model(named, "named", input_example=x.head())
    labelled = x.assign(label=named.predict(x))
    by_label = keel.monitor.drift("named/v1", labelled, prediction="label", workspace=ws)
    assert by_label.prediction is not None and by_label.prediction.kind == "categorical"
    assert by_label.prediction.status == "no drift" and by_label.prediction.statistic == 0.0


class Refuses(keel.PythonModel):
    def predict(self, inputs: object) -> object:
        raise RuntimeError("this model was never meant to score")


def test_a_large_reference_is_scored_on_a_sample_and_a_failing_model_leaves_a_note(
    ws: Workspace, diab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.monitor.predictions as predictions

    monkeypatch.setattr(predictions, "SCORED_ROWS", 100)
    frame = pd.read_csv(diab / "diab.csv")
    report = keel.monitor.drift(
        "diab@champion", _scored(ws, frame), prediction="score", workspace=ws, multivariate=False
    )
    assert report.prediction is not None and report.prediction.rows[0] == 100
    assert any("a uniform sample of 100 rows of diab@v1" in n for n in report.prediction.notes)
    x = frame.drop(columns="target")
    with keel.start_run(workspace=ws, capture_code=False) as run:
        run.use("diab@v1")
        run.log_model(Refuses(), "refuses", input_example=x.head())
    broken = keel.monitor.drift(
        "refuses/v1", frame.assign(score=1.0), prediction="score", workspace=ws, multivariate=False
    )
    assert broken.prediction is None and broken.status == "no drift"
    assert any(
        "could not score" in n and "RuntimeError: this model was never meant to score" in n
        for n in broken.notes
    ), broken.notes


def test_a_dataset_reference_is_scored_by_the_only_model_trained_on_it(
    ws: Workspace, diab: Path
) -> None:
    frame = _scored(ws, pd.read_csv(diab / "diab.csv"))
    report = keel.monitor.drift("diab@v1", frame, prediction="score", workspace=ws)
    assert report.prediction is not None and report.prediction.reference_source == "model"
    assert report.prediction.notes[0].startswith("reference: predictions of diab/v1 on diab@v1")
    with keel.start_run(workspace=ws, capture_code=False) as run:
        train = run.use("diab@v1").to_pandas()
        x = train.drop(columns="target")
        run.log_model(LinearRegression().fit(x, train["target"]), "other", input_example=x)
    two = keel.monitor.drift("diab@v1", frame, prediction="score", workspace=ws)
    assert two.prediction is None
    assert any("several were trained on diab@v1: diab/v1, other/v1" in n for n in two.notes)
