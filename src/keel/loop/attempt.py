"""One retraining attempt, driven from its recorded state: train, gate, roll out, promote.

::

    triggered ─▶ training ─▶ gating ─▶ rolling_out (step 0, 1, …) ─▶ promoted
                    │           │            │   ▲
                    ▼           ▼            ▼   │ resume
                  failed     rejected     paused ┘
                                             │
                                rolled_back (a breach) · aborted (inconclusive, stopped)

Each arrow is one transaction that moves the attempt and appends its event with the
evidence; what else must move with it moves in the same transaction (the canary
deployment of the next step, the alias at promotion), so a loop killed between any
two arrows resumes from the last one, never from half of one. Training again after a
crash costs little: the pipeline's step cache reuses every step that finished.

A rollout step is judged from the log lake: the guardrails (the servers apply the
same ones to their own windows, and roll back within a poll) and the always-valid
outcome test. It passes with ``min_requests`` challenger requests after
``min_duration``; with too few requests it is *inconclusive*: it waits, never passes,
never fails, and after ``max_duration`` the policy's ``on_inconclusive`` pauses it
(``keel watch resume``) or aborts it (``keel watch retry``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError
from keel.loop.state import Attempt, move

if TYPE_CHECKING:
    from keel.loop.policy import LoopPolicy
    from keel.workspace import Workspace

__all__ = ["MIN_GATE_ROWS", "Progress", "advance", "resume", "retry"]

MIN_GATE_ROWS = 100  # labelled rows of recent traffic the gate needs


@dataclass
class Progress:
    """Where an attempt stands after :func:`advance`: ended, paused, or waiting (and why)."""

    attempt: Attempt
    waiting: str | None = None

    @property
    def done(self) -> bool:
        return not self.attempt.active


def advance(
    ws: Workspace,
    policy: LoopPolicy,
    attempt: Attempt,
    *,
    notify: Any = None,
    now: float | None = None,
) -> Progress:
    """Move ``attempt`` as far as it can go now. ``notify(kind, message, evidence)`` is told
    of each promotion, rejection, rollback and failure."""
    tell = notify or (lambda *_: None)
    while True:
        state = attempt.state
        if state in ("triggered", "training"):
            attempt = _train(ws, policy, attempt, tell)
        elif state == "gating":
            attempt = _gate(ws, policy, attempt, tell, now)
        elif state == "rolling_out":
            attempt, waiting = _step(ws, policy, attempt, tell, now)
            if waiting is not None:
                return Progress(attempt, waiting)
        else:  # paused, or over
            return Progress(attempt)


def _train(ws: Workspace, policy: LoopPolicy, attempt: Attempt, tell: Any) -> Attempt:
    from keel.pipeline.loading import load_pipeline

    model = attempt.model
    if attempt.state == "triggered":
        attempt = move(
            ws, attempt, "training", "retrain", f"running {policy.retrain.pipeline.rsplit('/', 1)[-1]}",
            {"pipeline": policy.retrain.pipeline, "params": policy.retrain.params},
        )
    try:
        pipe = load_pipeline(policy.retrain.pipeline)
        result = pipe.run(
            policy.retrain.params,
            executor=policy.retrain.executor,
            scheduler=policy.retrain.scheduler,
            workspace=ws,
            tags={"keel.loop.attempt": attempt.id, "keel.loop.trigger": attempt.trigger_id},
        )
    except KeelError as exc:
        return _end(ws, attempt, "failed", "retrain", f"the pipeline could not run: {exc}", {}, tell)
    evidence = {"pipeline_run": result.run, "pipeline": result.pipeline, "model": result.model}
    if result.status != "finished":
        return _end(ws, attempt, "failed", "retrain", f"the pipeline failed: {result.error}", evidence, tell)
    if result.model is None:
        return _end(
            ws, attempt, "failed", "retrain",
            f"pipeline {result.pipeline} registered no model: give it register=\"{model}\"",
            evidence, tell,
        )
    name, _, number = result.model.rpartition("/v")
    if name != model:
        return _end(
            ws, attempt, "failed", "retrain",
            f"pipeline {result.pipeline} registered {result.model}, not a version of {model}",
            evidence, tell,
        )
    version = int(number)
    champion = _champion(ws, model)
    if version == champion:
        return _end(
            ws, attempt, "rejected", "retrain",
            f"the retrained model is the champion itself ({result.model}): nothing changed",
            evidence, tell,
        )
    return move(
        ws, attempt, "gating", "retrain", f"trained {result.model} (pipeline run {result.run[:8]})",
        evidence, version=version,
    )


def _champion(ws: Workspace, model: str) -> int:
    from keel.registry.versions import resolve_model

    return resolve_model(ws, f"{model}@champion").number


def _gate_data(ws: Workspace, policy: LoopPolicy, model: str, now: float) -> tuple[Any, str, str]:
    """The gate's data, its target column, and what it was in words."""
    from keel.evaluation.online import join

    if policy.gate.data != "recent":
        return policy.gate.data, _target(ws, model), policy.gate.data
    rows = join(model, since=now - policy.trigger.window, workspace=ws)  # the judged window
    if len(rows):
        rows = rows[rows["served"].astype(bool) & rows["outcome"].notna()]
    inputs = [c for c in rows.columns if c.startswith("input_")]
    if not len(rows):
        return rows, "outcome", "recent labelled traffic: 0 served predictions with outcomes"
    frame = rows[[*inputs, "outcome"]].rename(columns={c: c[len("input_") :] for c in inputs})
    return frame, "outcome", f"recent labelled traffic: {len(frame):,} served predictions with outcomes"


