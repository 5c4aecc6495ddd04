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
    assert len(hook.received) == 2
    alert = hook.received[0]
    assert (alert["alert"], alert["model"], alert["version"]) == ("drift", "churn", "churn/v1")
    assert {f["name"] for f in alert["drifted_features"]} >= {"monthly", "plan"}
    assert alert["window"]["rows"] == 4000 and len(alert["report"]) == 32
    lines = [json.loads(x) for x in (home / "alerts.jsonl").read_text().splitlines()]
    assert [x["event"] for x in lines].count("alert") == 2
    failed = [x for x in lines if x["event"] == "delivery_failed"]
    assert [x["url"] for x in failed] == [down, down] and all(x["attempts"] == 3 for x in failed)
    assert out.stderr.count(f"alert delivery to {down} failed after 3 tries") == 2
    assert out.stderr.count(f"alert sent to {hook.url}") == 2
