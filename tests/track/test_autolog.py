"""``keel.autolog()``: scikit-learn training recorded without changing the training code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import keel
from keel.workspace import Workspace

sklearn = pytest.importorskip("sklearn")

from sklearn.base import BaseEstimator  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import LabelEncoder, StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeRegressor  # noqa: E402


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


@pytest.fixture
def autolog(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """Autologging on, with ``ws`` as the workspace a run it starts itself goes to."""
    monkeypatch.setenv("KEEL_HOME", str(ws.root))
    monkeypatch.chdir(ws.root)
    assert keel.autolog() > 50
    try:
        yield ws
    finally:
        keel.autolog(disable=True)


def run_count(ws: Workspace) -> int:
    return len(keel.search_runs(None, limit=10_000, workspace=ws).runs)


def score(rec: Any) -> float:
    metrics = rec.metrics
    return float((metrics.get("training_accuracy") or metrics["training_score"])["last"])


def check_logged(rec: Any, model: Any, X: np.ndarray, y: np.ndarray, prefix: str) -> None:
    for key, value in model.get_params(deep=False).items():
        if isinstance(value, int | float | str | bool) or value is None:
            assert rec.params[f"{prefix}.{key}"] == value, key
    assert rec.metrics["training_duration_s"]["last"] >= 0
    assert rec.metrics["training_duration_s"]["count"] == 1
    # named training_accuracy by the contract; see test_classifier_score_is_named_training_accuracy
    assert score(rec) == pytest.approx(model.score(X, y))
    assert rec.tags["estimator"].endswith(type(model).__name__)


def test_random_forest_on_the_active_run(autolog: Workspace, data: Any) -> None:
    X, y = data
    before = run_count(autolog)
    with keel.start_run(name="mine", workspace=autolog, capture_code=False) as run:
        model = RandomForestClassifier(n_estimators=7, max_depth=3, random_state=0).fit(X, y)
    assert run_count(autolog) == before + 1  # the trees did not make runs of their own
    rec = keel.get_run(run.id, workspace=autolog)
    check_logged(rec, model, X, y, "RandomForestClassifier")
    assert rec.params["RandomForestClassifier.n_estimators"] == 7
    assert rec.params["RandomForestClassifier.max_depth"] == 3
    assert rec.status == "finished"


def test_logistic_regression_on_the_active_run(autolog: Workspace, data: Any) -> None:
    X, y = data
    with keel.start_run(workspace=autolog, capture_code=False) as run:
        model = LogisticRegression(C=0.5).fit(X, y)
    rec = keel.get_run(run.id, workspace=autolog)
    check_logged(rec, model, X, y, "LogisticRegression")
    assert rec.params["LogisticRegression.C"] == 0.5


def test_estimator_whose_fit_takes_no_y(autolog: Workspace) -> None:
    assert list(LabelEncoder().fit(["b", "a", "b"]).classes_) == ["a", "b"]


def test_own_run_when_none_is_active(autolog: Workspace, data: Any) -> None:
    X, y = data
    assert keel.active_run() is None
    before = run_count(autolog)
    model = RandomForestClassifier(n_estimators=5, random_state=1).fit(X, y)
    assert keel.active_run() is None  # started and ended by autolog
    page = keel.search_runs(None, limit=10_000, workspace=autolog)
    assert len(page.runs) == before + 1
    rec = keel.get_run(page.runs[0].id, workspace=autolog)
    assert rec.name == "autolog-RandomForestClassifier"
    assert rec.status == "finished"
    check_logged(rec, model, X, y, "RandomForestClassifier")
    # a second fit is a second run
    RandomForestClassifier(n_estimators=3, random_state=2).fit(X, y)
    assert run_count(autolog) == before + 2


def test_regressor_logs_training_score(autolog: Workspace, data: Any) -> None:
    X, _y = data
    target = X[:, 0] * 2.0
    with keel.start_run(workspace=autolog, capture_code=False) as run:
        model = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, target)
    rec = keel.get_run(run.id, workspace=autolog)
    assert rec.metrics["training_score"]["last"] == pytest.approx(model.score(X, target))
    assert "training_accuracy" not in rec.metrics
    assert rec.params["DecisionTreeRegressor.max_depth"] == 4


def test_pipeline_is_one_run_with_nested_params(autolog: Workspace, data: Any) -> None:
    X, y = data
    before = run_count(autolog)
    pipe = make_pipeline(
        StandardScaler(), RandomForestClassifier(n_estimators=4, max_depth=2, random_state=0)
    )
    pipe.fit(X, y)
    assert run_count(autolog) == before + 1  # the scaler's and the forest's fits made none
    rec = keel.get_run("autolog-Pipeline", workspace=autolog)
    assert rec.status == "finished"
    assert rec.params["Pipeline.randomforestclassifier.n_estimators"] == 4
    assert rec.params["Pipeline.standardscaler.with_mean"] is True
    assert score(rec) == pytest.approx(pipe.score(X, y))
    assert rec.metrics["training_duration_s"]["count"] == 1
    assert not any(k.startswith(("StandardScaler.", "RandomForestClassifier.")) for k in rec.params)


def test_pipeline_with_logistic_regression(autolog: Workspace, data: Any) -> None:
    X, y = data
    before = run_count(autolog)
    with keel.start_run(workspace=autolog, capture_code=False) as run:
        pipe = make_pipeline(StandardScaler(), LogisticRegression(C=2.0)).fit(X, y)
    assert run_count(autolog) == before + 1
    rec = keel.get_run(run.id, workspace=autolog)
    assert rec.params["Pipeline.logisticregression.C"] == 2.0
    assert score(rec) == pytest.approx(pipe.score(X, y))


def test_failing_fit_marks_its_own_run_failed(autolog: Workspace, data: Any) -> None:
    X, y = data
    before = run_count(autolog)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        RandomForestClassifier(n_estimators=2).fit(X, y[:-5])
    page = keel.search_runs(None, limit=10_000, workspace=autolog)
    assert len(page.runs) == before + 1 and page.runs[0].status == "failed"
    assert keel.active_run() is None
    # the next fit is recorded as usual (the nesting depth was reset)
    RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    page = keel.search_runs(None, limit=10_000, workspace=autolog)
    assert len(page.runs) == before + 2 and page.runs[0].status == "finished"
    assert "training_duration_s" in page.runs[0].metrics


def test_classifier_score_is_named_training_accuracy(autolog: Workspace, data: Any) -> None:
    X, y = data
    with keel.start_run(workspace=autolog, capture_code=False) as run:
        RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    metrics = keel.get_run(run.id, workspace=autolog).metrics
    assert "training_accuracy" in metrics and "training_score" not in metrics


def test_disable_restores_fit(ws: Workspace, monkeypatch: pytest.MonkeyPatch, data: Any) -> None:
    X, y = data
    monkeypatch.setenv("KEEL_HOME", str(ws.root))
    classes = [RandomForestClassifier, LogisticRegression, StandardScaler, LabelEncoder]
    owners = {cls: next(k for k in cls.__mro__ if "fit" in k.__dict__) for cls in classes}
    originals = {owner: owner.__dict__["fit"] for owner in owners.values()}
    wrapped = keel.autolog()
    assert keel.autolog() == wrapped  # twice: nothing is wrapped twice
    for owner, fit in originals.items():
        assert owner.__dict__["fit"] is not fit, owner
        assert owner.__dict__["fit"].__wrapped__ is fit, owner
    assert keel.autolog(disable=True) == wrapped
    for owner, fit in originals.items():
        assert owner.__dict__["fit"] is fit, owner
    assert keel.autolog(disable=True) == 0
    with keel.start_run(workspace=ws, capture_code=False) as run:
        RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
        LogisticRegression().fit(X, y)
    rec = keel.get_run(run.id, workspace=ws)
    assert rec.params == {} and rec.metrics == {}
    assert run_count(ws) == 1


def test_autolog_needs_no_estimator_changes(autolog: Workspace, data: Any) -> None:
    """A user's own estimator (not in sklearn's registry) is left alone and still works."""

    class Mine(BaseEstimator):
        def fit(self, X: Any, y: Any = None) -> Mine:
            self.fitted_ = True
            return self

    before = run_count(autolog)
    assert Mine().fit(data[0]).fitted_
    assert run_count(autolog) == before


def test_register_logs_the_fitted_estimator_as_a_version(
    autolog: Workspace, data: tuple[np.ndarray, np.ndarray]
) -> None:
    from keel.registry.versions import resolve_model

    X, y = data
    keel.autolog(register="clf")
    try:
        model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    finally:
        keel.autolog(register=None)
    version = resolve_model(autolog, "clf")
    assert version.ref == "clf/v1" and version.flavor == "sklearn"
    assert version.signature is not None
    assert version.signature["inputs"]["tensor"]["width"] == 4
    assert (version.load().predict(X) == model.predict(X)).all()
    rec = keel.get_run(version.run_id or "", workspace=autolog)
    assert rec.name == "autolog-Pipeline" and rec.status == "finished"
    assert rec.tags["keel.volatile"] == "training_duration_s"
    assert [m["ref"] for m in rec.models] == ["clf/v1"]
    LogisticRegression().fit(X, y)  # register=None: no more versions
    assert resolve_model(autolog, "clf").number == 1


def test_register_needs_a_valid_model_name(autolog: Workspace) -> None:
    with pytest.raises(keel.errors.BadName):
        keel.autolog(register="no way!")