def _target(ws: Workspace, model: str) -> str:
    from keel.registry.versions import resolve_model

    mv = resolve_model(ws, f"{model}@champion")
    target = (mv.details or {}).get("target") if isinstance(mv.details, dict) else None
    if not target:
        raise InvalidInput(
            f"[gate] data names a dataset, but {mv.ref} does not record its target column"
        )
    return str(target)


def _gate(
    ws: Workspace, policy: LoopPolicy, attempt: Attempt, tell: Any, now: float | None
) -> Attempt:
    from keel.evaluation.gate import gate

    now = time.time() if now is None else now
    model, version = attempt.model, attempt.version
    assert version is not None
    try:
        data, target, described = _gate_data(ws, policy, model, now)
        if policy.gate.data == "recent" and len(data) < MIN_GATE_ROWS:
            return _end(
                ws, attempt, "rejected", "gate",
                f"not enough labelled traffic to gate v{version}: {described.split(': ', 1)[1]} "
                f"(at least {MIN_GATE_ROWS})",
                {"rows": len(data)}, tell,
            )
        decision = gate(
            f"{model}/v{version}",
            against=f"{model}@champion",
            data=data,
            target=target,
            policy=policy.gate.policy,
            workspace=ws,
        )
    except KeelError as exc:
        return _end(ws, attempt, "failed", "gate", f"the gate could not judge v{version}: {exc}", {}, tell)
    evidence = {**decision.to_dict(), "data_described": described}
    if not decision.promote:
        return _end(
            ws, attempt, "rejected", "gate",
            f"the gate rejected v{version}: {'; '.join(decision.reasons)}", evidence, tell,
        )
    return _start_rollout(ws, policy, attempt, f"the gate passed v{version}: {'; '.join(decision.reasons)}", evidence, tell)


def _start_rollout(
    ws: Workspace, policy: LoopPolicy, attempt: Attempt, message: str, evidence: dict[str, Any], tell: Any
) -> Attempt:
    from keel.deploy.records import start_in

    share = policy.rollout.steps[0]
    if share >= 1.0:  # one step: the gate's word is the promotion
        return _promote(ws, attempt, None, message, evidence, tell)
    assert attempt.version is not None
    version = attempt.version

    def deploy(conn: Any) -> None:
        start_in(
            conn, attempt.model, version, mode="canary", share=share, key=policy.rollout.key,
            guardrails=policy.rollout.guardrails, outcome=_outcome(policy), alias="champion",
            message=f"keel watch: attempt {attempt.id[:8]}, step 1 at {share:g}",
        )

    return move(
        ws, attempt, "rolling_out", "rollout", f"{message}; canary step 1 at {share:g}",
        evidence, also=deploy, step=0, step_started_at=time.time(),
    )


