"""Serving faults, end to end: a challenger that raises, guardrail rollback, bad input, tokens.

Issue 6 "Bad input and faults": every bad request is a 4xx with a JSON body
naming the problem (never a 5xx, never a traceback) and the server answers
afterwards; a model that raises is a 500 with its request id and the server
stays up; a breached guardrail routes everything back to the champion within
about a second and records why; off loopback, state-changing routes need the
token. All against the real ``keel`` executable on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.serve_helpers import (
    MODEL,
    Reply,
    Server,
    copy_workspace,
    free_port,
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

MAX_BATCH = 50
MAX_BODY = int(0.05 * 1024 * 1024)  # --max-body-mb 0.05


@pytest.fixture(scope="module")
def strict(tpl: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server with small limits, for the bad-input tests."""
    root = copy_workspace(tpl, tmp_path_factory.mktemp("strict") / "ws")
    server = start_server(root, "--max-batch", str(MAX_BATCH), "--max-body-mb", "0.05")
    yield server
    server.stop()


def strict_json(text: str) -> Any:
    """JSON as the standard defines it: no NaN or Infinity literals."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


REQUEST_ID = re.compile(r"\b[0-9a-f]{22}\b")


# -- 6. a model that raises; guardrails --------------------------------------------


@pytest.mark.slow
@pytest.mark.serial
def test_a_raising_canary_is_rolled_back_by_its_guardrail(root: Path) -> None:
    (root / "guard.toml").write_text("max_error_rate = 0.05\nmin_requests = 20\n")
    with serving(root) as server:
        keel_ok(
            root,
            *("deploy", MODEL, "--challenger", "3", "--mode", "canary"),
            *("--share", "0.5", "--guardrails", "guard.toml"),
        )
        wait_for(lambda: server.get("/healthz").json["deployment"] is not None, timeout=10)
        answers: list[tuple[float, Reply]] = []
        failed_at: list[float] = []
        deadline = time.monotonic() + 30
        # keep sending until the challenger has failed 20 times and 1.5 s more have passed
        while not failed_at or len(failed_at) < 20 or time.monotonic() < failed_at[19] + 1.5:
            assert time.monotonic() < deadline, f"{len(failed_at)} failures in 30 s"
            r = server.predict([record(len(answers))])
            now = time.monotonic()
            answers.append((now, r))
            if r.status != 200:
                failed_at.append(now)
        for _, r in answers:
            assert r.status in (200, 500), r.text
            assert "Traceback" not in r.text
        errors = [r for _, r in answers if r.status == 500]
        assert all(
            "churn/v3" in r.json["error"] and "RuntimeError" in r.json["error"] for r in errors
        )
        ids = {m.group(0) for r in errors if (m := REQUEST_ID.search(r.json["error"]))}
        assert len(ids) == len(errors), "every failure names its own request id"
        assert {r.json["model"] for _, r in answers if r.status == 200} == {"churn/v1"}
        # the breach is at the 20th failure; the last failure comes within about a second
        assert failed_at[-1] - failed_at[19] < 1.2, (
            f"failures went on {failed_at[-1] - failed_at[19]:.2f} s after the breach"
        )
        print(
            f"{len(failed_at)} failures, the last {failed_at[-1] - failed_at[19]:.2f} s after the breach"
        )
        assert len(failed_at) < 60
        assert server.get("/healthz").json["deployment"] is None
        assert {server.predict([record(i)]).status for i in range(20)} == {200}

        status = keel_json(root, "deploy", "status", MODEL)
        assert status["deployment"] is None  # the pointer is gone
        rollback = status["events"][0]
        assert rollback["action"] == "rollback"
        assert "error rate" in rollback["message"] and "5.00%" in rollback["message"]
        human = keel_ok(root, "deploy", "status", MODEL).stdout
        assert "rollback" in human and "error rate" in human

        # the failures are in the log, each under the request id its answer named
        logged = wait_for_log(root, len(errors), where="error IS NOT NULL")
        assert {row["request_id"] for row in logged} == ids
        assert all(row["version"] == 3 and row["arm"] == "challenger" for row in logged)
        rows = strict_json(
            keel_ok(root, "logs", MODEL, "--since", "all", "--json", "--limit", "1000").stdout
        )
        assert {row["request_id"] for row in rows if row["error"] is not None} == ids

        # a champion that raises: every prediction a 500 with a request id; the server stays up
        keel_ok(root, "models", "promote", MODEL, "3")
        wait_for(lambda: server.predict([record(0)]).status == 500, timeout=10)
        for i in range(5):
            r = server.predict([record(i)])
            assert r.status == 500 and REQUEST_ID.search(r.json["error"]), r.text
        assert server.get("/healthz").status == 200
        keel_ok(root, "models", "rollback", MODEL)
        wait_for(lambda: server.predict([record(0)]).status == 200, timeout=10)
        assert server.proc.poll() is None


# -- 7. bad input -----------------------------------------------------------------


def refused(r: Reply, status: int | tuple[int, ...], *words: str) -> dict[str, Any]:
    """A 4xx with a JSON error naming the problem, and no traceback."""
    codes = (status,) if isinstance(status, int) else status
    assert r.status in codes, (r.status, r.text)
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert "Traceback" not in r.text and 'File "' not in r.text
    doc = r.json
    assert isinstance(doc.get("error"), str) and doc["error"], doc
    for word in words:
        assert word in r.text, f"{word!r} not in {r.text}"
    return doc


def post(server: Server, raw: bytes, path: str = "/predict", **kw: Any) -> Reply:
    return request(server.port, "POST", path, raw=raw, **kw)


def test_malformed_json_is_400(strict: Server) -> None:
    for raw in (b'{"inputs": [', b"", b"\xff\xfe{", b"{'inputs': []}", b"[1, 2", b"nul"):
        refused(post(strict, raw), 400, "not valid JSON")


def test_a_body_of_the_wrong_shape_is_refused(strict: Server) -> None:
    refused(post(strict, b"[1, 2]"), 400, "inputs")
    refused(post(strict, b"null"), 400, "inputs")
    refused(post(strict, b'{"rows": []}'), 400, "inputs")
    refused(post(strict, b'{"inputs": "x"}'), 400, "inputs")
    refused(post(strict, b'{"inputs": [1]}'), 422, "inputs[0]")
    refused(strict.predict([record(0), [1, 2]]), (400, 422), "inputs[1]")


def test_wrong_content_is_refused(strict: Server) -> None:
    form = post(
        strict,
        b"tenure=3&plan=pro",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    refused(form, (400, 415), "JSON")
    refused(post(strict, b"<inputs/>", headers={"Content-Type": "application/xml"}), (400, 415))
    refused(request(strict.port, "GET", "/predict"), 405)
    refused(request(strict.port, "GET", "/no/such/route"), 404)


def test_wrong_types_are_422_naming_each_field(strict: Server) -> None:
    bad = {**record(0), "tenure": "three", "charges": "x", "plan": 7}
    doc = refused(strict.predict([bad]), 422, "tenure", "charges", "plan")
    assert {p["field"] for p in doc["problems"]} == {"tenure", "charges", "plan"}
    assert all(p["row"] == 0 for p in doc["problems"])
    for field, value in (("tenure", 3.5), ("tenure", True), ("tenure", 10**30), ("plan", None)):
        doc = refused(strict.predict([{**record(0), field: value}]), 422, field)
        assert [p["field"] for p in doc["problems"]] == [field]
    # the bad row is named in a batch
    rows = [record(i) for i in range(5)]
    rows[3]["charges"] = "lots"
    doc = refused(strict.predict(rows), 422, "inputs[3].charges")
    assert doc["problems"][0]["row"] == 3


def test_missing_and_extra_fields_are_422(strict: Server) -> None:
    missing = record(0)
    del missing["tenure"]
    doc = refused(strict.predict([missing]), 422, "tenure", "missing")
    assert doc["problems"][0]["field"] == "tenure"
    doc = refused(strict.predict([{**record(0), "surprise": 1}]), 422, "surprise")
    assert doc["problems"][0]["field"] == "surprise"
    columns = {k: [v] for k, v in record(0).items()}
    refused(strict.predict({**columns, "surprise": [1]}), 422, "surprise")
    del columns["plan"]
    refused(strict.predict(columns), 422, "plan")
    ragged = {k: [v, v] for k, v in record(0).items()}
    ragged["tenure"] = [1]
    refused(strict.predict(ragged), 422, "different lengths")


def test_nan_and_infinity_are_refused_where_forbidden(strict: Server) -> None:
    body = json.dumps({"inputs": [record(0)]})
    for literal in ("NaN", "Infinity", "-Infinity"):
        raw = body.replace('"charges": 20.0', f'"charges": {literal}').encode()
        assert literal.encode() in raw
        refused(post(strict, raw), 422, "charges")
        raw = body.replace('"tenure": 0', f'"tenure": {literal}').encode()
        refused(post(strict, raw), 422, "tenure")


def test_empty_and_oversized_batches_and_bodies(strict: Server) -> None:
    refused(strict.predict([]), 422, "empty")
    refused(strict.predict({k: [] for k in record(0)}), 422, "empty")
    refused(strict.predict([record(i) for i in range(MAX_BATCH + 1)]), 413, str(MAX_BATCH))
    assert strict.predict([record(i) for i in range(MAX_BATCH)]).status == 200
    big = json.dumps({"inputs": [{**record(0), "plan": "x" * (MAX_BODY + 10)}]}).encode()
    refused(post(strict, big), 413, str(MAX_BODY))

    # the same body without a Content-Length (chunked): refused as it arrives
    def chunks() -> Any:
        for k in range(0, len(big), 8192):
            yield big[k : k + 8192]

    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", strict.port, timeout=30)
    try:
        conn.request(
            "POST",
            "/predict",
            body=chunks(),
            headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        r = conn.getresponse()
        refused(Reply(r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}), 413)
    finally:
        conn.close()
    refused(strict.feedback({"outcomes": [{"prediction_id": "x", "outcome": 1}] * 51}), 413)


def test_bad_v2_requests_are_4xx(strict: Server) -> None:
    path = f"/v2/models/{MODEL}/infer"

    def infer(doc: Any) -> Reply:
        return request(strict.port, "POST", path, doc)

    good = [
        {"name": k, "shape": [1], "datatype": "BYTES", "data": [v]} for k, v in record(0).items()
    ]
    assert infer({"inputs": good}).status == 200
    refused(infer({"inputs": []}), 400, "inputs")
    refused(infer({"inputs": good, "extra": 1}), 400, "extra")
    refused(infer({"inputs": [{**good[0], "shape": [2]}, *good[1:]]}), 400, "shape")
    refused(infer({"inputs": [{**good[0], "shape": [-1]}, *good[1:]]}), 400, "shape")
    refused(infer({"inputs": [{"name": "tenure"}]}), 400)
    refused(
        infer({"inputs": [{**g, "data": ["x"]} if g["name"] == "tenure" else g for g in good]}),
        422,
        "tenure",
    )
    refused(post(strict, b"{", path), 400)
    refused(request(strict.port, "POST", "/v2/models/other/infer", {"inputs": good}), 404, "other")


def test_bad_feedback_is_refused_and_stores_nothing(strict: Server) -> None:
    for doc in (
        [],
        {"outcomes": []},
        {"outcomes": "x"},
        {"outcomes": [1]},
        {"prediction_id": "nope", "outcome": 1},
        {"prediction_id": "0" * 22 + "-0", "outcome": float("nan")},
        {"prediction_id": "0" * 22 + "-0", "outcome": {"a": 1}},
        {"prediction_id": "0" * 22 + "-0", "outcome": 1, "extra": 2},
    ):
        r = request(strict.port, "POST", "/feedback", raw=json.dumps(doc).encode())
        refused(r, (400, 422))
    time.sleep(1.3)  # a flush interval: anything accepted would be on disk now
    assert log_rows(strict.root, "outcomes") == []


def test_the_server_still_answers_after_bad_input(strict: Server) -> None:
    for raw in (b"{", b'{"inputs": [{"tenure": NaN}]}', b"\x00" * 100):
        assert 400 <= post(strict, raw).status < 500
    r = strict.predict([record(1)])
    assert r.status == 200 and r.json["model"] == "churn/v1"
    metrics = strict.get("/metrics").text
    assert 'keel_invalid_requests_total{model="churn",route="predict"}' in metrics
    assert strict.proc.poll() is None


# -- 8. security ------------------------------------------------------------------


def test_binding_beyond_loopback_needs_a_token(root: Path) -> None:
    port = str(free_port())
    line = one_error_line(keel_run(root, "serve", MODEL, "--host", "0.0.0.0", "--port", port))
    assert "KEEL_SERVE_TOKEN" in line
    for args in (("serve", "nope"), ("serve", MODEL, "--alias", "nope")):
        assert "nope" in one_error_line(keel_run(root, *args, "--port", port))
    for bad in (("--log-sample", "0"), ("--workers", "0"), ("--flush-interval", "-1")):
        one_error_line(keel_run(root, "serve", MODEL, "--port", port, *bad))


@pytest.mark.slow
def test_feedback_needs_the_token_off_loopback(root: Path) -> None:
    token = "s3cret-token"
    with serving(root, "--host", "0.0.0.0", env={"KEEL_SERVE_TOKEN": token}) as server:
        r = server.predict([record(0)])  # reading needs no token
        assert r.status == 200
        outcome = {"prediction_id": r.json["prediction_ids"][0], "outcome": 1}
        refused(server.feedback(outcome), 401, "Bearer")
        for wrong in ("Bearer nope", f"Basic {token}", token, f"Bearer {token}x", "Bearer "):
            refused(server.feedback(outcome, headers={"Authorization": wrong}), 401)
        ok = server.feedback(outcome, headers={"Authorization": f"Bearer {token}"})
        assert (ok.status, ok.json) == (200, {"accepted": 1, "refused": 0})
        wait_for_log(root, 1, stream="outcomes")
        time.sleep(1.2)
        assert len(log_rows(root, "outcomes")) == 1
