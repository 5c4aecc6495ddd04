"""The loop's records on SQLite and PostgreSQL: one holder per model's loop, one attempt per
trigger firing and per cooldown, and state moves that are compare-and-set with their event."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from keel.loop.state import (
    Attempt,
    LoopHeld,
    StaleAttempt,
    acquire,
    active_attempt,
    attempts_of,
    events_of,
    move,
    release,
    renew,
    start_attempt,
)
from keel.workspace import Workspace


@pytest.fixture(params=["sqlite", "postgres"])
def any_ws(request: pytest.FixtureRequest) -> Workspace:
    return request.getfixturevalue("ws" if request.param == "sqlite" else "pg_ws")


def test_one_holder_at_a_time_and_a_dead_holders_lease_runs_out(any_ws: Workspace) -> None:
    first = acquire(any_ws, "churn", "host:1:a", seconds=0.5)
    with pytest.raises(LoopHeld, match=r"the loop of churn is held by host:1:a") as held:
        acquire(any_ws, "churn", "host:2:b")
    assert held.value.exit_code == 1
    assert acquire(any_ws, "other", "host:2:b").holder == "host:2:b"  # per model
    assert renew(any_ws, first, seconds=0.5).holder == "host:1:a"
    time.sleep(0.6)  # the first holder stopped renewing: killed
    second = acquire(any_ws, "churn", "host:2:b")
    with pytest.raises(LoopHeld):
        renew(any_ws, first)  # it lost the loop; it must stop acting
    release(any_ws, first)  # not its lease any more: nothing happens
    with pytest.raises(LoopHeld):
        acquire(any_ws, "churn", "host:3:c")
    release(any_ws, second)
    assert acquire(any_ws, "churn", "host:3:c").holder == "host:3:c"


def test_two_processes_race_for_one_loop_and_one_wins(any_ws: Workspace) -> None:
    # Each stays alive until all have tried: a winner that exited would be a dead holder,
    # whose lease the next one rightly takes (a slow start under load made two winners).
    script = (
        "import sys, keel\n"
        "from keel.loop.state import acquire, LoopHeld\n"
        "ws = keel.connect(sys.argv[1])\n"
        "try:\n    acquire(ws, 'churn', seconds=60)\n    print('won', flush=True)\n"
        "except LoopHeld as exc:\n    print('held', exc, flush=True)\n"
        "sys.stdin.read()\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(any_ws.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        outs = [p.stdout.readline() for p in procs if p.stdout is not None]
    finally:
        for p in procs:
            p.communicate(timeout=60)
    assert sum(o.startswith("won") for o in outs) == 1, outs
    assert all(o.startswith(("won", "held the loop of churn is held by")) for o in outs)


def test_a_killed_holder_on_this_machine_is_replaced_at_once(any_ws: Workspace) -> None:
    script = (
        "import os, signal, sys, keel\n"
        "from keel.loop.state import acquire\n"
        "acquire(keel.connect(sys.argv[1]), 'churn', seconds=600)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(any_ws.root)], check=False, timeout=60)
    assert acquire(any_ws, "churn").model == "churn"  # not 600 s later


def test_one_attempt_per_trigger_id_per_active_attempt_and_per_cooldown(any_ws: Workspace) -> None:
    fired = {"kind": "drift", "message": "3 of 8 features drifted"}
    attempt, why = start_attempt(any_ws, "churn", "churn:v1|drift|100", fired, cooldown=0.3)
    assert isinstance(attempt, Attempt) and attempt.state == "triggered" and why == "started"
    again, why = start_attempt(any_ws, "churn", "churn:v1|drift|100", fired, cooldown=0.3)
    assert again is None and "already started attempt" in why
    other, why = start_attempt(any_ws, "churn", "churn:v1|every|7", {"kind": "every"}, cooldown=0)
    assert other is None and "is triggered" in why  # one attempt of a model at a time
    assert active_attempt(any_ws, "churn") == attempt
    move(any_ws, attempt, "failed", "retrain", "the pipeline failed", {"error": "boom"})
    assert active_attempt(any_ws, "churn") is None
    cooled, why = start_attempt(any_ws, "churn", "churn:v1|every|8", {"kind": "every"}, cooldown=0.3)
    assert cooled is None and why.startswith("cooling down")
    time.sleep(0.35)
    later, _ = start_attempt(any_ws, "churn", "churn:v1|every|8", {"kind": "every"}, cooldown=0.3)
    assert later is not None
    assert [a.id for a in attempts_of(any_ws, "churn")] == [later.id, attempt.id]
    kinds = [(e.kind, e.state) for e in events_of(any_ws, "churn")]
    assert kinds == [("trigger", "triggered"), ("retrain", "failed"), ("trigger", "triggered")]
    assert events_of(any_ws, "churn", attempt=attempt.id)[-1].evidence == {"error": "boom"}


def test_a_move_is_compare_and_set_with_its_event(any_ws: Workspace) -> None:
    attempt, _ = start_attempt(any_ws, "churn", "t1", {"kind": "every"}, cooldown=0)
    assert attempt is not None
    training = move(any_ws, attempt, "training", "retrain", "running the pipeline")
    gated = move(any_ws, training, "gating", "retrain", "registered churn/v2", version=2)
    assert gated.version == 2 and gated.state == "gating"
    with pytest.raises(StaleAttempt, match="is no longer training"):
        move(any_ws, training, "failed", "retrain", "a second loop's stale view")

    def boom(conn: object) -> None:
        raise RuntimeError("crash in the middle of the move")

    with pytest.raises(RuntimeError):
        move(any_ws, gated, "rolling_out", "rollout", "step 1", also=boom, step=0)
    assert active_attempt(any_ws, "churn") == gated  # nothing half written
    assert [e.kind for e in events_of(any_ws, "churn")] == ["trigger", "retrain", "retrain"]


def test_concurrent_starts_for_one_model_start_one_attempt(any_ws: Workspace) -> None:
    started: list[Attempt | None] = []

    def fire(i: int) -> None:
        attempt, _ = start_attempt(any_ws, "churn", f"trigger-{i}", {"kind": "every"}, cooldown=0)
        started.append(attempt)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(a is not None for a in started) == 1