def _outcome(policy: LoopPolicy) -> dict[str, Any] | None:
    matrix = policy.gate.policy.value
    return None if matrix is None else dict(matrix.to_dict())


def _step(
    ws: Workspace, policy: LoopPolicy, attempt: Attempt, tell: Any, now: float | None
) -> tuple[Attempt, str | None]:
    """Judge the current rollout step: advance, promote, roll back, pause, or wait."""
    from keel.deploy.records import current_deployment, deployment_history, end_in, start_in
    from keel.deploy.status import outcome_test
    from keel.deploy.watch import judge

    model, version = attempt.model, attempt.version
    assert version is not None and attempt.step is not None
    steps = policy.rollout.steps
    dep = current_deployment(ws, model)
    if dep is None or dep.challenger != version:
        last = next(iter(deployment_history(ws, model, limit=1)), None)  # the newest
        why = last.message if last is not None else "no deployment"
        seen = {"event": vars(last)} if last is not None else {}
        if last is not None and last.action == "rollback":  # a server's guardrail, or a person
            return _end(
                ws, attempt, "rolled_back", "rollback", f"v{version} rolled back: {why}", seen, tell
            ), None
        return _end(
            ws, attempt, "aborted", "abort", f"the canary of v{version} is no longer live: {why}",
            seen, tell,
        ), None
    verdict = judge(ws, model, act=True)
    if verdict.breaches:
        return _end(
            ws, attempt, "rolled_back", "rollback",
            f"v{version} rolled back at step {attempt.step + 1}: "
            + "; ".join(b.message for b in verdict.breaches),
            verdict.to_dict(), tell,
        ), None
    test = outcome_test(ws, dep)
    if test is not None and test.decision == "champion better":
        moved = move(
            ws, attempt, "rolled_back", "rollback",
            f"v{version} rolled back at step {attempt.step + 1}: the champion does better online "
            f"(challenger minus champion {test.difference or 0:+.4g}; always-valid interval "
            f"{_span(test.interval)})",
            test.to_dict(),
            also=lambda conn: end_in(conn, model, action="rollback", message="keel watch: champion better online", only=dep.id),
        )
        tell("rollback", f"{model} v{version} rolled back", moved.to_dict())
        return moved, None
    now = time.time() if now is None else now
    requests = verdict.requests.get("challenger", 0)
    # a step passes only once the guardrails could have judged it
    needed = max(policy.rollout.min_requests, dep.guardrails.min_requests or 0)
    elapsed = now - (attempt.step_started_at or now)
    share = steps[attempt.step]
    where = f"step {attempt.step + 1} of {len(steps)} at {share:g}"
    evidence = {
        "step": attempt.step,
        "share": share,
        "requests": verdict.requests,
        "elapsed": elapsed,
        "test": test.to_dict() if test is not None else None,
    }
    if requests >= needed and elapsed >= policy.rollout.min_duration:
        nxt = attempt.step + 1
        if steps[nxt] >= 1.0:
            return _promote(ws, attempt, dep, f"{where} passed ({requests:,} requests, no breach)", evidence, tell), None

        def advance_step(conn: Any) -> None:
            end_in(conn, model, action="step", message=f"keel watch: step {nxt} passed", only=dep.id)
            start_in(
                conn, model, version, mode="canary", share=steps[nxt], key=policy.rollout.key,
                guardrails=policy.rollout.guardrails, outcome=dep.outcome, alias=dep.alias,
                message=f"keel watch: attempt {attempt.id[:8]}, step {nxt + 1} at {steps[nxt]:g}",
            )

        return move(
            ws, attempt, "rolling_out", "rollout",
            f"{where} passed ({requests:,} requests, no breach); step {nxt + 1} at {steps[nxt]:g}",
            evidence, also=advance_step, step=nxt, step_started_at=time.time(),
        ), None
    if elapsed >= policy.rollout.max_duration:
        why = (
            f"{where} inconclusive after {elapsed:.0f} s: {requests:,} of {needed:,} requests"
        )
        if policy.rollout.on_inconclusive == "pause":
            paused = move(ws, attempt, "paused", "inconclusive", f"{why}; paused (keel watch resume)", evidence)
            tell("paused", f"{model} v{version} rollout paused", paused.to_dict())
            return paused, None
        aborted = move(
            ws, attempt, "aborted", "inconclusive", f"{why}; rolled back (keel watch retry)", evidence,
            also=lambda conn: end_in(conn, model, action="rollback", message="keel watch: inconclusive", only=dep.id),
        )
        tell("aborted", f"{model} v{version} rollout aborted", aborted.to_dict())
        return aborted, None
    needs = []
    if requests < needed:
        needs.append(f"{requests:,} of {needed:,} requests")
    if elapsed < policy.rollout.min_duration:
        needs.append(f"{elapsed:.0f} of {policy.rollout.min_duration:.0f} s")
    return attempt, f"{where}: {', '.join(needs)}"


