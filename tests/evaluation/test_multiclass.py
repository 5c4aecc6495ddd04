"""Multi-class evaluation (issue 29, item 1) on scikit-learn's wine data, as a new user
tried it: metrics over every class, a confusion matrix, a value matrix over classes with
its interval, and the gate's paired tests between two multi-class models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, log_loss
from sklearn.tree import DecisionTreeClassifier

import keel
from keel.evaluation.outcomes import ClassValueMatrix
from keel.workspace import Workspace
from tests.conftest import run_keel
from tests.track.helpers import one_error_line

NAMES = np.array(["barolo", "grignolino", "barbera"])
# the value of predicting the column when the truth is the row (columns in another order)
VALUE_CSV = (
    "truth,barbera,barolo,grignolino\nbarolo,-5,10,-1\ngrignolino,-2,-1,8\nbarbera,6,-3,-2\n"
)
VALUE = {("barolo", "barolo"): 10, ("barolo", "grignolino"): -1, ("barolo", "barbera"): -5,
         ("grignolino", "barolo"): -1, ("grignolino", "grignolino"): 8,
         ("grignolino", "barbera"): -2, ("barbera", "barolo"): -3,
         ("barbera", "grignolino"): -2, ("barbera", "barbera"): 6}  # fmt: skip


@dataclass
class Wine:
    root: Path
    ws: Workspace
    X: pd.DataFrame
    y: pd.Series
    strong: LogisticRegression


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wine]:
    tmp = tmp_path_factory.mktemp("wine")
    ws = keel.init(tmp / "ws")
    X, codes = load_wine(return_X_y=True, as_frame=True)
    y = pd.Series(NAMES[codes], name="cultivar")
    X.assign(cultivar=y).to_csv(tmp / "wine.csv", index=False)
    keel.data.add(tmp / "wine.csv", name="wine", workspace=ws)
    strong = LogisticRegression(max_iter=5000).fit(X, y)
    weak = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y)
    with keel.start_run(workspace=ws, capture_code=False) as run:
        run.log_model(strong, "wine", input_example=X.head())
        run.log_model(weak, "wine", input_example=X.head())
    (tmp / "ws" / "value.csv").write_text(VALUE_CSV)
    yield Wine(tmp / "ws", ws, X, y, strong)
    ws.close()


EVALUATE = ("evaluate", "wine/v1", "--data", "wine@v1", "--target", "cultivar")
GATE = ("gate", "wine/v1", "--against", "wine/v2", "--data", "wine@v1", "--target", "cultivar")


def _json(wine: Wine, *args: str) -> dict:
    done = run_keel(*args, "--json", cwd=wine.root)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_class_is_measured_and_the_confusion_matrix_reported(wine: Wine, tmp_path: Path) -> None:
    doc = _json(wine, *EVALUATE, "--report", str(tmp_path / "r.html"))
    assert doc["task"] == "multiclass" and doc["positive_class"] is None
    m = doc["metrics"]
    predicted = wine.strong.predict(wine.X)
    assert m["accuracy"] == pytest.approx(float((predicted == wine.y).mean()))
    assert m["f1_macro"] == pytest.approx(f1_score(wine.y, predicted, average="macro"))
    assert m["f1_weighted"] == pytest.approx(f1_score(wine.y, predicted, average="weighted"))
    assert m["logloss"] == pytest.approx(log_loss(wine.y, wine.strong.predict_proba(wine.X)), rel=1e-6)
    assert {f"recall[{n}]" for n in NAMES} <= set(m) and {f"precision[{n}]" for n in NAMES} <= set(m)
    assert 0.9 < m["auc_ovr"] <= 1.0
    text = run_keel(*EVALUATE, cwd=wine.root).stdout
    assert "confusion matrix" in text and "barolo" in text
    html = (tmp_path / "r.html").read_text()
    assert "Confusion matrix" in html and "grignolino" in html


def test_a_value_matrix_over_classes_has_its_interval(wine: Wine) -> None:
    doc = _json(wine, *EVALUATE, "--value-matrix", "value.csv")
    predicted = wine.strong.predict(wine.X)
    expected = sum(VALUE[(t, p)] for t, p in zip(wine.y, predicted, strict=True))
    outcome = doc["outcome"]
    assert outcome["total"] == pytest.approx(expected)
    lo, hi = outcome["total_interval"]
    assert lo < expected < hi or lo == hi == expected
    # the matrix as read: the columns matched to the rows by class name
    read = ClassValueMatrix.read(str(wine.root / "value.csv"))
    assert read.aligned(["barbera", "barolo", "grignolino"]).tolist() == [
        [6, -3, -2], [-5, 10, -1], [-2, -1, 8]
    ]  # fmt: skip


def test_the_gate_compares_multiclass_models_with_paired_tests(wine: Wine) -> None:
    by_default = run_keel(*GATE, "--json", cwd=wine.root)
    assert by_default.returncode == 0, by_default.stderr  # the strong model is promoted
    primary = json.loads(by_default.stdout)["primary"]
    assert primary["metric"] == "logloss" and primary["task"] == "multiclass"
    assert primary["lower_bound"] > 0
    for metric in ("accuracy", "f1_macro", "f1_weighted", "auc"):
        doc = _json(wine, *GATE, "--metric", metric)
        assert doc["promote"] is True, (metric, doc["reasons"])
        assert doc["primary"]["metric"] == ("auc_ovr" if metric == "auc" else metric)
    valued = _json(wine, *GATE, "--value-matrix", "value.csv")
    assert valued["primary"]["metric"] == "value" and valued["promote"] is True
    # the other way round: the weak one is rejected (exit 1)
    back = run_keel("gate", "wine/v2", "--against", "wine/v1", "--data", "wine@v1",
                    "--target", "cultivar", cwd=wine.root)  # fmt: skip
    assert back.returncode == 1 and back.stdout.startswith("REJECT")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--positive-class", "barolo"), "a positive class is for a binary classifier"),
        (("--threshold", "0.3"), "a threshold is for a binary classifier"),
        (("--value", "tp=1,fp=0,fn=0,tn=0"), "a ValueMatrix judges classification models"),
        (("--value", "tp=1,fp=0,fn=0,tn=0", "--value-matrix", "value.csv"), "are alternatives"),
        (("--value-matrix", "nope.csv"), "value matrix nope.csv: no such file"),
    ],
)
def test_what_does_not_fit_a_multiclass_model_is_refused(
    wine: Wine, extra: tuple[str, ...], expected: str
) -> None:
    assert expected in one_error_line(run_keel(*EVALUATE, *extra, cwd=wine.root))


def test_bad_value_matrices_are_refused(wine: Wine, tmp_path: Path) -> None:
    for text, expected in [
        ("truth,barolo,grignolino\nbarolo,1,2\ngrignolino,3,4\n", "the model's are"),
        ("truth,barolo,grignolino,barbera\nbarolo,1,2,x\ngrignolino,3,4,5\nbarbera,1,1,1\n",
         "'x', not a number"),
        ("truth,barolo,grignolino,barbera\nbarolo,1,2,3\ngrignolino,3,4,5\nmerlot,1,1,1\n",
         "name different classes"),
    ]:  # fmt: skip
        path = tmp_path / "bad.csv"
        path.write_text(text)
        assert expected in one_error_line(
            run_keel(*EVALUATE, "--value-matrix", str(path), cwd=wine.root)
        )


def test_a_multiclass_model_is_not_gated_against_a_binary_one(wine: Wine) -> None:
    binary = LogisticRegression(max_iter=5000).fit(wine.X, wine.y == "barolo")
    with keel.start_run(workspace=wine.ws, capture_code=False) as run:
        run.log_model(binary, "barolo", input_example=wine.X.head())
    line = one_error_line(run_keel("gate", "barolo/v1", "--against", "wine/v1", "--data", "wine@v1",
                                   "--target", "cultivar", cwd=wine.root))  # fmt: skip
    assert "do not answer the same question" in line or "classes the model never saw" in line
