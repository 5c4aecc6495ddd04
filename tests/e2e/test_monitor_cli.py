"""`keel monitor` as a user runs it: over prediction rows in the log lake (no server needed),
with exit codes, JSON, an HTML report, and alerts to webhooks that answer or are down."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.workspace import Workspace
from tests.conftest import run_keel
from tests.monitor.live_world import build, closed_port_url, log_traffic, webhook


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Drifted traffic 50..40 minutes ago, clean traffic in the last 5 minutes."""
    root = tmp_path_factory.mktemp("monitor-cli")
    ws: Workspace = build(root)
    now = time.time()
    log_traffic(ws, 2000, start=now - 3000, seconds=600, seed=3, drift=True)
    log_traffic(ws, 2000, start=now - 300, seconds=240, seed=2)
    ws.close()
    return root / "ws"


def test_recent_clean_traffic_is_no_drift_with_json(home: Path) -> None:
    out = run_keel("monitor", "churn", "--window", "15m", "--json", "--no-multivariate", cwd=home)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["model"], doc["version"], doc["status"]) == ("churn", "churn/v1", "no drift")
    assert doc["drifted_features"] == [] and doc["window"]["rows"] == 2000
    assert doc["window"]["prediction"] == "score" and doc["window"]["versions"] == [1]
    assert doc["report"]["record"] == doc["report"]["id"]
    assert "training data of churn/v1" in doc["report"]["reference"]
    last = json.loads(
        run_keel(
            "monitor", "churn", "--last", "1000", "--json", "--no-multivariate", cwd=home
        ).stdout
    )
    assert (last["window"]["last"], last["window"]["rows"], last["status"]) == (
        1000,
        1000,
        "no drift",
    )


def test_a_window_holding_drifted_traffic_exits_1_with_a_report(home: Path) -> None:
    out = run_keel("monitor", "churn", "--window", "1h", "--report", "monitor.html", cwd=home)
    assert out.returncode == 1, out.stderr
    assert out.stdout.startswith("DRIFT: churn (churn/v1)")
    assert "monthly" in out.stdout and "plan" in out.stdout and "4,000 rows" in out.stdout
    assert "recorded: drift report" in out.stdout
    assert (home / "monitor.html").stat().st_size > 100_000  # plotly inlined


