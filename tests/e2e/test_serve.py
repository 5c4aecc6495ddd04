"""End to end: `keel serve`, `keel deploy`, `keel logs` and `/feedback`, as a user drives them.

Every test runs the real ``keel`` executable and real servers on 127.0.0.1
(issue 6; ARCHITECTURE.md §5: the server answers every request it accepted, a
swap or rollback under load fails none, logged predictions survive a clean
stop completely and a kill -9 up to one flush interval). The log lake is read
straight from its Parquet segments with DuckDB, not through keel's reader.
"""

from __future__ import annotations

import json
import math
import signal
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import keel
from tests.e2e.serve_helpers import (
    MODEL,
    Load,
    Server,
    copy_workspace,
    keel_json,
    keel_ok,
    keel_run,
    log_rows,
    one_error_line,
    record,
    request,
    serving,
    start_server,
    wait_for,
    wait_for_log,
)


@pytest.fixture(scope="module")
def shared(tpl: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server for the tests that only predict and send feedback."""
    root = copy_workspace(tpl, tmp_path_factory.mktemp("shared") / "ws")
    server = start_server(root)
    yield server
    server.stop()


def strict_json(text: str) -> Any:
    """JSON as the standard defines it: no NaN or Infinity literals."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def deployment_seen(server: Server, mode: str | None) -> bool:
    dep = server.get("/healthz").json["deployment"]
    return (dep is None) if mode is None else (dep is not None and dep["mode"] == mode)


# -- 1. the routes ------------------------------------------------------------------


def test_predict_answers_records_and_columns_and_the_v2_routes(shared: Server) -> None:
    rows = [record(i) for i in range(3)]
    by_records = shared.predict(rows)
    assert by_records.status == 200, by_records.text
    doc = by_records.json
    assert doc["model"] == "churn/v1"
    assert len(doc["predictions"]) == 3 and set(doc["predictions"]) <= {0, 1}
    ids = doc["prediction_ids"]
    assert len(ids) == 3 and len(set(ids)) == 3

    columns = {k: [r[k] for r in rows] for k in rows[0]}
    by_columns = shared.predict(columns)
    assert by_columns.status == 200, by_columns.text
    assert by_columns.json["predictions"] == doc["predictions"]  # same rows, same answers
    assert by_columns.json["model"] == "churn/v1"
    assert not set(by_columns.json["prediction_ids"]) & set(ids)  # a new id per prediction

    one = shared.predict(rows[0])  # a single record, not in a list
    assert one.status == 200 and one.json["predictions"] == doc["predictions"][:1]

    assert shared.get("/v2/health/live").json == {"live": True}
    ready = shared.get("/v2/health/ready")
    assert (ready.status, ready.json) == (200, {"ready": True})
    meta = shared.get(f"/v2/models/{MODEL}")
    assert meta.status == 200
    assert meta.json["name"] == MODEL and meta.json["versions"] == ["1"]
    assert {(t["name"], t["datatype"]) for t in meta.json["inputs"]} == {
        ("customer_id", "BYTES"),
        ("tenure", "INT64"),
        ("charges", "FP64"),
        ("plan", "BYTES"),
    }
    assert shared.get(f"/v2/models/{MODEL}/ready").json == {"name": MODEL, "ready": True}

    types = {"customer_id": "BYTES", "tenure": "INT64", "charges": "FP64", "plan": "BYTES"}
    infer = request(
        shared.port,
        "POST",
        f"/v2/models/{MODEL}/infer",
        {
            "id": "req-1",
            "inputs": [
                {"name": k, "shape": [3], "datatype": types[k], "data": v}
                for k, v in columns.items()
            ],
        },
    )
    assert infer.status == 200, infer.text
    body = infer.json
    assert (body["model_name"], body["model_version"], body["id"]) == (MODEL, "1", "req-1")
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predict"]["shape"] == [3]
    assert outputs["predict"]["data"] == doc["predictions"]
    assert outputs["predict"]["datatype"] in ("INT64", "FP64")
    assert len(outputs["prediction_id"]["data"]) == 3

    for path in ("/v2/models/nope", "/v2/models/nope/ready"):
        missing = shared.get(path)
        assert missing.status == 404 and "nope" in missing.json["error"], missing.text
    missing = request(shared.port, "POST", "/v2/models/nope/infer", {"inputs": []})
    assert missing.status == 404 and "nope" in missing.json["error"], missing.text

    metrics = shared.get("/metrics")
    assert metrics.status == 200 and "keel_requests" in metrics.text


# -- 2. the prediction log -----------------------------------------------------------


@pytest.mark.slow
def test_sigterm_loses_no_logged_prediction(root: Path, tmp_path: Path) -> None:
    # a flush interval longer than the test: only the clean stop can write the log
    server = start_server(root, "--flush-interval", "60")
    answered: list[str] = []
    try:
        for i in range(60):
            batch = [record(i * 3 + j) for j in range(1 + i % 3)]
            r = server.predict(batch)
            assert r.status == 200, r.text
            answered += r.json["prediction_ids"]
        assert log_rows(root) == []  # nothing flushed yet
    finally:
        server.stop(signal.SIGTERM)
    assert server.proc.returncode in (0, -signal.SIGTERM), server.stderr()

    logged = json.loads(
        keel_ok(root, "logs", MODEL, "--since", "all", "--json", "--limit", "100000").stdout
    )
    assert sorted(r["prediction_id"] for r in logged) == sorted(answered)
    assert {(r["version"], r["arm"], r["served"]) for r in logged} == {(1, "champion", True)}
    first = next(r for r in logged if r["prediction_id"] == answered[0])
    assert (first["input_tenure"], first["input_plan"]) == (0, "basic")
    assert first["score"] is not None and 0.0 <= first["score"] <= 1.0

    out = tmp_path / "preds.parquet"
    wrote = keel_ok(root, "logs", MODEL, "--since", "all", "--out", str(out))
    assert str(len(answered)) in wrote.stdout
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.num_rows == len(answered)
    assert sorted(table.column("prediction_id").to_pylist()) == sorted(answered)


@pytest.mark.slow
def test_kill9_loses_at_most_the_last_flush_interval(root: Path) -> None:
    server = start_server(root)  # the default flush interval: 1 s
    try:
        early: list[str] = []
        for i in range(40):
            r = server.predict([record(i)])
            assert r.status == 200, r.text
            early += r.json["prediction_ids"]
        time.sleep(2.0)  # two flush intervals (slack for a loaded machine)
        late: list[str] = []
        for i in range(40, 60):
            r = server.predict([record(i)])
            late += r.json["prediction_ids"]
    finally:
        server.stop(signal.SIGKILL)
    assert server.proc.returncode == -signal.SIGKILL
    logged = {r["prediction_id"] for r in log_rows(root)}
    lost = set(early) - logged
    assert not lost, f"{len(lost)} of {len(early)} predictions older than a flush interval lost"
    assert logged <= set(early) | set(late)
    # whole segments or nothing: keel's own reader reads what the kill left
    ws = keel.connect(root)
    try:
        assert len(ws.logs.to_arrow("predictions", MODEL)) == len(logged)
    finally:
        ws.close()


@pytest.mark.slow
def test_log_sample_logs_about_that_fraction(root: Path) -> None:
    n = 240
    with serving(root, "--log-sample", "0.5") as server:
        for i in range(n):
            assert server.predict([record(i)]).status == 200
    logged = len(log_rows(root))
    # binomial(240, 0.5): sd 7.7, so 80..160 is more than 5 sd either side
    assert 80 <= logged <= 160, f"{logged} of {n} logged at --log-sample 0.5"


# -- 3. feedback ------------------------------------------------------------------


def test_feedback_is_idempotent_and_first_wins(shared: Server) -> None:
    root = shared.root
    r = shared.predict([record(100 + i) for i in range(6)])
    assert r.status == 200
    ids = r.json["prediction_ids"]
    preds = r.json["predictions"]

    single = shared.feedback({"prediction_id": ids[0], "outcome": 1})
    assert (single.status, single.json) == (200, {"accepted": 1, "refused": 0})
    batch = shared.feedback(
        {"outcomes": [{"prediction_id": pid, "outcome": k % 2} for k, pid in enumerate(ids[1:5])]}
    )
    assert (batch.status, batch.json) == (200, {"accepted": 4, "refused": 0})
    # the same outcome again, then a different one for an answered id: the first wins
    assert shared.feedback({"prediction_id": ids[0], "outcome": 1}).status == 200
    assert shared.feedback({"prediction_id": ids[1], "outcome": 1}).status == 200
    # an id this server could have given out but did not: accepted, and unmatched
    unknown = f"{int(time.time() * 1000):012x}{'ab' * 5}-0"
    assert shared.feedback({"prediction_id": unknown, "outcome": 0}).status == 200
    # a malformed id anywhere in a batch refuses the whole batch: nothing stored
    refused = shared.feedback(
        {
            "outcomes": [
                {"prediction_id": ids[5], "outcome": 1},
                {"prediction_id": "not-an-id", "outcome": 1},
            ]
        }
    )
    assert refused.status == 422, refused.text
    assert refused.json["problems"][0]["row"] == 1
    assert "not-an-id" in refused.json["error"]
    for bad in ({"prediction_id": ids[5]}, {"prediction_id": ids[5], "outcome": None}):
        r = shared.feedback(bad)
        assert r.status == 422 and "outcome" in r.json["error"], r.text

    wait_for_log(root, 8, stream="outcomes")
    time.sleep(1.5)  # one more flush interval: a stray row would show now
    outcomes = log_rows(root, "outcomes")
    assert len(outcomes) == 8 and ids[5] not in {o["prediction_id"] for o in outcomes}

    status = keel_json(root, "deploy", "status", MODEL)
    assert status["outcomes"] == {"unmatched": 1, "duplicates_ignored": 2}
    (arm,) = status["arms"]
    assert (arm["ref"], arm["arm"], arm["served"]) == ("churn/v1", "champion", True)
    assert arm["outcomes"] == 5
    truth = [1, 0, 1, 0, 1]  # ids[0] -> 1, ids[1..4] -> 0, 1, 0, 1 (ids[1]'s later 1 ignored)
    assert arm["metric"] == "accuracy"
    assert arm["value"] == pytest.approx(sum(p == t for p, t in zip(preds, truth)) / 5)
    lo, hi = arm["interval"]
    assert lo <= arm["value"] <= hi

    ws = keel.connect(root)
    try:
        joined = keel.outcomes.join(MODEL, workspace=ws)
    finally:
        ws.close()
    got = dict(zip(joined["prediction_id"], joined["outcome"], strict=True))
    assert got == {pid: float(t) for pid, t in zip(ids[:5], truth, strict=True)}


# -- 4. hot swap ------------------------------------------------------------------


def _swaps_under_load(root: Path, *serve_args: str, moves: int) -> None:
    server = start_server(root, *serve_args)
    try:
        with Load(server.port, threads=3, fresh="--workers" in serve_args) as load:
            wait_for(lambda: len(load.snapshot()) >= 20, timeout=30)
            for k in range(moves + 1):
                if k < moves:
                    target = 2 if k % 2 == 0 else 1
                    keel_ok(root, "models", "promote", MODEL, str(target))
                else:
                    keel_ok(root, "models", "rollback", MODEL)
                    target = 2  # the move before the last was v2 -> v1
                ended = time.time()
                # pace the moves: the next one once the answers have followed this one, and
                # two polls more, so a request still in flight at a worker that has not yet
                # followed (--workers) finishes before the next move, not inside its window
                wait_for(lambda m=f"churn/v{target}", e=ended: load.followed(m, e), timeout=10)
                time.sleep(0.5)
            time.sleep(0.5)
        assert server.proc.poll() is None, server.stderr()
        shown = keel_json(root, "models", "show", MODEL)
    finally:
        server.stop()
    results = load.snapshot()
    assert not load.failures, f"{len(load.failures)} failed requests: {load.failures[:5]}"
    assert len(results) > 200 and all(status == 200 for _, _, status, _ in results)
    assert shown["aliases"]["champion"] == 2
    # each move as the store recorded it (when it committed, where it went) ...
    moved = sorted(
        (e["at"], f"churn/v{e['to']}") for e in shown["events"] if e["alias"] == "champion"
    )[-(moves + 1) :]
    assert [m for _, m in moved] == ["churn/v2", "churn/v1"] * (moves // 2) + ["churn/v2"]
    # ... then how long until every answer came from the model it named, until the next move
    lags = []
    for k, (at, model) in enumerate(moved):
        until = moved[k + 1][0] if k + 1 < len(moved) else math.inf
        # a request sent before the next move may be answered after it, by either model, and
        # on a busy machine a request can take far longer than the gap between its sending
        # and the move: so the window holds the requests answered before the next move
        # was recorded, which none of them can have met
        window = [r for r in results if at <= r[0] and r[1] < until]
        other = [i for i, r in enumerate(window) if r[3] != model]
        settled = window[other[-1] + 1 :] if other else window
        assert len(settled) >= 5, f"move {k} to {model}: {len(settled)} answers from it"
        lags.append(settled[0][0] - at)
    print(
        f"{len(moved)} moves: answers followed after {statistics.median(lags):.2f} s "
        f"(median), {max(lags):.2f} s (max)"
    )
    # The first move also loads the model it names (the server has served only the other
    # one): on a machine busy with other tests that alone has taken two seconds, and six
    # once (a 2-core machine running the whole suite).
    assert lags[0] < 10.0, f"answers followed the first move after {lags[0]:.2f} s"
    # Each move is a `keel models promote` process, which takes both cores from the server
    # for a moment on this 2-core machine: one move in twenty has taken 1.7 s to be
    # followed in CI (and before this change too), while the median stays a few polls.
    worst = max(lags[1:])
    assert worst < 3.0, f"answers followed the alias after {worst:.2f} s at worst"
    assert statistics.median(lags) < 1.0, lags


@pytest.mark.slow
@pytest.mark.serial
def test_twenty_swaps_and_a_rollback_under_load_fail_nothing(root: Path) -> None:
    _swaps_under_load(root, moves=20)


@pytest.mark.slow
@pytest.mark.serial
def test_swaps_under_load_with_two_workers(root: Path) -> None:
    _swaps_under_load(root, "--workers", "2", moves=6)


# -- 5. deployments --------------------------------------------------------------


@pytest.mark.slow
def test_shadow_then_ab_then_promote(root: Path) -> None:
    with serving(root) as server:
        started = keel_ok(root, "deploy", MODEL, "--challenger", "2", "--mode", "shadow")
        assert "shadow" in started.stdout
        wait_for(lambda: deployment_seen(server, "shadow"), timeout=10)
        ids: list[str] = []
        for i in range(30):
            r = server.predict([record(i), record(i + 1000)])
            assert r.status == 200 and r.json["model"] == "churn/v1", r.text
            ids += r.json["prediction_ids"]
        shadow = wait_for_log(root, len(ids), where="served = false")
        assert {(s["version"], s["arm"]) for s in shadow} == {(2, "challenger")}
        assert sorted(s["prediction_id"] for s in shadow) == sorted(ids)
        served = log_rows(root, where="served = true")
        assert {s["prediction_id"] for s in served} >= set(ids)
        assert {s["version"] for s in served} == {1}

        again = keel_run(root, "deploy", MODEL, "--challenger", "2", "--mode", "canary")
        assert "already has a live deployment" in one_error_line(again)
        keel_ok(root, "deploy", "stop", MODEL)
        wait_for(lambda: deployment_seen(server, None), timeout=10)

        keel_ok(
            root,
            *("deploy", MODEL, "--challenger", "2", "--mode", "ab"),
            *("--share", "0.5", "--key", "customer_id"),
        )
        wait_for(lambda: deployment_seen(server, "ab"), timeout=10)
        answers: dict[str, str] = {}
        for i in range(160):
            r = server.predict([record(i, customer=f"ab-{i}")])
            assert r.status == 200, r.text
            (pid,) = r.json["prediction_ids"]
            answers[pid] = r.json["model"]
            # the outcome: whatever, as long as both arms get some right and some wrong
            assert server.feedback({"prediction_id": pid, "outcome": i % 3 % 2}).status == 200
        per_arm = Counter(answers.values())
        assert set(per_arm) == {"churn/v1", "churn/v2"} and min(per_arm.values()) > 40, per_arm
        wait_for_log(root, 160, stream="outcomes")

        status = keel_json(root, "deploy", "status", MODEL)
        assert status["deployment"]["mode"] == "ab"
        assert status["deployment"]["key"] == "customer_id"
        arms = {(a["arm"], a["served"]): a for a in status["arms"]}
        assert set(arms) == {("champion", True), ("challenger", True)}
        for (arm, _), a in arms.items():
            expected = per_arm["churn/v1" if arm == "champion" else "churn/v2"]
            assert a["requests"] == a["outcomes"] == expected
            assert a["errors"] == 0 and a["error_rate"] == 0
            assert 0 < a["latency_ms"]["p50"] <= a["latency_ms"]["p99"]
            assert a["metric"] == "accuracy"
            lo, hi = a["interval"]
            assert lo <= a["value"] <= hi
        test = status["test"]
        assert "always valid" in test["method"]
        assert test["n_champion"] + test["n_challenger"] == 160
        lo, hi = test["interval"]
        assert lo <= test["difference"] <= hi
        assert test["fixed_horizon_interval"][0] >= lo  # the always-valid interval is wider
        assert 0.0 <= test["p_value"] <= 1.0
        assert test["decision"] in ("challenger better", "champion better", "inconclusive")
        human = keel_ok(root, "deploy", "status", MODEL).stdout
        assert "always-valid" in human and "churn/v2" in human

        keel_ok(root, "deploy", "promote", MODEL)
        wait_for(lambda: server.model() == "churn/v2", timeout=10)
        wait_for(lambda: deployment_seen(server, None), timeout=10)
        assert {server.model() for _ in range(20)} == {"churn/v2"}
        after = keel_json(root, "deploy", "status", MODEL)
        assert after["champion"] == "churn/v2" and after["deployment"] is None
        assert [e["action"] for e in after["events"]] == ["promote", "start", "stop", "start"]
        assert "no live deployment" in one_error_line(keel_run(root, "deploy", "stop", MODEL))


@pytest.mark.slow
def test_canary_keeps_each_customer_on_one_arm_across_servers(root: Path) -> None:
    with serving(root) as a, serving(root) as b:
        keel_ok(
            root,
            *("deploy", MODEL, "--challenger", "2", "--mode", "canary"),
            *("--share", "0.3", "--key", "customer_id"),
        )
        for s in (a, b):
            wait_for(lambda s=s: deployment_seen(s, "canary"), timeout=10)
        customers = [f"cust-{i}" for i in range(200)]
        arm: dict[str, str] = {}
        for i, c in enumerate(customers):
            seen = set()
            for server, j in ((a, i), (b, i + 1)):  # other inputs, same customer, other server
                r = server.predict([record(j, customer=c)])
                assert r.status == 200, r.text
                seen.add(r.json["model"])
            assert len(seen) == 1, f"{c} met {seen}"
            arm[c] = seen.pop()
        share = sum(m == "churn/v2" for m in arm.values()) / len(arm)
        # binomial(200, 0.3) / 200: sd 0.032, so 0.18..0.42 is more than 3.7 sd either side
        assert 0.18 <= share <= 0.42, f"challenger answered {share:.0%} of customers at share 0.3"

        # one batch whose customers meet both arms: each row answered by its customer's arm
        mixed = customers[:20]
        r = b.predict([record(k, customer=c) for k, c in enumerate(mixed)])
        assert r.status == 200, r.text
        expected = [arm[c] for c in mixed]
        assert r.json["model"] == (expected if len(set(expected)) > 1 else expected[0])

        def status() -> Any:
            doc = keel_json(root, "deploy", "status", MODEL)
            return doc if sum(x["requests"] for x in doc["arms"]) >= 401 else None

        doc = wait_for(status, timeout=15, interval=0.5)
        assert doc["deployment"]["mode"] == "canary" and doc["deployment"]["share"] == 0.3
        arms = {x["arm"]: x for x in doc["arms"]}
        assert set(arms) == {"champion", "challenger"}
        assert arms["challenger"]["ref"] == "churn/v2" and arms["champion"]["ref"] == "churn/v1"
        on_v2 = sum(m == "churn/v2" for m in arm.values())
        assert 2 * on_v2 <= arms["challenger"]["requests"] <= 2 * on_v2 + 1
