"""The inference app in-process: routes, validation, logging, routing, swaps and guardrails."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from keel.deploy import (
    Guardrails,
    current_deployment,
    declare_fields,
    deployment_history,
    start_deployment,
)
from keel.registry.versions import promote, rollback
from tests.serve.helpers import ROW


def runtime(client: Any) -> Any:
    return client.app.state.runtime


def logged(ws: Any, client: Any) -> Any:
    runtime(client).writer.flush()
    rel = ws.logs.scan("predictions", "churn")
    return rel.df() if rel is not None else None


def test_predict_records_columns_and_one_record(world, client_for):
    client = client_for(world)
    records = client.post("/predict", json={"inputs": [ROW, {**ROW, "tenure": 40}]})
    assert records.status_code == 200, records.text
    body = records.json()
    assert body["model"] == "churn/v1"
    assert len(body["predictions"]) == len(body["prediction_ids"]) == 2
    assert len(set(body["prediction_ids"])) == 2
    columns = client.post("/predict", json={"inputs": {k: [v, v] for k, v in ROW.items()}})
    assert columns.status_code == 200
    assert columns.json()["predictions"] == [body["predictions"][0]] * 2
    one = client.post("/predict", json={"inputs": ROW})
    assert one.json()["predictions"] == [body["predictions"][0]]


def test_answers_match_the_registered_model(world, client_for):
    import keel
    from tests.serve.helpers import churn_frame

    X, _ = churn_frame(seed=3)
    rows = X.head(50).to_dict(orient="records")
    client = client_for(world)
    served = client.post("/predict", json={"inputs": rows}).json()["predictions"]
    offline = keel.load_model("churn/v1", workspace=world).predict(X.head(50)).tolist()
    assert served == offline


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (
            {"inputs": [{**ROW, "tenure": "three"}]},
            422,
            "inputs[0].tenure: expected integer, got 'three'",
        ),
        ({"inputs": [{"tenure": 3, "plan": "pro"}]}, 422, "inputs[0].monthly: missing (float)"),
        ({"inputs": [{**ROW, "zip": "1"}]}, 422, "unexpected field 'zip'"),
        ({"inputs": [{**ROW, "monthly": None}]}, 422, "may not be null"),
        ({"inputs": [{**ROW, "plan": 7}]}, 422, "expected string, got 7"),
        ({"inputs": [{**ROW, "tenure": 3.5}]}, 422, "expected integer, got 3.5"),
        ({"inputs": [{**ROW, "tenure": True}]}, 422, "expected integer, got True"),
        ({"inputs": []}, 422, "the batch is empty"),
        ({"inputs": [ROW, 5]}, 422, "inputs[1]: expected an object"),
        (
            {"inputs": {"tenure": [1, 2], "monthly": [1.0], "plan": ["a", "b"]}},
            422,
            "different lengths",
        ),
        ({"rows": [ROW]}, 400, '"inputs"'),
        ({"inputs": [ROW], "extra": 1}, 400, "unexpected top-level field 'extra'"),
        ([ROW], 400, '"inputs"'),
        ({"inputs": "x"}, 400, "expected a list of records"),
    ],
)
def test_bad_inputs_are_refused_with_the_field_named(world, client_for, body, status, needle):
    client = client_for(world)
    response = client.post("/predict", json=body)
    assert response.status_code == status, response.text
    doc = response.json()
    assert needle in doc["error"] or any(needle in p["message"] for p in doc.get("problems", []))
    assert "Traceback" not in response.text


def test_every_problem_is_listed(world, client_for):
    client = client_for(world)
    doc = client.post(
        "/predict", json={"inputs": [{"tenure": "x", "monthly": "y", "plan": 1, "extra": 0}]}
    ).json()
    fields = sorted(p["field"] for p in doc["problems"])
    assert fields == ["extra", "monthly", "plan", "tenure"]


def test_nan_literal_malformed_json_and_limits(world, client_for):
    client = client_for(world, max_batch=3, max_body_bytes=2000)
    nan = client.post(
        "/predict", content=b'{"inputs": [{"tenure": 3, "monthly": NaN, "plan": "pro"}]}'
    )
    assert nan.status_code == 422
    assert "monthly" in nan.json()["error"]
    broken = client.post("/predict", content=b'{"inputs": [{"tenure": 3,')
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json()["error"]
    over = client.post("/predict", json={"inputs": [ROW] * 4})
    assert over.status_code == 413
    assert "over the limit of 3 rows" in over.json()["error"]
    huge = client.post("/predict", content=b'{"inputs": [' + b" " * 3000 + b"]}")
    assert huge.status_code == 413
    assert "2000 bytes" in huge.json()["error"]
    assert client.post("/predict", json={"inputs": [ROW]}).status_code == 200


def test_open_inference_protocol_routes(world, client_for):
    client = client_for(world)
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2/models/churn").json()
    assert meta["name"] == "churn" and meta["versions"] == ["1"]
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {
        "tenure": "INT64",
        "monthly": "FP64",
        "plan": "BYTES",
    }
    assert client.get("/v2/models/churn/ready").json() == {"name": "churn", "ready": True}
    request = {
        "id": "r1",
        "inputs": [
            {"name": "tenure", "shape": [2], "datatype": "INT64", "data": [3, 40]},
            {"name": "monthly", "shape": [2, 1], "datatype": "FP64", "data": [[90.5], [20.0]]},
            {"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["pro", "basic"]},
        ],
    }
    out = client.post("/v2/models/churn/infer", json=request)
    assert out.status_code == 200, out.text
    doc = out.json()
    assert doc["model_name"] == "churn" and doc["model_version"] == "1" and doc["id"] == "r1"
    predict = next(o for o in doc["outputs"] if o["name"] == "predict")
    assert predict["shape"] == [2] and len(predict["data"]) == 2
    ids = next(o for o in doc["outputs"] if o["name"] == "prediction_id")
    assert len(ids["data"]) == 2
    unknown = client.post("/v2/models/nope/infer", json=request)
    assert unknown.status_code == 404
    assert "unknown model 'nope'" in unknown.json()["error"]
    assert client.get("/v2/models/nope").status_code == 404
    bad = dict(request, inputs=[dict(request["inputs"][0], shape=[3])])
    assert client.post("/v2/models/churn/infer", json=bad).status_code == 400


def test_predictions_are_logged_with_inputs_and_flushed_on_stop(fresh, client_for):
    client = client_for(fresh)
    ids = []
    for i in range(30):
        ids += client.post("/predict", json={"inputs": [{**ROW, "tenure": i}]}).json()[
            "prediction_ids"
        ]
    client.__exit__(None, None, None)  # a clean stop writes every buffered row
    frame = fresh.logs.scan("predictions", "churn").df()
    assert sorted(frame["prediction_id"]) == sorted(ids)
    assert sorted(frame["input_tenure"]) == list(range(30))
    assert set(frame["version"]) == {1} and set(frame["arm"]) == {"champion"}
    assert frame["served"].all() and frame["latency_ms"].gt(0).all()
    assert frame["score"].between(0, 1).all()


def test_log_sampling(fresh, client_for):
    client = client_for(fresh, log_sample=0.25)
    for _ in range(400):
        client.post("/predict", json={"inputs": [ROW]})
    assert 40 < len(logged(fresh, client)) < 180


def test_feedback_is_idempotent_and_refuses_malformed_ids(fresh, client_for):
    from keel.evaluation.online import join

    client = client_for(fresh)
    ids = client.post("/predict", json={"inputs": [ROW, ROW]}).json()["prediction_ids"]
    first = client.post("/feedback", json={"outcomes": [{"prediction_id": ids[0], "outcome": 1}]})
    assert first.json() == {"accepted": 1, "refused": 0}
    again = client.post("/feedback", json={"prediction_id": ids[0], "outcome": 0})
    assert again.status_code == 200
    unknown = ids[1].replace(ids[1][:4], "0000")
    assert (
        client.post("/feedback", json={"prediction_id": unknown, "outcome": 1}).status_code == 200
    )
    bad = client.post(
        "/feedback",
        json={
            "outcomes": [
                {"prediction_id": ids[1], "outcome": 1},
                {"prediction_id": "nope", "outcome": 1},
            ]
        },
    )
    assert bad.status_code == 422
    assert "none were stored" in bad.json()["error"]
    missing = client.post("/feedback", json={"prediction_id": ids[1]})
    assert missing.status_code == 422
    runtime(client).writer.flush()
    joined = join("churn", workspace=fresh)
    assert list(joined["prediction_id"]) == [ids[0]]
    assert joined["outcome"].tolist() == [1.0]  # the first answer wins; the second is ignored


@pytest.mark.parametrize("wrong", ["benign", 0.7, 5, -1, "1", ""])
def test_outcomes_must_be_one_of_the_models_classes(fresh, client_for, wrong):
    """Any value used to be stored, and one label then made deploy status say accuracy 0."""
    from keel.evaluation.online import join

    client = client_for(fresh)
    ids = client.post("/predict", json={"inputs": [ROW, ROW, ROW]}).json()["prediction_ids"]
    bad = client.post(
        "/feedback",
        json={"outcomes": [{"prediction_id": ids[0], "outcome": 1}, {"prediction_id": ids[1], "outcome": wrong}]},
    )
    assert bad.status_code == 422, bad.text
    body = bad.json()
    assert (body["accepted"], body["refused"]) == (0, 2)
    [problem] = body["problems"]
    assert problem["prediction_id"] == ids[1] and problem["row"] == 1
    assert f"outcome of {ids[1]}: expected one of the classes 0, 1, got {wrong!r}" in problem["message"]
    good = client.post(
        "/feedback",
        json={"outcomes": [{"prediction_id": ids[0], "outcome": 1}, {"prediction_id": ids[2], "outcome": True}]},
    )
    assert good.json() == {"accepted": 2, "refused": 0}
    metrics = client.get("/metrics").text
    assert 'keel_outcomes_refused_total{model="churn"} 2.0' in metrics
    assert 'keel_outcomes_total{model="churn"} 2.0' in metrics
    runtime(client).writer.flush()
    joined = join("churn", workspace=fresh)
    assert sorted(joined["outcome"].tolist()) == [1.0, 1.0]  # nothing of the refused request


def test_feedback_needs_the_token_when_one_is_set(world, client_for):
    client = client_for(world, token="s3cret")
    ids = client.post("/predict", json={"inputs": [ROW]}).json()["prediction_ids"]
    body = {"prediction_id": ids[0], "outcome": 1}
    assert client.post("/feedback", json=body).status_code == 401
    wrong = client.post("/feedback", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "KEEL_SERVE_TOKEN" in wrong.json()["error"]
    ok = client.post("/feedback", json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


def test_a_model_that_raises_is_a_500_with_the_request_id(fresh, client_for):
    promote(fresh, "churn", 3)
    client = client_for(fresh)
    response = client.post("/predict", json={"inputs": [ROW]})
    assert response.status_code == 500
    assert "boom" in response.json()["error"] and "request 0" in response.json()["error"]
    assert client.get("/healthz").status_code == 200
    frame = logged(fresh, client)
    assert frame["error"].str.contains("boom").all()
    metrics = client.get("/metrics").text
    assert 'keel_requests_total{arm="champion",code="500",model="churn",version="3"} 1.0' in metrics


def test_alias_moves_swap_the_model(fresh, client_for):
    client = client_for(fresh)
    assert client.post("/predict", json={"inputs": [ROW]}).json()["model"] == "churn/v1"
    promote(fresh, "churn", 2)
    runtime(client).refresh()
    assert client.post("/predict", json={"inputs": [ROW]}).json()["model"] == "churn/v2"
    rollback(fresh, "churn")
    runtime(client).refresh()
    assert client.post("/predict", json={"inputs": [ROW]}).json()["model"] == "churn/v1"
    assert "keel_model_swaps_total" in client.get("/metrics").text


def test_shadow_scores_every_request_and_answers_none(fresh, client_for):
    start_deployment(fresh, "churn", 2, mode="shadow")
    client = client_for(fresh)
    ids = []
    for _ in range(10):
        body = client.post("/predict", json={"inputs": [ROW]}).json()
        assert body["model"] == "churn/v1"
        ids += body["prediction_ids"]
    frame = logged(fresh, client)
    served = frame[frame["served"]]
    shadow = frame[~frame["served"]]
    assert set(served["version"]) == {1} and set(shadow["version"]) == {2}
    assert sorted(shadow["prediction_id"]) == sorted(ids) == sorted(served["prediction_id"])


def test_canary_routes_by_sticky_key(fresh, client_for):
    declare_fields(fresh, "churn", ["customer_id"])  # `keel serve --extra-field customer_id`
    start_deployment(fresh, "churn", 2, mode="canary", share=0.3, key="customer_id")
    client = client_for(fresh)
    seen: dict[str, set[str]] = {}
    for i in range(300):
        customer = f"c{i % 100}"
        body = client.post("/predict", json={"inputs": [{**ROW, "customer_id": customer}]}).json()
        seen.setdefault(customer, set()).add(body["model"])
    assert all(len(models) == 1 for models in seen.values())  # sticky
    challenger = sum("churn/v2" in m for m in seen.values())
    assert 15 <= challenger <= 45  # about 30 of 100 customers
    mixed = client.post(
        "/predict", json={"inputs": [{**ROW, "customer_id": f"c{i}"} for i in range(40)]}
    ).json()
    assert set(mixed["model"]) == {"churn/v1", "churn/v2"}  # a batch is split row by row
    missing = client.post("/predict", json={"inputs": [ROW]})
    assert missing.status_code == 422 and "customer_id" in missing.text


def test_guardrail_breach_routes_everything_back(fresh, client_for):
    rails = Guardrails.parse({"max_error_rate": 0.05, "min_requests": 5})
    start_deployment(fresh, "churn", 3, mode="canary", share=0.5, guardrails=rails)
    client = client_for(fresh)
    codes = [client.post("/predict", json={"inputs": [ROW]}).status_code for _ in range(40)]
    assert 500 in codes
    rt = runtime(client)
    rt.guard(rt.routing)
    assert rt.routing.deployment is None
    assert current_deployment(fresh, "churn") is None
    last = deployment_history(fresh, "churn")[0]
    assert last.action == "rollback" and "error rate" in last.message
    assert all(
        client.post("/predict", json={"inputs": [ROW]}).status_code == 200 for _ in range(20)
    )


def test_healthz_and_metrics(world, client_for):
    client = client_for(world)
    client.post("/predict", json={"inputs": [ROW]})
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == "churn/v1"
    text = client.get("/metrics").text
    assert 'keel_requests_total{arm="champion",code="200",model="churn",version="1"}' in text
    assert "keel_request_latency_seconds_bucket" in text
    assert "keel_prediction_bucket" in text
    assert "keel_invalid_requests_total" in text or "keel_invalid_requests" in text


def test_openapi_documents_every_route(world, client_for):
    spec = client_for(world).get("/openapi.json").json()
    for path in ("/predict", "/feedback", "/healthz", "/metrics", "/v2/models/{name}/infer"):
        assert path in spec["paths"], path
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert "inputs" in body["schema"]["properties"]
    assert math.isfinite(len(json.dumps(spec)))


def test_the_newest_drift_report_is_exported_as_gauges(fresh, client_for):
    import keel
    from keel.monitor.records import record_report
    from keel.monitor.sources import Side
    from keel.registry.versions import resolve_model
    from tests.serve.helpers import churn_frame

    reference, _ = churn_frame(n=2000, seed=1)
    current, _ = churn_frame(n=2000, seed=2)
    current["monthly"] = current["monthly"] + 25.0  # a shift no one can miss
    report = keel.monitor.drift(reference, current, multivariate=False, record=False)
    assert report.drifted_features == ["monthly"]
    mv = resolve_model(fresh, "churn@champion")
    record_report(fresh, report, Side("churn@champion", model=mv), Side("window"))
    client = client_for(fresh)
    runtime(client).export_drift(force=True)
    text = client.get("/metrics").text
    assert 'keel_drift_detected{model="churn",version="1"} 1.0' in text
    assert 'keel_drifted_features{model="churn",version="1"} 1.0' in text
    assert 'keel_feature_drift{feature="monthly"' in text


def test_extra_fields_ride_along_and_are_logged(fresh, client_for):
    client = client_for(fresh, extra_fields=("customer_id",))
    with_id = client.post("/predict", json={"inputs": [{**ROW, "customer_id": "c7"}, ROW]})
    assert with_id.status_code == 200, with_id.text
    assert (
        with_id.json()["predictions"]
        == client.post("/predict", json={"inputs": [ROW, ROW]}).json()["predictions"]
    )
    nested = client.post("/predict", json={"inputs": [{**ROW, "customer_id": {"a": 1}}]})
    assert nested.status_code == 422 and "expected a single value" in nested.text
    other = client.post("/predict", json={"inputs": [{**ROW, "zip": "1"}]})
    assert other.status_code == 422  # only the declared fields ride along
    frame = logged(fresh, client)
    assert sorted(frame["input_customer_id"].dropna()) == ["c7"]
    # a keyed canary started later routes by the same field, and rows then need it
    start_deployment(fresh, "churn", 2, mode="canary", share=0.5, key="customer_id")
    runtime(client).refresh()
    assert (
        client.post("/predict", json={"inputs": [{**ROW, "customer_id": "c7"}]}).status_code == 200
    )
    assert client.post("/predict", json={"inputs": [ROW]}).status_code == 422
