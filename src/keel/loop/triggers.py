"""What starts a retraining: each trigger of the policy looked at once, with its evidence.

Each firing carries a **trigger id** that names the situation, not the look, so the
same situation evaluated again maps to the same id and starts at most one attempt
(:func:`keel.loop.state.start_attempt` refuses a seen id), as Dagster's ``run_key``:

- ``drift``: ``MODEL|drift|vN|K``: the champion vN's served window number K (the
  window's length divides time), judged by :func:`keel.monitor.live.check`;
- ``min_value``: ``MODEL|min_value|vN|K``: the champion's realized value (outcomes
  joined from the log lake) per decision in window K below the policy's bound, or,
  without enough outcomes, its estimated accuracy (CBPE) when accuracy is the metric;
- ``every``: ``MODEL|every|T``: due since T, the later of the champion's registration
  and the last attempt's start;
- ``new_data``: ``MODEL|new_data|DATASET@vN``: a head newer than the version the
  champion was trained on (as its run recorded it), or, when its lineage does not say,
  newer than the head seen when the loop first looked (a ``baseline`` event): never on
  the first look alone.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import KeelError

if TYPE_CHECKING:
    from keel.loop.policy import LoopPolicy
    from keel.workspace import Workspace

__all__ = ["MIN_OUTCOMES", "TriggerLook", "look"]

MIN_OUTCOMES = 100  # realized value is judged on at least this many joined outcomes


@dataclass
class TriggerLook:
    """One trigger looked at: whether it fired, why, and its id when it did."""

    kind: str
    fired: bool
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    trigger_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "fired": self.fired,
            "message": self.message,
            "trigger_id": self.trigger_id,
            "evidence": self.evidence,
        }


def look(
    ws: Workspace, model: str, policy: LoopPolicy, *, now: float | None = None
) -> list[TriggerLook]:
    """Every trigger the policy turns on, looked at once at ``now``."""
    from keel.registry.versions import resolve_model

    now = time.time() if now is None else now
    champion = resolve_model(ws, f"{model}@champion")
    t = policy.trigger
    looks: list[TriggerLook] = []
    drift_result = None
    if t.drift or t.min_value is not None:
        drift_result = _drift_check(ws, model, t.window, now)
    if t.drift:
        looks.append(_drift(model, champion.number, t.window, now, drift_result))
    if t.min_value is not None:
        looks.append(
            _min_value(ws, model, champion.number, policy, now, drift_result)
        )
    if t.every is not None:
        looks.append(_every(ws, model, champion, t.every, now))
    if t.new_data is not None:
        looks.append(_new_data(ws, model, champion, t.new_data))
    return looks


def _bucket(now: float, window: float) -> int:
    return int(now // window)


def _drift_check(ws: Workspace, model: str, window: float, now: float) -> Any:
    from keel.monitor.live import check

    try:
        return check(model, window=window, workspace=ws, now=now, record=True)
    except KeelError as exc:
        return exc


def _drift(model: str, version: int, window: float, now: float, result: Any) -> TriggerLook:
    if isinstance(result, KeelError):
        return TriggerLook("drift", False, f"drift could not be judged: {result}")
    report = result.report
    evidence: dict[str, Any] = {
        "status": result.status,
        "window": result.window.describe(),
        "version": version,
    }
    if report is not None:
        evidence["report"] = report.record_id
        evidence["drifted"] = [f.name for f in report.features.values() if f.drifted]
    if result.status != "drift":
        why = {
            "schema": "the served inputs broke the model's schema: retraining does not fix that",
            "not enough data": "not enough served traffic to judge",
        }.get(result.status, "no drift")
        return TriggerLook("drift", False, f"{why}: {result.reason}", evidence)
    bucket = _bucket(now, window)
    evidence["bucket"] = bucket
    return TriggerLook(
        "drift",
        True,
        f"drift on the served window of v{version}: {result.reason}",
        evidence,
        f"{model}|drift|v{version}|{bucket}",
    )


def _min_value(
    ws: Workspace, model: str, version: int, policy: LoopPolicy, now: float, drift_result: Any
) -> TriggerLook:
    from keel.evaluation.online import online_results

    bound = policy.trigger.min_value
    assert bound is not None
    window = policy.trigger.window
    matrix = policy.gate.policy.value
    online = online_results(ws, model, since=now - window, outcome=matrix)
    arm = next(
        (a for a in online.arms if a.served and a.arm == "champion" and a.version == version), None
    )
    bucket = _bucket(now, window)
    trigger_id = f"{model}|min_value|v{version}|{bucket}"

    def judged(value: float, what: str, evidence: dict[str, Any]) -> TriggerLook:
        evidence.update(bound=bound, version=version)
        if value < bound:
            return TriggerLook("min_value", True, f"{what}, below {bound:g}", evidence, trigger_id)
        return TriggerLook("min_value", False, f"{what}, at or above {bound:g}", evidence)

    if arm is not None and arm.outcomes >= MIN_OUTCOMES and arm.metric_value is not None:
        return judged(
            arm.metric_value,
            f"realized {arm.metric} {arm.metric_value:.4g} on {arm.outcomes:,} outcomes",
            {
                "realized": arm.metric_value,
                "metric": arm.metric,
                "outcomes": arm.outcomes,
                "interval": list(arm.metric_interval) if arm.metric_interval else None,
            },
        )
    outcomes = arm.outcomes if arm is not None else 0
    report = None if isinstance(drift_result, KeelError) else getattr(drift_result, "report", None)
    estimate = getattr(report, "estimated_performance", None)
    if matrix is None and estimate is not None and estimate.trustworthy:
        return judged(
            estimate.accuracy,
            f"estimated accuracy {estimate.accuracy:.4g} (CBPE; {outcomes:,} outcomes joined)",
            {
                "estimated": estimate.accuracy,
                "metric": "accuracy",
                "method": "cbpe",
                "interval": list(estimate.accuracy_interval),
                "outcomes": outcomes,
            },
        )
    return TriggerLook(
        "min_value",
        False,
        f"not enough to judge: {outcomes:,} outcomes joined (at least {MIN_OUTCOMES} needed)"
        + ("" if matrix is None else "; value is not estimated without outcomes"),
        {"outcomes": outcomes, "bound": bound, "version": version},
    )


def _every(ws: Workspace, model: str, champion: Any, every: float, now: float) -> TriggerLook:
    from keel.loop.state import attempts_of

    last = attempts_of(ws, model, limit=1)
    anchor = max([champion.created_at, *(a.created_at for a in last)])
    due = anchor + every
    evidence = {"since": anchor, "every": every, "due": due}
    if now < due:
        return TriggerLook("every", False, f"next due in {_span(due - now)}", evidence)
    return TriggerLook(
        "every",
        True,
        f"due: {_span(now - anchor)} since {'the last attempt' if last and last[0].created_at >= champion.created_at else f'v{champion.number} was registered'}",
        evidence,
        f"{model}|every|{int(anchor)}",
    )


def _new_data(ws: Workspace, model: str, champion: Any, dataset: str) -> TriggerLook:
    from sqlalchemy import select

    from keel.data.catalog import resolve
    from keel.loop.state import record
    from keel.store.db import loop_events

    try:
        head = resolve(ws, dataset)
    except KeelError as exc:
        return TriggerLook("new_data", False, f"dataset {dataset}: {exc}")
    trained = _trained_on(ws, champion, dataset)
    evidence: dict[str, Any] = {"dataset": dataset, "head": head.number, "version": champion.number}
    if trained is not None:
        evidence["trained_on"] = trained
        basis = f"v{champion.number} was trained on {dataset}@v{trained}"
        newer = head.number > trained
    else:
        with ws.db.read() as conn:
            row = conn.execute(
                select(loop_events.c.evidence)
                .where(
                    (loop_events.c.model == model)
                    & (loop_events.c.kind == "baseline")
                    & (loop_events.c.message == f"new_data {dataset}")
                )
                .order_by(loop_events.c.id)
                .limit(1)
            ).first()
        if row is None:  # the first look: remember the head, fire on a newer one only
            ws.db.write(
                lambda conn: record(
                    conn, model, "baseline", f"new_data {dataset}", {"dataset": dataset, "head": head.number}
                )
            )
            return TriggerLook(
                "new_data",
                False,
                f"first look: {dataset}@v{head.number} is the baseline (the lineage of "
                f"v{champion.number} does not name {dataset})",
                evidence,
            )
        seen = int(json.loads(row.evidence)["head"])
        evidence["baseline"] = seen
        basis = f"{dataset}@v{seen} was the head when the loop first looked"
        newer = head.number > seen
    if not newer:
        return TriggerLook("new_data", False, f"no newer data: {basis}, the head is v{head.number}", evidence)
    return TriggerLook(
        "new_data",
        True,
        f"new data: {dataset}@v{head.number}; {basis}",
        evidence,
        f"{model}|new_data|{dataset}@v{head.number}",
    )


def _trained_on(ws: Workspace, mv: Any, dataset: str) -> int | None:
    """The version of ``dataset`` that ``mv``'s run recorded using, if it did."""
    from keel.track.records import get_run

    if mv.run_id is None:
        return None
    for item in get_run(ws, mv.run_id).inputs:
        name, _, version = str(item.get("ref", "")).partition("@v")
        if name == dataset and version.isdecimal():
            return int(version)
    return None


def _span(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
