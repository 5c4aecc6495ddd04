"""`keel run FILE:NAME` and `keel pipelines` as a user runs them: tables, JSON, exit codes,
one line for every bad input, nothing recorded when the input is bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from keel.store.db import runs
from keel.workspace import Workspace
from tests.conftest import run_keel
from tests.pipeline.test_pipeline import FLOWS


def _runs(ws: Workspace) -> int:
    with ws.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(runs)).scalar_one())


@pytest.fixture
def home(ws: Workspace) -> Path:
    root = Path(ws.root)
    (root / "flows.py").write_text(FLOWS)
    return root


def test_run_then_rerun_reuses_every_step(ws: Workspace, home: Path) -> None:
    first = run_keel("run", "flows.py:flow", cwd=home)
    assert first.returncode == 0, first.stderr
    assert "FINISHED: pipeline demo" in first.stdout and "4 steps, 0 reused" in first.stdout
    again = run_keel("run", "flows.py:flow", "--json", cwd=home)
    doc = json.loads(again.stdout)
    assert again.returncode == 0 and doc["status"] == "finished"
    assert [s["status"] for s in doc["steps"]] == ["cached"] * 4
    changed = run_keel("run", "flows.py:flow", "--param", "lr=0.5", "--explain", cwd=home)
    assert changed.returncode == 0
    words = " ".join(changed.stdout.split())
    assert "train run changed: params: lr" in words and "load reuse" in words
    listed = json.loads(run_keel("pipelines", "list", "--json", cwd=home).stdout)
    assert [(p["pipeline"], p["runs"], p["status"]) for p in listed] == [("demo", 2, "finished")]
    shown = json.loads(run_keel("pipelines", "show", "demo", "--json", cwd=home).stdout)
    assert [(s["step"], s["status"]) for s in shown["steps"]] == [
        ("load", "cached"), ("features", "cached"), ("train", "cached"), ("report", "cached"),
    ]  # fmt: skip
    assert all(s["run"] for s in shown["steps"])  # the runs that made the outputs
    history = json.loads(run_keel("pipelines", "runs", "demo", "--json", cwd=home).stdout)
    assert len(history) == 2 and history[0]["run"] == doc["run"]


def test_a_failing_step_is_one_line_and_exit_1(ws: Workspace, home: Path) -> None:
    (home / "flows.py").write_text(
        FLOWS.replace('    CALLS.append("train")', '    raise RuntimeError("diverged")')
    )
    out = run_keel("run", "flows.py:flow", cwd=home)
    assert out.returncode == 1
    assert out.stderr == "keel: error: step train failed: RuntimeError: diverged\n"
    assert "FAILED: pipeline demo" in out.stdout
    verbose = run_keel("run", "flows.py:flow", "--verbose", cwd=home)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nofile.py:flow"], "pipeline file 'nofile.py': no such file"),
        (["flows.py"], "expected FILE.py:NAME"),
        (["flows.py:nope"], "has no pipeline named 'nope'; its pipelines: flow"),
        (["broken.py:flow"], "broken.py does not import: ZeroDivisionError: division by zero"),
        (["flows.py:flow", "--param", "lr"], "invalid --param 'lr': expected NAME=VALUE"),
        (["flows.py:flow", "--param", "lr=fast"], "invalid --param lr='fast': expected float"),
        (["flows.py:flow", "--param", "alpha=1"], "unknown parameter 'alpha' for pipeline demo"),
        (["cycle.py:flow"], "has a cycle"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_records_nothing(
    ws: Workspace, home: Path, args: list[str], message: str
) -> None:
    (home / "broken.py").write_text("x = 1 / 0\n")
    (home / "cycle.py").write_text(
        "from keel.pipeline import pipeline, step\n"
        "@step\ndef a(b): return b\n@step\ndef b(a): return a\n"
        "flow = pipeline('cyc', [a, b])\n"
    )
    before = _runs(ws)
    out = run_keel("run", *args, cwd=home)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert _runs(ws) == before


def test_kill_9_during_a_step_leaves_crashed_runs_and_a_rerun_reuses_what_finished(
    ws: Workspace, home: Path
) -> None:
    import os
    import signal
    import subprocess
    import time

    from keel.track.records import mark_crashed
    from tests.conftest import KEEL

    slow = FLOWS.replace(
        '    CALLS.append("train")',
        '    CALLS.append("train")\n    import pathlib, time\n'
        '    pathlib.Path("training").write_text("now")\n    time.sleep(60)',
    )
    (home / "flows.py").write_text(slow)
    env = {**os.environ, "KEEL_HEARTBEAT_SECONDS": "0.2"}
    proc = subprocess.Popen(
        [KEEL, "run", "flows.py:flow"], cwd=home, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (home / "training").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    time.sleep(1.0)  # three missed beats of 0.2 s
    ws.db.write(lambda conn: mark_crashed(conn))
    with ws.db.read() as conn:
        states = dict(conn.execute(select(runs.c.name, runs.c.status)).all())
    assert states["pipeline demo"] == "crashed" and states["demo.train"] == "crashed"
    assert states["demo.load"] == states["demo.features"] == "finished"
    verify = run_keel("verify", cwd=home)
    assert verify.returncode == 0, verify.stdout + verify.stderr  # nothing half written
    (home / "flows.py").write_text(FLOWS)
    again = json.loads(run_keel("run", "flows.py:flow", "--json", cwd=home).stdout)
    assert [s["status"] for s in again["steps"]] == ["cached", "cached", "finished", "finished"]
