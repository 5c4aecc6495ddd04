"""``keel features skew``: served feature values against the point-in-time offline ones for
the same entity and time. None when the online table holds what training computes; an
injected skew (a changed transformation served from a stale online table) is named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import keel
from keel.workspace import Workspace
from tests.conftest import run_keel, write_files
from tests.features.test_apply import DEFINITIONS, ok
from tests.serve.test_features import COLUMNS, Score
from tests.track.helpers import one_error_line


def _days_ago(n: int) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=n)).date().isoformat()


def _bills() -> str:
    rows = [(1, 40, 10), (1, 10, 20), (2, 20, 5), (2, 5, 40), (3, 3, 8)]
    return "customer_id,ts,amount\n" + "".join(f"{c},{_days_ago(d)},{a}\n" for c, d, a in rows)


def _train(ws: Workspace, number: int) -> None:
    labels = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "ts": pd.to_datetime([_days_ago(1)] * 3),
            "plan": ["pro", "basic", "pro"],
            "churned": [0, 1, 0],
        }
    )
    train = keel.features.training_set(labels, ["spend", "spend_ratio"], name="churn-train", workspace=ws)
    with keel.start_run(name="train", workspace=ws, capture_code=False) as run:
        frame = run.use(train).to_pandas()
        run.log_model(Score(), "churn", input_example=frame[COLUMNS].head(3))
    from keel.registry.versions import promote

    promote(ws, "churn", number)


def _serve(ws: Workspace, **settings: Any) -> None:
    from fastapi.testclient import TestClient

    from keel.serve import ServeConfig, create_app

    config = ServeConfig(model="churn", workspace=str(ws.root), poll_seconds=60, **settings)
    with TestClient(create_app(config, workspace=ws)) as client:
        for customer in (1, 2, 3, 1):
            got = client.post("/predict", json={"inputs": {"customer_id": customer, "plan": "pro"}})
            assert got.status_code == 200, got.text


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = keel.init(tmp_path / "ws")
    write_files(tmp_path / "data", {"transactions.csv": _bills()})
    keel.data.add(tmp_path / "data" / "transactions.csv", name="transactions", workspace=ws)
    (tmp_path / "ws" / "features.py").write_text(DEFINITIONS)
    keel.features.apply(tmp_path / "ws" / "features.py", workspace=ws)
    _train(ws, 1)
    keel.features.build_online("spend", workspace=ws)
    _serve(ws)
    ws.close()
    return tmp_path / "ws"


def test_no_skew_when_the_online_table_holds_what_training_computes(root: Path) -> None:
    report = ok(root, "features", "skew", "churn@champion", "--json")
    assert report["model"] == "churn/v1" and report["logged"] == 4 and report["compared"] == 4
    assert report["skewed"] == []
    assert [f["feature"] for f in report["features"]] == ["spend_30d", "spend_90d", "spend_ratio"]
    assert all(f["share"] == 0 and f["offline"] == f["trained_on"] for f in report["features"])
    text = ok(root, "features", "skew", "churn@champion", "--since", "1h")
    assert "4 of 4 logged requests" in text and "no skew" in text
    assert "no logged requests" in ok(root, "features", "skew", "churn", "--since", "2999-01-01")


def test_a_changed_transformation_served_from_a_stale_table_is_named(root: Path) -> None:
    # the transformation changes and the model is retrained on it; the online table is not
    # rebuilt, and the server is told to serve it anyway
    (root / "features.py").write_text(
        DEFINITIONS.replace("::double as spend_30d", "::double * 2 as spend_30d")
    )
    ok(root, "features", "apply", "features.py")
    ws = keel.connect(root)
    try:
        _train(ws, 2)
        _serve(ws, allow_stale_features=True)
    finally:
        ws.close()
    report = ok(root, "features", "skew", "churn@champion", "--json")
    assert report["model"] == "churn/v2" and report["compared"] == 4
    assert report["skewed"] == ["spend_30d", "spend_ratio"]  # spend_90d did not change
    by = {f["feature"]: f for f in report["features"]}
    assert by["spend_30d"]["share"] == 1.0 and by["spend_30d"]["trained_on"] == "spend@v2"
    # customer 2's 30-day spend is 5 + 40: served 45, computed as training does 90
    assert by["spend_30d"]["max_abs_diff"] == pytest.approx(45)
    assert by["spend_90d"]["share"] == 0.0
    text = ok(root, "features", "skew", "churn@champion")
    assert "skew: spend_30d, spend_ratio served differently than trained" in text
    # the first model's requests still compare clean
    assert ok(root, "features", "skew", "churn/v1", "--json")["skewed"] == []


def test_skew_of_a_model_without_features_is_refused(root: Path) -> None:
    ws = keel.connect(root)
    try:
        with keel.start_run(workspace=ws, capture_code=False) as run:
            run.log_model(Score(), "plain", input_example=pd.DataFrame({"spend_ratio": [1.0], "plan": ["pro"]}))
    finally:
        ws.close()
    line = one_error_line(run_keel("features", "skew", "plain", cwd=root))
    assert "plain/v1 was not trained on a training set" in line
    line = one_error_line(run_keel("features", "skew", "churn", "--sample", "0", cwd=root))
    assert "invalid sample 0" in line
