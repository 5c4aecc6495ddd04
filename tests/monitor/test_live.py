"""The live monitor: windows read from the log lake, judged against the served version's training
data, recorded; alerts to webhooks that answer, are down, or are slow."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import keel
from keel.errors import InvalidInput, NotFound
from keel.monitor import Alerter, check, watch
from keel.monitor.alerts import post_json
from keel.monitor.records import drift_reports_of
from keel.registry.versions import resolve_model
from keel.workspace import Workspace
from tests.monitor.live_world import (
    Traffic,
    build,
    closed_port_url,
    customers,
    log_outcomes,
    log_traffic,
    webhook,
)

NOW = time.time()
CLEAN = (NOW - 3 * 3600, NOW - 3 * 3600 + 600)  # 3,000 served rows, 7 errors, 40 shadow rows
DRIFTED = (NOW - 2 * 3600, NOW - 2 * 3600 + 600)  # 3,000 served rows, monthly and plan drifted
TINY = (NOW - 3600, NOW - 3600 + 60)  # 20 rows, with one more input (a routing key)


@dataclass
class World:
    ws: Workspace
    clean: Traffic
    root: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("live")
    ws = build(root)
    clean = log_traffic(ws, 3000, start=CLEAN[0], seconds=600, seed=2, errors=7, shadow=40)
    log_traffic(ws, 3000, start=DRIFTED[0], seconds=600, seed=3, drift=True)
    log_traffic(ws, 20, start=TINY[0], seconds=60, seed=4, drift=True, extra_input="customer_id")
    log_outcomes(ws, clean.ids, clean.truth, at=CLEAN[1] + 60)
    yield World(ws, clean, root)
    ws.close()


def _check(world: World, span: tuple[float, float], **kw: object) -> keel.monitor.MonitorResult:
    kw.setdefault("multivariate", False)
    return check("churn", since=span[0], until=span[1], workspace=world.ws, **kw)  # type: ignore[arg-type]


def test_a_clean_window_is_no_drift_and_is_recorded_against_the_served_version(
    world: World,
) -> None:
    result = _check(world, CLEAN)
    assert result.status == "no drift" and result.drifted_features == []
    # Only served, error-free rows: the 7 failed requests and 40 shadow rows are left out.
    assert result.window.rows == 3000 and result.window.sampled == 3000
    # customer_id (only the TINY traffic has it) is no input of this window.
    assert result.window.inputs == ["monthly", "plan", "region", "tenure"]
    assert result.version == "churn/v1" and result.window.prediction_source == "score"
    report = result.report
    assert report is not None
    assert "training data of churn/v1" in report.reference and report.dataset == "customers@v1"
    assert sorted(report.features) == ["monthly", "plan", "region", "tenure"]
    rows = drift_reports_of(world.ws, model=resolve_model(world.ws, "churn/v1"))
    assert report.id in [r["id"] for r in rows]
    assert result.to_dict()["window"]["versions"] == [1]
    # The served scores are compared with the model's own scores on its training data.
    assert report.prediction is not None and report.prediction.status == "no drift"
    assert report.prediction.reference_source == "model"
    assert "reference: scores of churn/v1 on customers@v1" in report.prediction.notes[0]


def test_a_drifted_window_names_what_drifted_and_estimates_performance(world: World) -> None:
    result = _check(world, DRIFTED, multivariate=True)
    assert result.status == "drift" and result.drifted
    assert sorted(result.drifted_features) == ["monthly", "plan"]
    report = result.report
    assert report is not None and report.multivariate is not None and report.multivariate.drifted
    # No outcomes for this window yet: performance is estimated from the scores.
    assert report.performance is None and report.estimated_performance is not None
    assert 0.5 < report.estimated_performance.accuracy < 1.0
    alert = result.alert()
    assert alert["model"] == "churn" and alert["version"] == "churn/v1"
    assert alert["report"] == report.id and alert["window"]["rows"] == 3000
    names = {f["name"]: f for f in alert["drifted_features"]}
    # Higher bills churn more: the model's scores moved with them.
    assert set(names) == {"monthly", "plan", "prediction"}
    assert report.prediction is not None and report.prediction.drifted
    assert names["monthly"]["statistic"] > names["monthly"]["threshold"]
    json.dumps(alert)  # the webhook payload is plain JSON


def test_outcomes_that_arrived_become_the_target_and_realized_performance(world: World) -> None:
    result = _check(world, CLEAN, target="churned")
    assert result.window.outcomes == 3000 and result.window.target == "churned"
    report = result.report
    assert report is not None and report.performance is not None
    accuracies = [c["accuracy"] for c in report.performance.chunks]
    assert len(accuracies) == 10 and all(0.6 < a < 1.0 for a in accuracies)
    # Named after the training data's target column, the outcome is judged for drift too.
    assert report.target is not None and report.target.status == "no drift"
    assert report.estimated_performance is None


def test_last_n_rows_and_the_sample_cap(world: World) -> None:
    last = check("churn", last=500, until=CLEAN[1], workspace=world.ws, multivariate=False)
    assert last.window.rows == 500 and last.window.last == 500
    assert last.window.first_ts is not None and last.window.first_ts >= CLEAN[1] - 101
    capped = _check(world, DRIFTED, max_rows=1000)
    assert capped.window.rows == 3000 and capped.window.sampled == 1000
    assert sorted(capped.drifted_features) == ["monthly", "plan"]
    assert "sampled 1,000" in capped.window.describe()


def test_too_few_rows_is_not_enough_data_not_drift(world: World) -> None:
    tiny = _check(world, TINY)
    assert tiny.status == "not enough data" and not tiny.drifted and tiny.report is None
    assert "only 20 served predictions" in tiny.reason
    empty = check("churn", window="1s", now=NOW - 10 * 3600, workspace=world.ws)
    assert empty.status == "not enough data" and empty.window.rows == 0
    # Below the column rule's 30 values, the report itself says "not enough data" too.
    judged = _check(world, TINY, min_rows=10)
    assert judged.report is not None and judged.status == "not enough data"
    assert judged.reason == "no column had enough values to judge"


def test_a_named_reference_replaces_the_training_data(world: World) -> None:
    path = world.root / "drifted.csv"
    customers(3000, seed=9, drift=True).to_csv(path, index=False)
    result = _check(world, DRIFTED, reference=str(path))
    assert result.status == "no drift" and result.report is not None
    assert result.report.reference == str(path)
    mv = resolve_model(world.ws, "churn/v1")
    assert result.report.id in [r["id"] for r in drift_reports_of(world.ws, model=mv)]


def test_bad_input_is_one_clear_error(world: World) -> None:
    with pytest.raises(NotFound):
        check("nosuch", workspace=world.ws)
    with pytest.raises(InvalidInput, match="invalid interval 'soon'"):
        check("churn", window="soon", workspace=world.ws)
    with pytest.raises(InvalidInput, match="--last"):
        check("churn", last=0, workspace=world.ws)
    with pytest.raises(InvalidInput, match="invalid alert URL"):
        Alerter(["file:///etc/passwd"])


def test_a_webhook_gets_the_alert_once_when_it_answers() -> None:
    with webhook() as hook:
        d = post_json(hook.url, {"event": "drift", "model": "churn"}, timeout=2)
    assert d.ok and d.attempts == 1 and d.status == 200
    assert hook.received == [{"event": "drift", "model": "churn"}]


def test_a_down_webhook_is_retried_with_exponential_backoff() -> None:
    waits: list[float] = []
    d = post_json(closed_port_url(), {"x": 1}, timeout=1, backoff=0.5, sleep=waits.append)
    assert not d.ok and d.attempts == 3 and waits == [0.5, 1.0]
    assert d.error and "refused" in d.error.lower()


def test_a_slow_webhook_times_out_and_is_retried() -> None:
    with webhook(delay=1.0) as hook:
        d = post_json(hook.url, {"x": 1}, timeout=0.2, backoff=0.01)
        assert not d.ok and d.attempts == 3 and "timed out" in (d.error or "")
        assert len(hook.hits) == 3


def test_server_errors_are_retried_client_errors_are_not() -> None:
    with webhook(status=503) as hook:
        assert post_json(hook.url, {}, backoff=0.01).attempts == 3
        assert len(hook.hits) == 3
    with webhook(status=404) as hook:
        d = post_json(hook.url, {}, backoff=0.01)
        assert (d.ok, d.attempts, d.status) == (False, 1, 404) and len(hook.hits) == 1


def test_watch_delivers_to_every_webhook_and_survives_bad_ones(
    world: World, tmp_path: Path
) -> None:
    alert_file = tmp_path / "alerts.jsonl"
    seen: list[str] = []
    with webhook() as good, webhook(delay=1.0) as slow:
        down = closed_port_url()
        alerter = Alerter(
            [good.url, down, slow.url],
            alert_file,
            timeout=0.3,
            backoff=0.05,
            on_delivery=lambda d, a: seen.append(f"{d.url} {d.ok}"),
        )
        started = time.monotonic()
        results = watch(
            "churn",
            0.05,
            times=3,
            alerter=alerter,
            realert=0,  # a lasting finding is sent again at every check
            since=DRIFTED[0],
            until=DRIFTED[1],
            multivariate=False,
            workspace=world.ws,
        )
        checked = time.monotonic() - started
        alerter.close(wait=10)
        # Three tries at the slow hook take >= 0.9 s; the checks did not wait for them.
        assert len(slow.hits) == 9
        assert checked < 0.9 * 3
    assert [r.status for r in results] == ["drift"] * 3
    assert [a["report"] for a in good.received] == [r.report.id for r in results if r.report]
    assert {f["name"] for f in good.received[0]["drifted_features"]} == {"monthly", "plan", "prediction"}
    lines = [json.loads(line) for line in alert_file.read_text().splitlines()]
    assert [x["event"] for x in lines].count("alert") == 3
    failed = [x for x in lines if x["event"] == "delivery_failed"]
    assert sorted(x["url"] for x in failed) == sorted([down] * 3 + [slow.url] * 3)
    assert all(x["attempts"] == 3 and x["report"] and x["error"] for x in failed)
    assert sorted(seen).count(f"{good.url} True") == 3


def test_watch_keeps_going_after_a_failed_check(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.monitor.live as live

    real = live.check
    calls: list[int] = []

    def flaky(*args: object, **kw: object) -> live.MonitorResult:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("the log lake is on a flaky disk")
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(live, "check", flaky)
    errors: list[BaseException] = []
    results = watch(
        "churn",
        "0.01s",
        times=3,
        on_error=errors.append,
        since=CLEAN[0],
        until=CLEAN[1],
        multivariate=False,
        workspace=world.ws,
    )
    assert len(calls) == 3 and len(results) == 2 and "flaky disk" in str(errors[0])
    with pytest.raises(InvalidInput, match="--times"):
        watch("churn", "1s", times=0, workspace=world.ws)


def _stepping(monkeypatch: pytest.MonkeyPatch, spans: list[tuple[float, float]]) -> None:
    """Each check of a watch reads the next of ``spans``: traffic that drifts, then recovers."""
    import keel.monitor.live as live

    real = live.check
    left = iter(spans)

    def step(model: str, **kw: object) -> live.MonitorResult:
        since, until = next(left)
        return real(model, **{**kw, "since": since, "until": until})  # type: ignore[arg-type]

    monkeypatch.setattr(live, "check", step)


@pytest.mark.parametrize(("realert", "repeats"), [(3600.0, []), (0.0, [True, True])])
def test_a_lasting_finding_fires_once_repeats_after_realert_and_resolves(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    realert: float,
    repeats: list[bool],
) -> None:
    _stepping(monkeypatch, [DRIFTED, DRIFTED, DRIFTED, TINY, CLEAN, CLEAN])
    alert_file = tmp_path / "alerts.jsonl"
    with webhook() as hook:
        alerter = Alerter([hook.url], alert_file)
        results = watch(
            "churn",
            0.01,
            times=6,
            alerter=alerter,
            realert=realert,
            multivariate=False,
            workspace=world.ws,
        )
        alerter.close(wait=10)
    assert [r.status for r in results] == ["drift"] * 3 + ["not enough data"] + ["no drift"] * 2
    sent = [json.loads(line) for line in alert_file.read_text().splitlines()]
    # fired when it started, again only once realert had passed, resolved when it ended:
    # not by the window too small to judge, by the first clean one
    assert [x["state"] for x in sent] == ["firing"] * (1 + len(repeats)) + ["resolved"]
    ids = {"churn/drift/monthly", "churn/drift/plan", "churn/drift/prediction"}
    for x, repeat in zip(sent, [False, *repeats], strict=False):
        assert {a["id"] for a in x["alerts"]} == ids
        assert all(a["status"] == "firing" and a["repeat"] is repeat for a in x["alerts"])
    ended = sent[-1]
    assert ended["report"] == results[4].report.id  # type: ignore[union-attr]
    assert {a["id"] for a in ended["alerts"]} == ids
    assert all(a["status"] == "resolved" and a["ended_at"] >= a["started_at"] for a in ended["alerts"])
    assert all(a["text"].startswith(a["column"]) for a in ended["alerts"])
    assert [x["state"] for x in hook.received] == [x["state"] for x in sent]
    assert alerter.sent == {"firing": 3 * (1 + len(repeats)), "resolved": 3}


def test_monitor_judges_the_models_inputs_not_every_logged_field(world: World) -> None:
    # TINY's rows carry a routing key the model never sees; the 3,000 clean rows do not.
    wide = check(
        "churn", since=CLEAN[0], until=TINY[1], min_rows=30, workspace=world.ws, multivariate=False
    )
    report = wide.report
    assert report is not None and "customer_id" in wide.window.inputs
    assert set(report.features) == {"tenure", "monthly", "plan", "region"}
    assert any(n.startswith("not judged: customer_id (logged, but not inputs of churn/v1") for n in report.notes)
    asked = check(
        "churn",
        since=CLEAN[0],
        until=TINY[1],
        include="customer_id,tenure",
        workspace=world.ws,
        multivariate=False,
    )
    assert asked.report is not None and set(asked.report.features) == {"tenure"}
    # customer_id is in neither the training data's columns judged nor absent: it is new
    assert "customer_id" in asked.report.schema.new
    left_out = check(
        "churn", since=CLEAN[0], until=CLEAN[1], exclude="region", workspace=world.ws, multivariate=False
    )
    assert left_out.report is not None and "region" not in left_out.report.features


def test_an_id_column_is_not_judged_by_its_distribution() -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"id": [f"c{i}" for i in range(2000)], "x": rng.normal(size=2000)})
    cur = pd.DataFrame({"id": [f"d{i}" for i in range(2000)], "x": rng.normal(size=2000)})
    report = keel.monitor.drift(ref, cur)
    assert report.features["id"].status == "identifier" and not report.drifted
    assert report.multivariate is not None and "id" not in report.multivariate.columns
    cur.loc[: int(2000 * 0.935), "id"] = None  # the key stopped arriving: that is still seen
    gone = keel.monitor.drift(ref, cur, multivariate=False).features["id"]
    assert gone.drifted and gone.reasons == ["missing values 0.0% -> 93.5%"]


def test_outcomes_join_when_only_a_few_rows_logged_a_score(world: World) -> None:
    # One version logged scores, the next only answers: 20 of 1,000 rows have a score, and
    # 900 have an outcome. The answers are the prediction column; every outcome counts.
    span = (NOW - 5 * 3600, NOW - 5 * 3600 + 300)
    scores: list[float | None] = [None] * 1000
    scores[:20] = [0.9] * 20
    traffic = log_traffic(world.ws, 1000, start=span[0], seconds=300, seed=9, scores=scores)
    log_outcomes(world.ws, traffic.ids[:900], traffic.truth[:900], at=span[1] + 60)
    result = _check(world, span)
    assert result.window.prediction_source == "prediction" and result.window.outcomes == 900
    report = result.report
    assert report is not None and report.performance is not None
    assert sum(c["rows"] for c in report.performance.chunks) == 900
    assert not any("performance: only" in n for n in report.notes)