def _span(interval: tuple[float, float] | None) -> str:
    return "none" if interval is None else f"{interval[0]:+.4g} to {interval[1]:+.4g}"


def _promote(
    ws: Workspace, attempt: Attempt, dep: Any, message: str, evidence: dict[str, Any], tell: Any
) -> Attempt:
    """The alias moves to the challenger, the deployment ends and the attempt is promoted:
    one transaction."""
    from keel.deploy.records import promote_in
    from keel.registry.versions import promote_in as move_alias

    assert attempt.version is not None
    version = attempt.version

    def promote(conn: Any) -> None:
        if dep is not None:
            promote_in(conn, ws, dep, f"keel watch: attempt {attempt.id[:8]}")
        else:
            move_alias(conn, ws, attempt.model, version, f"keel watch: attempt {attempt.id[:8]}")

    done = move(
        ws, attempt, "promoted", "promote", f"{message}; v{version} is {attempt.model}@champion",
        evidence, also=promote,
    )
    tell("promote", f"{attempt.model} v{version} promoted", done.to_dict())
    return done


def _end(
    ws: Workspace,
    attempt: Attempt,
    state: str,
    kind: str,
    message: str,
    evidence: dict[str, Any],
    tell: Any,
) -> Attempt:
    done = move(ws, attempt, state, kind, message, evidence)
    tell(state, f"{attempt.model}: {message}", done.to_dict())
    return done


def resume(ws: Workspace, attempt: Attempt) -> Attempt:
    """A paused rollout goes on at the step it paused at, its clock started again."""
    if attempt.state != "paused":
        raise InvalidInput(f"attempt {attempt.id[:8]} of {attempt.model} is {attempt.state}, not paused")
    return move(
        ws, attempt, "rolling_out", "resume", f"resumed at step {(attempt.step or 0) + 1}",
        {}, step_started_at=time.time(),
    )


def retry(ws: Workspace, policy: LoopPolicy, attempt: Attempt) -> Attempt:
    """An aborted rollout starts again from its first step (a version rolled back for a
    breach is not retried)."""
    from keel.loop.state import active_attempt

    if attempt.state != "aborted" or attempt.version is None:
        raise InvalidInput(
            f"attempt {attempt.id[:8]} of {attempt.model} is {attempt.state}: only an aborted "
            "rollout can be retried"
        )
    live = active_attempt(ws, attempt.model)
    if live is not None:
        raise InvalidInput(f"attempt {live.id[:8]} of {attempt.model} is {live.state}: one at a time")
    return _start_rollout(ws, policy, attempt, f"retry of v{attempt.version}", {}, lambda *_: None)