def test_an_empty_window_is_not_enough_data_and_exits_0(home: Path) -> None:
    out = run_keel("monitor", "churn", "--window", "10s", cwd=home)
    assert out.returncode == 0, out.stderr
    assert "NOT ENOUGH DATA" in out.stdout and "only 0 served predictions" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "nosuch"),
        (["churn", "--window", "soon"], "invalid interval 'soon'"),
        (["churn", "--window", "1h", "--last", "5"], "cannot be used together"),
        (["churn", "--alert", "http://127.0.0.1:9/x"], "need --every"),
        (["churn", "--realert", "1h"], "need --every"),
        (["churn", "--every", "1s", "--realert", "often"], "invalid interval 'often'"),
        (["churn", "--every", "1s", "--realert", "-5"], "invalid --realert '-5'"),
        (["churn", "--every", "1s", "--alert", "ftp://host/x"], "invalid alert URL"),
        (["churn", "--every", "soon"], "invalid interval"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(home: Path, args: list[str], message: str) -> None:
    out = run_keel("monitor", *args, cwd=home)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_every_interval_alerts_a_webhook_and_records_a_dead_one(home: Path) -> None:
    down = closed_port_url()
    with webhook() as hook:
        out = run_keel(
            "monitor",
            "churn",
            "--window",
            "1h",
            "--no-multivariate",
            "--every",
            "1s",
            "--times",
            "2",
            "--alert",
            hook.url,
            "--alert",
            down,
            "--alert-file",
            "alerts.jsonl",
            cwd=home,
        )
    assert out.returncode == 1, out.stderr
    assert out.stdout.count("DRIFT: churn") == 2
    # The drift lasted both checks: it was sent when it started, not again (--realert 24h).
    assert len(hook.received) == 1
    alert = hook.received[0]
    assert (alert["alert"], alert["model"], alert["version"]) == ("drift", "churn", "churn/v1")
    assert alert["state"] == "firing" and alert["headline"].startswith("DRIFT: ")
    assert {a["id"] for a in alert["alerts"]} >= {"churn/drift/monthly", "churn/drift/plan"}
    assert {f["name"] for f in alert["drifted_features"]} >= {"monthly", "plan"}
    assert alert["window"]["rows"] == 4000 and len(alert["report"]) == 32
    lines = [json.loads(x) for x in (home / "alerts.jsonl").read_text().splitlines()]
    assert [x["event"] for x in lines].count("alert") == 1
    failed = [x for x in lines if x["event"] == "delivery_failed"]
    assert [x["url"] for x in failed] == [down] and all(x["attempts"] == 3 for x in failed)
    assert out.stderr.count(f"alert delivery to {down} failed after 3 tries") == 1
    assert out.stderr.count(f"firing) sent to {hook.url}") == 1


def test_ctrl_c_ends_a_watch_with_a_summary_and_exit_0(home: Path) -> None:
    import signal
    import subprocess

    from tests.conftest import KEEL

    alerts = home / "ctrl-c.jsonl"
    proc = subprocess.Popen(
        [KEEL, "monitor", "churn", "--window", "1h", "--no-multivariate", "--every", "1s",
         "--alert-file", str(alerts)],
        cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (alerts.exists() and alerts.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    last = out.strip().splitlines()[-1]
    assert last.startswith("stopped after ") and " drift" in last, out
    assert last.endswith("alerts sent: 3 firing, 0 resolved"), last  # monthly, plan, prediction
    assert "Traceback" not in err


def test_a_served_model_is_judged_on_its_inputs_with_the_feedback_joined(root: Path) -> None:
    """A real server: 400 customers scored, a routing key sent with a few requests only, the
    outcomes of nine in ten of them fed back; `keel monitor` judges the model's inputs
    (customer_id, in the signature, as the id it is), joins every outcome, and stays calm."""
    from tests.e2e.serve_helpers import serving, training_frame

    train, labels = training_frame(400, seed=0)
    train.assign(churned=labels).to_csv(root / "train.csv", index=False)
    traffic, truth = training_frame(400, seed=1)
    rows = traffic.to_dict("records")
    sent = []
    with serving(root, "--extra-field", "route") as server:
        for start in range(0, 400, 20):
            batch = rows[start : start + 20]
            if start % 300 == 0:  # the routing key arrives with 40 of 400 rows
                batch = [{**r, "route": "b"} for r in batch]
            reply = server.predict(batch)
            assert reply.status == 200, reply.text
            sent += reply.json["prediction_ids"]
        given = [
            {"prediction_id": pid, "outcome": int(y)}
            for i, (pid, y) in enumerate(zip(sent, truth, strict=True))
            if i % 10
        ]
        assert server.feedback({"outcomes": given}).status == 200
    out = run_keel(
        "monitor", "churn", "--last", "400", "--reference", "train.csv", "--target", "churned",
        "--no-multivariate", "--json", cwd=root,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout, out.stderr)
    doc = json.loads(out.stdout)
    report = doc["report"]
    assert doc["window"]["outcomes"] == len(given) == 360
    assert set(report["features"]) == {"customer_id", "tenure", "charges", "plan"}
    assert report["features"]["customer_id"]["status"] == "identifier"
    assert any(n.startswith("not judged: route (logged, but not inputs of churn/v1") for n in report["notes"])
    assert report["performance"] is not None and sum(c["rows"] for c in report["performance"]["chunks"]) == 360
    assert not any(n.startswith("performance: only") for n in report["notes"])
    target = report["target"]
    assert target["status"] == "no drift"
    assert any("90.0% of current rows have an outcome" in n for n in target["notes"])


def test_realert_0_sends_a_lasting_finding_at_every_check(home: Path) -> None:
    out = run_keel(
        "monitor", "churn", "--window", "1h", "--no-multivariate", "--every", "1s", "--times",
        "2", "--realert", "0", "--alert-file", "every.jsonl", cwd=home,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    lines = [json.loads(x) for x in (home / "every.jsonl").read_text().splitlines()]
    assert [x["state"] for x in lines] == ["firing", "firing"]
    assert [a["repeat"] for a in lines[1]["alerts"]] == [True] * len(lines[1]["alerts"])
