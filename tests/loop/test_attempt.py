"""An attempt driven through its states on a served world (rows written into the log lake as
the server logs them): train, gate, a canary step by step, promotion; a rejection, a
rollback on a breach, an inconclusive step that pauses and resumes. Every move is an
event, and the alias moves only with the promotion."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from keel.deploy.records import current_deployment, deployment_history
from keel.loop.attempt import advance, resume, retry
from keel.loop.policy import parse_policy
from keel.loop.state import events_of, start_attempt
from keel.loop.watch import tick, watch
from keel.registry.versions import resolve_model
from keel.workspace import Workspace
from tests.loop.world import MODEL, log_served, loop_world


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ws = loop_world(tmp_path)
    monkeypatch.setenv("KEEL_HOME", str(ws.root))  # the pipeline's steps open it
    return ws


def _policy(root: Path, **rollout: Any) -> Any:
    doc = {
        "trigger": {"drift": False, "every": "1s", "cooldown": "0s"},
        "retrain": {"pipeline": "pipeline.py:retrain"},
        "rollout": {"steps": [0.5, 1.0], "min_requests": 20, "min_duration": "1s", **rollout},
    }
    doc["rollout"]["guardrails"] = {"max_error_rate": 0.05, "min_requests": 10}
    return parse_policy(doc, base=root)


def _fire(ws: Workspace, trigger_id: str = "t1") -> Any:
    attempt, why = start_attempt(ws, MODEL, trigger_id, {"kind": "every"}, cooldown=0)
    assert attempt is not None, why
    return attempt


def _champion(ws: Workspace) -> int:
    return resolve_model(ws, f"{MODEL}@champion").number


def test_train_gate_canary_and_promote(world: Workspace, tmp_path: Path) -> None:
    log_served(world, 400, seed=21)  # recent labelled traffic for the gate
    policy = _policy(tmp_path, min_duration="0s")
    told: list[str] = []
    progress = advance(world, policy, _fire(world), notify=lambda kind, *_: told.append(kind))
    attempt = progress.attempt
    assert attempt.state == "rolling_out" and attempt.version == 3 and attempt.step == 0
    assert progress.waiting == "step 1 of 2 at 0.5: 0 of 20 requests"
    dep = current_deployment(world, MODEL)
    assert dep is not None and dep.challenger == 3 and dep.share == 0.5 and dep.mode == "canary"
    assert _champion(world) == 2  # nothing promoted yet
    log_served(world, 30, seed=22, arm="challenger", version=3, deployment=dep.id)
    log_served(world, 30, seed=23, arm="champion", version=2, deployment=dep.id)
    done = advance(world, policy, attempt, notify=lambda kind, *_: told.append(kind))
    assert done.done and done.attempt.state == "promoted"
    assert _champion(world) == 3 and current_deployment(world, MODEL) is None
    assert deployment_history(world, MODEL, limit=1)[0].action == "promote"
    story = [(e.kind, e.state) for e in events_of(world, MODEL, attempt=attempt.id)]
    assert story == [
        ("trigger", "triggered"), ("retrain", "training"), ("retrain", "gating"),
        ("rollout", "rolling_out"), ("promote", "promoted"),
    ]  # fmt: skip
    gate = events_of(world, MODEL, attempt=attempt.id)[3].evidence
    assert gate["promote"] is True and gate["primary"]["metric"] == "auc"
    assert told == ["promote"]


def test_a_canary_with_more_steps_advances_one_step_at_a_time(world: Workspace, tmp_path: Path) -> None:
    log_served(world, 400, seed=31)
    policy = _policy(tmp_path, steps=[0.1, 0.5, 1.0], min_duration="0s")
    attempt = advance(world, policy, _fire(world)).attempt
    first = current_deployment(world, MODEL)
    assert first is not None and first.share == 0.1
    log_served(world, 25, seed=32, arm="challenger", version=3, deployment=first.id)
    progress = advance(world, policy, attempt)
    second = current_deployment(world, MODEL)
    assert progress.attempt.step == 1 and second is not None and second.share == 0.5
    assert second.id != first.id and _champion(world) == 2
    assert progress.waiting == "step 2 of 3 at 0.5: 0 of 20 requests"  # counted from its start


def test_a_breach_rolls_back_and_the_alias_never_moves(world: Workspace, tmp_path: Path) -> None:
    log_served(world, 400, seed=41)
    policy = _policy(tmp_path)
    attempt = advance(world, policy, _fire(world)).attempt
    dep = current_deployment(world, MODEL)
    assert dep is not None
    log_served(world, 20, seed=42, arm="challenger", version=3, deployment=dep.id, errors=10)
    told: list[str] = []
    done = advance(world, policy, attempt, notify=lambda kind, *_: told.append(kind))
    assert done.attempt.state == "rolled_back" and "error rate" in events_of(world, MODEL)[-1].message
    assert current_deployment(world, MODEL) is None and _champion(world) == 2
    assert deployment_history(world, MODEL, limit=1)[0].action == "rollback"
    assert told == ["rolled_back"]
    with pytest.raises(Exception, match="only an aborted rollout can be retried"):
        retry(world, policy, done.attempt)  # a breach is not retried


def test_a_rollback_by_the_server_is_recorded(world: Workspace, tmp_path: Path) -> None:
    from keel.deploy.records import end_deployment

    log_served(world, 400, seed=51)
    policy = _policy(tmp_path)
    attempt = advance(world, policy, _fire(world)).attempt
    dep = current_deployment(world, MODEL)
    assert dep is not None
    end_deployment(world, MODEL, action="rollback", message="guardrail: error rate 0.3 > 0.05", only=dep.id)
    done = advance(world, policy, attempt)
    assert done.attempt.state == "rolled_back"
    assert "guardrail: error rate 0.3 > 0.05" in events_of(world, MODEL)[-1].message


def test_an_inconclusive_step_pauses_then_resumes(world: Workspace, tmp_path: Path) -> None:
    log_served(world, 400, seed=61)
    policy = _policy(tmp_path, min_requests=1000, min_duration="0.1s", max_duration="1.5s")
    attempt = advance(world, policy, _fire(world)).attempt
    waiting = advance(world, policy, attempt)
    assert waiting.waiting is not None and "of 1,000 requests" in waiting.waiting
    time.sleep(1.6)
    paused = advance(world, policy, attempt).attempt
    assert paused.state == "paused" and current_deployment(world, MODEL) is not None  # kept at 0.5
    assert "inconclusive" in events_of(world, MODEL)[-1].message
    again = resume(world, paused)
    assert again.state == "rolling_out" and again.step == 0


def test_on_inconclusive_rollback_aborts_and_retry_starts_over(world: Workspace, tmp_path: Path) -> None:
    log_served(world, 400, seed=71)
    policy = _policy(
        tmp_path, min_requests=1000, min_duration="0.1s", max_duration="1.5s", on_inconclusive="rollback"
    )
    attempt = advance(world, policy, _fire(world)).attempt
    time.sleep(1.6)
    aborted = advance(world, policy, attempt).attempt
    assert aborted.state == "aborted" and current_deployment(world, MODEL) is None
    again = retry(world, policy, aborted)
    assert again.state == "rolling_out" and again.step == 0
    assert current_deployment(world, MODEL) is not None


def test_a_gate_that_says_no_rejects_with_its_evidence(world: Workspace, tmp_path: Path) -> None:
    from keel.registry.versions import promote

    log_served(world, 400, seed=81)
    promote(world, MODEL, 1)  # the sound model is champion: a retrain cannot beat it by the noise
    policy = _policy(tmp_path)
    done = advance(world, policy, _fire(world))
    assert done.attempt.state == "rejected" and _champion(world) == 1
    last = events_of(world, MODEL)[-1]
    assert last.kind == "gate" and last.evidence["promote"] is False and last.evidence["reasons"]


def test_too_little_labelled_traffic_rejects_before_gating(world: Workspace, tmp_path: Path) -> None:
    log_served(world, 20, seed=91)
    done = advance(world, _policy(tmp_path), _fire(world))
    assert done.attempt.state == "rejected"
    assert "not enough labelled traffic to gate v3" in events_of(world, MODEL)[-1].message


def test_a_failing_pipeline_fails_the_attempt(world: Workspace, tmp_path: Path) -> None:
    text = (tmp_path / "pipeline.py").read_text().replace(
        'return {"accuracy"', 'raise RuntimeError("diverged")\n    return {"accuracy"'
    )
    (tmp_path / "pipeline.py").write_text(text)
    done = advance(world, _policy(tmp_path), _fire(world))
    assert done.attempt.state == "failed"
    assert "step evaluate failed: RuntimeError: diverged" in events_of(world, MODEL)[-1].message


def test_watch_once_goes_from_trigger_to_promotion(world: Workspace, tmp_path: Path) -> None:
    import threading

    log_served(world, 400, seed=101)
    policy = _policy(tmp_path, min_duration="0s")
    policy = type(policy)(**{**vars(policy), "trigger": type(policy.trigger)(drift=False, every=1.0, cooldown=3600.0)})
    time.sleep(1.1)  # every 1 s since the champion was registered: due
    stop = threading.Event()

    def traffic() -> None:  # the canary's requests arrive while keel watch waits
        seed = 200
        while not stop.is_set():
            dep = current_deployment(world, MODEL)
            if dep is not None:
                log_served(world, 25, seed=seed, arm="challenger", version=3, deployment=dep.id)
                seed += 1
            time.sleep(0.2)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        result = watch(world, MODEL, policy, once=True, poll=0.1)
    finally:
        stop.set()
        thread.join()
    assert result.started is not None and result.attempt is not None
    assert result.attempt.state == "promoted" and _champion(world) == 3
    assert json.loads(json.dumps(result.to_dict()))["attempt"]["state"] == "promoted"
    # the next tick: "every" is due again a second after the attempt began, but the
    # cooldown holds it off
    time.sleep(1.1)
    quiet = tick(world, MODEL, policy)
    assert quiet.started is None and quiet.not_started is not None
    assert quiet.not_started.startswith("cooling down")
