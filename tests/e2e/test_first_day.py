"""What a new user broke on the first day (issue 21), against the real ``keel`` executable.

Each test here failed on the main branch the issue was filed against: a typo
that succeeded silently, a keyed canary that refused every request while every
status said fine, outcomes of any type, names that meant two models.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import KEEL
from tests.e2e.serve_helpers import (
    free_port,
    keel_env,
    keel_json,
    keel_ok,
    keel_run,
    one_error_line,
    predict,
    record,
    request,
    serving,
    wait_for,
)

# -- typos do not succeed silently ---------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("deploy", "status", "cancr"),
        ("deploy", "status", "cancr", "--json"),
        ("deploy", "watch", "cancr", "--once"),
        ("deploy", "stop", "cancr"),
        ("logs", "cancr"),
        ("logs", "cancr", "--outcomes"),
    ],
    ids=" ".join,
)
def test_a_misspelt_model_is_named_not_an_empty_answer(tpl: Path, args: tuple[str, ...]) -> None:
    line = one_error_line(keel_run(tpl, *args))
    assert line == "keel: error: no model named 'cancr'; `keel models list` shows the models"


# -- a keyed canary cannot take traffic down silently ------------------------------------


def test_a_key_no_server_accepts_is_refused_before_anything_starts(root: Path) -> None:
    """`--key session` where nothing declared `session`: every request would have been a 422."""
    line = one_error_line(
        keel_run(root, "deploy", "churn", "--challenger", "2", "--mode", "canary", "--key", "session")
    )
    assert "no server of churn accepts the sticky key 'session'" in line
    assert "keel serve churn --extra-field session" in line
    assert keel_json(root, "deploy", "status", "churn")["deployment"] is None


def test_clients_without_the_key_roll_the_canary_back_and_show_everywhere(root: Path) -> None:
    with serving(root, "--extra-field", "session") as server:
        # declared by that server: a keyed canary may start on it
        keel_ok(
            root, "deploy", "churn", "--challenger", "2", "--mode", "canary", "--key", "session",
            "--share", "0.5",
        )  # fmt: skip
        wait_for(lambda: server.get("/healthz").json["deployment"] is not None)
        with_key = server.predict([{**record(0), "session": "s-1"}])
        assert with_key.status == 200, with_key.text
        # the clients never send it: each request is refused, and counted against the canary
        refused = [server.predict([record(i)]) for i in range(60)]
        assert all(r.status == 422 for r in refused[:5]), refused[0].text
        assert "the sticky routing key is missing" in refused[0].json["error"]
        health = server.get("/healthz").json
        assert health["status"] == "degraded", health
        assert "'session'" in health["reason"] and "refused" in health["reason"]
        # the server's guardrail (5% errors after 50 requests) rolled it back...
        wait_for(lambda: server.get("/healthz").json["deployment"] is None, timeout=20)
        # The refused requests reach the log lake with the server's next flush (every second),
        # which may come after the rollback the guardrail made from its own counts.
        def flushed() -> dict | None:
            doc = keel_json(root, "deploy", "status", "churn", "--since", "all")
            return doc if any(a["arm"] == "challenger" for a in doc["arms"]) else None

        status = wait_for(flushed, timeout=20, interval=0.5)
        assert status["deployment"] is None
        assert status["events"][0]["action"] == "rollback"
        assert "error rate" in status["events"][0]["message"]
        challenger = next(a for a in status["arms"] if a["arm"] == "challenger")
        assert challenger["errors"] >= 50
        assert "no 'session' to route by" in challenger["top_error"]
        # ...and the same clients are answered again, with or without the key
        assert server.predict([record(1)]).status == 200
        assert server.predict([{**record(2), "session": "s-2"}]).status == 200
    # a server started later without --extra-field still accepts the key clients send
    with serving(root) as plain:
        assert plain.predict([{**record(3), "session": "s-3"}]).status == 200


# -- a model with no signature is served safely --------------------------------------------


def test_a_model_without_a_signature_warns_and_refuses_what_it_cannot_score(
    root: Path, tmp_path: Path
) -> None:
    code = """
import warnings, keel
from tests.e2e.serve_helpers import training_frame, _pipeline
from sklearn.linear_model import LogisticRegression
X, y = training_frame()
ws = keel.connect()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with keel.start_run(workspace=ws, capture_code=False) as run:
        run.log_model(_pipeline(LogisticRegression(max_iter=200)).fit(X, y), "bare")
print([type(w.message).__name__ for w in caught])
ws.close()
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=keel_env(root), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "NoSignatureWarning" in done.stdout
    keel_ok(root, "models", "promote", "bare", "1")
    port = free_port()
    proc = subprocess.Popen(
        [KEEL, "serve", "bare", "--port", str(port)], cwd=root, env=keel_env(root),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: _answers(port), timeout=60)
        bad = predict(port, [{"tenure": "three"}])
        assert bad.status == 422, bad.text
        assert "bare/v1 could not score these inputs" in bad.json["error"]
        assert predict(port, [record(0)]).status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert "bare/v1 has no signature" in err


def _answers(port: int) -> bool:
    try:
        return request(port, "GET", "/healthz", timeout=2).status == 200
    except OSError:
        return False


# -- small lies in the output ----------------------------------------------------------------


def test_serve_on_a_busy_port_says_so_in_one_line_and_prints_no_banner(tpl: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = keel_run(tpl, "serve", "churn", "--port", str(port))
    line = one_error_line(done)
    assert line == (
        f"keel: error: port {port} on 127.0.0.1 is in use by another process: stop it, "
        "or choose another with --port"
    )
    assert "serving" not in done.stderr and done.stdout == ""
