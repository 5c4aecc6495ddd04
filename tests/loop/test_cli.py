"""`keel watch` as a user runs it: --once from a trigger to a promotion, status with the story,
one line and exit 2 for each bad input (nothing recorded), and a second watcher told who
holds the loop."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from keel.loop.state import acquire
from keel.registry.versions import resolve_model
from keel.store.db import loop_attempts, loop_events
from keel.workspace import Workspace
from tests.conftest import run_keel
from tests.loop.world import MODEL, log_served, loop_world

POLICY = """
[trigger]
drift = false
every = "1s"
cooldown = "1h"

[retrain]
pipeline = "pipeline.py:retrain"

[rollout]
steps = [1.0]
"""


@pytest.fixture
def world(tmp_path: Path) -> Workspace:
    ws = loop_world(tmp_path)
    (tmp_path / "loop.toml").write_text(POLICY)
    return ws


def _env(ws: Workspace) -> dict[str, str]:
    return {"KEEL_HOME": str(ws.root)}


def _recorded(ws: Workspace) -> int:
    with ws.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(loop_attempts)).scalar_one()) + int(
            conn.execute(select(func.count()).select_from(loop_events)).scalar_one()
        )


def test_once_retrains_gates_and_promotes_then_status_tells_the_story(
    world: Workspace, tmp_path: Path
) -> None:
    (tmp_path / "loop.toml").write_text(POLICY + '[alerts]\njsonl = "loop-alerts.jsonl"\n')
    log_served(world, 400, seed=7)
    time.sleep(1.1)  # "every 1s" since the champion was registered
    out = run_keel("watch", MODEL, "--policy", "loop.toml", "--once", "--json", cwd=tmp_path, env=_env(world))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["attempt"]["state"] == "promoted" and doc["attempt"]["version"] == 3
    assert [t["kind"] for t in doc["triggers"]] == ["every"] and doc["triggers"][0]["fired"]
    assert resolve_model(world, f"{MODEL}@champion").number == 3
    alerts = [json.loads(line) for line in (tmp_path / "loop-alerts.jsonl").read_text().splitlines()]
    assert [(a["kind"], a["model"]) for a in alerts] == [("trigger", "churn"), ("promote", "churn")]
    assert alerts[1]["message"] == "churn v3 promoted"
    status = run_keel("watch", "status", MODEL, "--json", cwd=tmp_path, env=_env(world))
    story = json.loads(status.stdout)["attempts"][0]
    assert [e["kind"] for e in story["events"]] == ["trigger", "retrain", "retrain", "promote"]
    text = run_keel("watch", "status", MODEL, cwd=tmp_path, env=_env(world))
    assert text.returncode == 0 and "promoted" in text.stdout and "v3" in text.stdout
    # what served at a time: read from the event log
    now = run_keel("lineage", "churn@champion", "--at", str(time.time()), "--json", cwd=tmp_path, env=_env(world))
    at = json.loads(now.stdout)["at"]
    assert at["version"] == "churn/v3" and at["attempt"]["state"] == "promoted"
    assert at["attempt"]["gate"]["promote"] is True
    assert [e["kind"] for e in at["attempt"]["events"]] == ["trigger", "retrain", "retrain", "promote"]
    earlier = json.loads(
        run_keel("lineage", "churn@champion", "--at", str(story["created_at"] - 0.5), "--json",
                 cwd=tmp_path, env=_env(world)).stdout
    )["at"]  # fmt: skip
    assert earlier["version"] == "churn/v2" and earlier["attempt"] is None
    shown = run_keel("lineage", "churn@champion", "--at", str(time.time()), cwd=tmp_path, env=_env(world))
    assert "rolled out by keel watch" in shown.stdout and "churn/v3" in shown.stdout
    again = run_keel("watch", MODEL, "--policy", "loop.toml", "--once", cwd=tmp_path, env=_env(world))
    assert again.returncode == 0 and "nothing started: cooling down" in again.stdout


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (POLICY + "[gate]\nmetrc = 'auc'\n", "unknown key 'metrc' in [gate]"),
        (POLICY.replace('every = "1s"', 'every = "often"'), "[trigger] every must be a duration"),
        (POLICY.replace("pipeline.py:retrain", "pipeline.py:nope"), "has no pipeline named 'nope'"),
        (POLICY.replace("pipeline.py:retrain", "nowhere.py:retrain"), "pipeline file"),
    ],
)
def test_bad_policies_are_one_line_exit_2_and_record_nothing(
    world: Workspace, tmp_path: Path, policy: str, expected: str
) -> None:
    (tmp_path / "bad.toml").write_text(policy)
    out = run_keel("watch", MODEL, "--policy", "bad.toml", "--once", cwd=tmp_path, env=_env(world))
    assert out.returncode == 2 and expected in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert _recorded(world) == 0


def test_a_model_without_a_champion_or_a_pipeline_for_another_model_is_exit_2(
    world: Workspace, tmp_path: Path
) -> None:
    out = run_keel("watch", "nomodel", "--policy", "loop.toml", "--once", cwd=tmp_path, env=_env(world))
    assert out.returncode == 2 and "nomodel" in out.stderr
    (tmp_path / "pipeline.py").write_text(
        (tmp_path / "pipeline.py").read_text().replace('register="churn"', 'register="other"')
    )
    out = run_keel("watch", MODEL, "--policy", "loop.toml", "--once", cwd=tmp_path, env=_env(world))
    assert out.returncode == 2 and "registers other, not churn" in out.stderr
    assert _recorded(world) == 0


def test_a_second_watcher_is_told_who_holds_the_loop(world: Workspace, tmp_path: Path) -> None:
    acquire(world, MODEL, "elsewhere:42:abcd", seconds=60)
    out = run_keel("watch", MODEL, "--policy", "loop.toml", "--once", cwd=tmp_path, env=_env(world))
    assert out.returncode == 1
    assert out.stderr.startswith("keel: error: the loop of churn is held by elsewhere:42:abcd")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["churn@champion", "--at", "yesterday"], "invalid --at 'yesterday'"),
        (["churn@champion", "--at", "2001-01-01T00:00"], "churn@champion pointed nowhere at 2001-01-01"),
        (["customers@v1", "--at", "2001-01-01T00:00"], "expected MODEL@ALIAS, not 'customers@v1'"),
    ],
)
def test_lineage_at_bad_input_is_exit_2(
    world: Workspace, tmp_path: Path, args: list[str], expected: str
) -> None:
    out = run_keel("lineage", *args, cwd=tmp_path, env=_env(world))
    assert out.returncode == 2 and expected in out.stderr, out.stderr


def test_resume_and_retry_with_nothing_to_act_on_are_exit_2(world: Workspace, tmp_path: Path) -> None:
    out = run_keel("watch", "resume", MODEL, cwd=tmp_path, env=_env(world))
    assert out.returncode == 2 and "churn has no paused attempt to act on" in out.stderr
    out = run_keel("watch", "retry", MODEL, "--policy", "loop.toml", cwd=tmp_path, env=_env(world))
    assert out.returncode == 2 and "no aborted attempt" in out.stderr


def test_an_inconclusive_canary_aborts_and_retry_needs_no_policy(world: Workspace, tmp_path: Path) -> None:
    log_served(world, 400, seed=11)
    (tmp_path / "loop.toml").write_text(
        POLICY.replace("steps = [1.0]", 'steps = [0.5, 1.0]\nmin_requests = 1000\nmin_duration = "0"\n'
                       'max_duration = "1s"\non_inconclusive = "rollback"')
    )  # fmt: skip
    time.sleep(1.1)
    out = run_keel("watch", MODEL, "--policy", "loop.toml", "--once", "--poll", "0.2s", cwd=tmp_path, env=_env(world))
    assert out.returncode == 1 and "aborted" in out.stdout, out.stdout + out.stderr
    retried = run_keel("watch", "retry", MODEL, cwd=tmp_path / "..", env=_env(world))  # elsewhere
    assert retried.returncode == 0, retried.stderr
    assert "canary of v3 started again" in retried.stdout
    doc = json.loads(run_keel("watch", "status", MODEL, "--json", cwd=tmp_path, env=_env(world)).stdout)
    assert doc["attempts"][0]["state"] == "rolling_out"
    assert [e["kind"] for e in doc["attempts"][0]["events"]][-2:] == ["inconclusive", "rollout"]


def test_without_once_the_loop_keeps_watching(world: Workspace, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess

    from tests.conftest import KEEL

    log_served(world, 400, seed=13)
    proc = subprocess.Popen(
        [KEEL, "watch", MODEL, "--policy", "loop.toml", "--interval", "0.5s"],
        cwd=tmp_path, env={**os.environ, **_env(world)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while resolve_model(world, f"{MODEL}@champion").number != 3 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        assert resolve_model(world, f"{MODEL}@champion").number == 3  # it looked again, and acted
        time.sleep(1.0)
        assert proc.poll() is None  # and goes on watching
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert acquire(world, MODEL, "next:1:x").holder == "next:1:x"  # its lease is not in the way
