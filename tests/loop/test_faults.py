"""kill -9 of `keel watch` at any point, then a restart, on SQLite and PostgreSQL: the loop
resumes from its last recorded state and ends promoted, with one attempt, one rollout at a
time, and an alias that moved once."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from keel.deploy.records import current_deployment, deployment_history
from keel.loop.state import attempts_of, events_of
from keel.registry.versions import alias_history, resolve_model
from keel.store.db import loop_attempts
from keel.workspace import Workspace
from tests.conftest import KEEL
from tests.loop.world import MODEL, log_served, loop_world

POLICY = """
[trigger]
drift = false
every = "1s"
cooldown = "1h"

[retrain]
pipeline = "pipeline.py:retrain"

[gate.primary]
metric = "accuracy"

[gate.bootstrap]
resamples = 100000           # a gate that takes a few seconds: time to be killed in

[rollout]
steps = [0.25, 0.5, 1.0]
min_requests = 20
min_duration = "0s"
"""


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    ws = loop_world(tmp_path, url)
    pipeline = tmp_path / "pipeline.py"  # training takes a while: time to be killed in
    pipeline.write_text(
        pipeline.read_text().replace("def train(load, c: float = 1.0):\n", "def train(load, c: float = 1.0):\n    import time\n    time.sleep(1.0)\n")
    )
    (tmp_path / "loop.toml").write_text(POLICY)
    log_served(ws, 400, seed=3)
    time.sleep(1.1)  # every 1 s: due
    yield ws
    ws.close()


def _canary_traffic(ws: Workspace, stop: threading.Event) -> None:
    """The challenger's requests, logged while a deployment of v3 is live."""
    seed = 1000
    while not stop.is_set():
        dep = current_deployment(ws, MODEL)
        if dep is not None and dep.challenger == 3:
            log_served(ws, 10, seed=seed, arm="challenger", version=3, deployment=dep.id)
            seed += 1
        time.sleep(0.3)


def _watch(root: Path, ws: Workspace) -> subprocess.Popen[str]:
    env = {**os.environ, "KEEL_HOME": str(ws.root)}
    env.pop("KEEL_DEBUG", None)
    return subprocess.Popen(
        [KEEL, "watch", MODEL, "--policy", "loop.toml", "--once", "--poll", "0.2s"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _state(ws: Workspace) -> tuple[str, int | None] | None:
    with ws.db.read() as conn:
        row = conn.execute(
            select(loop_attempts.c.state, loop_attempts.c.step).order_by(loop_attempts.c.created_at.desc())
        ).first()
    return None if row is None else (row.state, row.step)


def test_killed_at_every_stage_then_restarted_ends_promoted_once(
    world: Workspace, tmp_path: Path
) -> None:
    stop = threading.Event()
    traffic = threading.Thread(target=_canary_traffic, args=(world, stop), daemon=True)
    killed_in: list[str | None] = []
    try:
        for stage in (("training", None), ("gating", None), ("rolling_out", 0), ("rolling_out", 1)):
            proc = _watch(tmp_path, world)
            deadline = time.monotonic() + 60
            while _state(world) != stage and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            if stage[0] == "rolling_out" and not traffic.is_alive():
                traffic.start()
            time.sleep(0.1)
            killed_in.append(_state(world))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
        proc = _watch(tmp_path, world)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    finally:
        stop.set()
        if traffic.is_alive():
            traffic.join()
    assert [k for k in killed_in if k is not None] == [
        ("training", None), ("gating", None), ("rolling_out", 0), ("rolling_out", 1)
    ], killed_in  # killed in each stage, and at each canary step
    attempts = attempts_of(world, MODEL)
    assert len(attempts) == 1 and attempts[0].state == "promoted"
    assert resolve_model(world, f"{MODEL}@champion").number == 3
    promotions = [e for e in alias_history(world, MODEL) if e.to_target == "3"]
    assert len(promotions) == 1  # the alias moved once, whole
    assert current_deployment(world, MODEL) is None
    starts = [e for e in deployment_history(world, MODEL) if e.action == "start"]
    assert 1 <= len(starts) <= 3  # one canary per step at most: never two rollouts
    states = [e.state for e in events_of(world, MODEL, attempt=attempts[0].id)]
    assert states[0] == "triggered" and states[-1] == "promoted"
    assert states.count("promoted") == 1
