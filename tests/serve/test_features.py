"""Serving a model trained on a training set: requests carry the entity key, the server
looks the features up in the online table (on-demand ones computed by their recorded
function), checks and logs them; unknown entities, stale online tables and bad keys are
refused with a clear message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import keel
from keel.workspace import Workspace
from tests.conftest import run_keel, write_files
from tests.features.test_apply import DEFINITIONS
from tests.track.helpers import one_error_line

# customers 1..3 with bills; 4 has none; labels known on 03-01, with a request-time plan
BILLS = (
    "customer_id,ts,amount\n"
    "1,2026-01-01,10\n1,2026-02-01,20\n2,2026-01-15,5\n2,2026-02-20,40\n3,2026-02-25,8\n"
)
LABELS = pd.DataFrame(
    {
        "customer_id": [1, 2, 3, 1],
        "ts": pd.to_datetime(["2026-03-01"] * 3 + ["2026-02-10"]),
        "plan": ["pro", "basic", "pro", "basic"],
        "churned": [0, 1, 0, 1],
    }
)
COLUMNS = ["spend_30d", "spend_90d", "spend_ratio", "plan"]


class Score(keel.PythonModel):
    """A score anyone can check by hand: the spend ratio, plus one on the pro plan."""

    def predict(self, inputs: Any) -> Any:
        return (inputs["spend_ratio"] + (inputs["plan"] == "pro")).tolist()


def _world(root: Path, *, default: bool = False) -> Workspace:
    ws = keel.init(root / "ws")
    write_files(root / "data", {"transactions.csv": BILLS})
    keel.data.add(root / "data" / "transactions.csv", name="transactions", workspace=ws)
    text = DEFINITIONS
    if default:
        text = text.replace('ttl="90d")', 'ttl="90d", default=0.0)')
    (root / "ws" / "features.py").write_text(text)
    keel.features.apply(root / "ws" / "features.py", workspace=ws)
    train = keel.features.training_set(LABELS, ["spend", "spend_ratio"], name="churn-train", workspace=ws)
    with keel.start_run(name="train", workspace=ws, capture_code=False) as run:
        frame = run.use(train).to_pandas()
        run.log_model(Score(), "churn", input_example=frame[COLUMNS].head(3))
    from keel.registry.versions import promote

    promote(ws, "churn", 1)
    return ws


@pytest.fixture
def served(tmp_path: Path) -> Workspace:
    ws = _world(tmp_path)
    keel.features.build_online("spend", as_of="2026-03-01", workspace=ws)
    return ws


def _client(ws: Workspace, **settings: Any) -> TestClient:
    from keel.serve import ServeConfig, create_app

    config = ServeConfig(model="churn", workspace=str(ws.root), poll_seconds=60, **settings)
    return TestClient(create_app(config, workspace=ws), raise_server_exceptions=False)


def test_the_signature_names_the_features_and_the_entity_key(served: Workspace) -> None:
    sig = keel.load_model("churn/v1", workspace=served).signature
    assert sig is not None and sig.features is not None
    assert sig.features["entities"] == {"customer_id": "integer"}
    assert [(v["ref"], v["columns"]) for v in sig.features["views"]] == [
        ("spend@v1", ["spend_30d", "spend_90d"])
    ]
    assert [d["ref"] for d in sig.features["on_demand"]] == ["spend_ratio@v1"]
    assert sig.features["training_sets"] == ["churn-train@v1"]


def test_requests_carry_the_key_and_the_features_are_looked_up(served: Workspace) -> None:
    with _client(served) as client:
        got = client.post("/predict", json={"inputs": [
            {"customer_id": 1, "plan": "pro"}, {"customer_id": 2, "plan": "basic"},
        ]})  # fmt: skip
        assert got.status_code == 200, got.text
        # customer 1 on 03-01: 20 over 30 days, 30 over 90; customer 2: 40 of 45
        assert got.json()["predictions"] == pytest.approx([20 / 30 + 1, 40 / 45])
        # the same values a training set on that day gives
        offline = keel.features.training_set(
            LABELS.iloc[:2], ["spend", "spend_ratio"], workspace=served
        ).to_pandas()
        assert got.json()["predictions"] == pytest.approx(
            (offline["spend_ratio"] + (offline["plan"] == "pro")).tolist()
        )
        # a wrongly typed key, a missing key, a feature sent inline: 422, one per field
        for body, field in [
            ({"customer_id": "one", "plan": "pro"}, "customer_id"),
            ({"plan": "pro"}, "customer_id"),
            ({"customer_id": 1, "plan": "pro", "spend_30d": 3.0}, "spend_30d"),
        ]:
            bad = client.post("/predict", json={"inputs": [body]})
            assert bad.status_code == 422, bad.text
            assert bad.json()["problems"][0]["field"] == field
        # an entity the online table does not hold, and no default: 422 naming both
        unknown = client.post("/predict", json={"inputs": {"customer_id": 4, "plan": "pro"}})
        assert unknown.status_code == 422
        message = unknown.json()["problems"][0]["message"]
        assert "customer_id=4" in message and "spend_30d" in message and "no default" in message
        # the Open Inference Protocol: the metadata names what a client sends, infer looks up
        meta = client.get("/v2/models/churn").json()
        assert [i["name"] for i in meta["inputs"]] == ["customer_id", "plan"]
        infer = client.post("/v2/models/churn/infer", json={"inputs": [
            {"name": "customer_id", "shape": [1], "datatype": "INT64", "data": [3]},
            {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["pro"]},
        ]})  # fmt: skip
        assert infer.status_code == 200, infer.text
        assert infer.json()["outputs"][0]["data"] == pytest.approx([1.0 + 1])  # 8 of 8, pro
    # what was served is logged whole: drift monitoring sees what the model saw
    logged = served.logs.to_arrow("predictions", "churn").to_pandas()
    logged = logged[logged["prediction_id"].notna()].sort_values("prediction_id")
    assert logged["input_customer_id"].tolist() == [1, 2, 3]
    assert logged["input_spend_90d"].tolist() == [30.0, 45.0, 8.0]
    assert logged["input_spend_ratio"].tolist() == pytest.approx([20 / 30, 40 / 45, 1.0])


def test_a_declared_default_answers_for_an_unknown_entity(tmp_path: Path) -> None:
    ws = _world(tmp_path, default=True)
    keel.features.build_online("spend", as_of="2026-03-01", workspace=ws)
    with _client(ws) as client:
        got = client.post("/predict", json={"inputs": {"customer_id": 4, "plan": "pro"}})
        assert got.status_code == 200, got.text
        assert got.json()["predictions"] == [1.0]  # ratio 0 / max(0, 1) = 0, plus pro


def test_an_online_table_of_other_versions_is_refused_or_served_with_a_warning(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    ws = _world(tmp_path)
    keel.features.build_online("spend", as_of="2026-03-01", workspace=ws)
    # the transformation changes and the model is retrained on it, but the online table
    # still holds the old one's values
    (root / "features.py").write_text(DEFINITIONS.replace("::double as spend_30d", "::double * 2 as spend_30d"))
    keel.features.apply(root / "features.py", workspace=ws)
    train = keel.features.training_set(LABELS, ["spend", "spend_ratio"], name="churn-train", workspace=ws)
    with keel.start_run(name="train", workspace=ws, capture_code=False) as run:
        frame = run.use(train).to_pandas()
        run.log_model(Score(), "churn", input_example=frame[COLUMNS].head(3))
    from keel.registry.versions import promote

    promote(ws, "churn", 2)
    ws.close()
    proc = run_keel("serve", "churn", "--port", "0", cwd=root)
    line = one_error_line(proc)
    assert "built from spend@v1: an older version than spend@v2" in line
    assert "--allow-stale-features" in line
    ws = keel.connect(root)
    try:
        with _client(ws, allow_stale_features=True) as client:
            got = client.post("/predict", json={"inputs": {"customer_id": 1, "plan": "basic"}})
            assert got.status_code == 200  # served from the stale table, with a warning
            assert got.json()["predictions"] == pytest.approx([20 / 30])
        # rebuilt from the version the model was trained on: served, nothing stale
        keel.features.build_online("spend", as_of="2026-03-01", workspace=ws)
        with _client(ws) as client:
            got = client.post("/predict", json={"inputs": {"customer_id": 1, "plan": "basic"}})
            assert got.json()["predictions"] == pytest.approx([40 / 30])
    finally:
        ws.close()


def test_serve_refuses_a_model_whose_features_were_never_built(tmp_path: Path) -> None:
    ws = _world(tmp_path)
    ws.close()
    line = one_error_line(run_keel("serve", "churn", "--port", "0", cwd=tmp_path / "ws"))
    assert "holds no build of spend" in line and "features build spend --online" in line


def test_a_newer_version_serves_only_when_it_computes_the_same_way(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = _world(tmp_path)
    # the code changes after the model was trained, and the online table is built from it
    (root / "features.py").write_text(DEFINITIONS.replace("::double as spend_30d", "::double * 2 as spend_30d"))
    keel.features.apply(root / "features.py", workspace=ws)
    keel.features.build_online("spend", as_of="2026-03-01", workspace=ws)
    ws.close()
    line = one_error_line(run_keel("serve", "churn", "--port", "0", cwd=root))
    assert "built from spend@v2: a version whose code changed since spend@v1" in line
    # the code the model was trained on, over newer bills: the same computation, fresher data
    write_files(tmp_path / "more", {"transactions.csv": BILLS + "4,2026-02-27,12\n"})
    ws = keel.connect(root)
    try:
        keel.data.add(tmp_path / "more" / "transactions.csv", name="transactions", workspace=ws)
        (root / "features.py").write_text(DEFINITIONS)
        assert [a.version.ref for a in keel.features.apply(root / "features.py", workspace=ws)] == [
            "spend@v3",
            "spend_ratio@v3",
        ]
        keel.features.build_online("spend", as_of="2026-03-01", workspace=ws)
        with _client(ws) as client:
            got = client.post("/predict", json={"inputs": {"customer_id": 4, "plan": "basic"}})
            assert got.status_code == 200, got.text  # customer 4 is new in the newer data
            assert got.json()["predictions"] == pytest.approx([1.0])
    finally:
        ws.close()
