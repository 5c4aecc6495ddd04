"""Judging a deployment's guardrails from the log lake, from outside the servers.

``keel deploy watch`` is for fleets whose servers each see a slice of the
traffic (or to judge with the whole picture): it rebuilds each arm's window
from the logged predictions since the deployment started and applies the same
:func:`keel.deploy.guardrails.check` the servers apply to their own windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.deploy.guardrails import ArmWindow, Breach, check
from keel.deploy.records import Deployment, current_deployment, end_deployment

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["Verdict", "judge"]

_WINDOW = 5000


@dataclass
class Verdict:
    deployment: Deployment | None
    breaches: list[Breach]
    rolled_back: bool
    requests: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment.to_dict() if self.deployment else None,
            "breaches": [b.to_dict() for b in self.breaches],
            "rolled_back": self.rolled_back,
            "requests": self.requests,
        }


def _windows(ws: Workspace, dep: Deployment) -> dict[str, ArmWindow]:
    windows = {"champion": ArmWindow(_WINDOW), "challenger": ArmWindow(_WINDOW)}
    rel = ws.logs.scan("predictions", dep.model, dep.created_at)
    if rel is None:
        return windows
    cols = set(rel.columns)
    value = "coalesce(score, prediction)" if {"score", "prediction"} <= cols else "NULL"
    label = "label" if "label" in cols else "NULL"
    result = rel.query(
        "preds",
        f"""SELECT arm, request_id, any_value(latency_ms), bool_or(error IS NOT NULL),
                   list({value}) FILTER (WHERE error IS NULL), list({label}) FILTER (WHERE error IS NULL)
            FROM preds WHERE deployment = '{dep.id}'
            GROUP BY arm, request_id ORDER BY min(ts)""",
    )
    assert result is not None
    rows = result.fetchall()
    for arm, _rid, latency, failed, values, labels in rows:
        window = windows.get(str(arm))
        if window is None:
            continue
        if failed:
            window.record(latency_ms=float(latency), error=True, prediction=None)
        else:
            shown = [v for v in (labels or []) if v is not None] or [
                v for v in (values or []) if v is not None
            ]
            window.record_many(float(latency), shown)
    return windows


def judge(ws: Workspace, model: str, *, act: bool = True) -> Verdict:
    """Check the live deployment's guardrails on everything logged since it started; with
    ``act``, end it (an event that says why) when one is breached."""
    from keel.deploy.status import outcome_test

    dep = current_deployment(ws, model)
    if dep is None:
        return Verdict(None, [], False, {})
    windows = _windows(ws, dep)
    interval = None
    if dep.guardrails.min_outcome_delta is not None:
        test = outcome_test(ws, dep)
        interval = test.interval if test is not None else None
    breaches = check(dep.guardrails, windows["champion"], windows["challenger"], interval)
    rolled = False
    if breaches and act:
        why = "; ".join(b.message for b in breaches)
        rolled = (
            end_deployment(ws, model, action="rollback", message=f"guardrail: {why}", only=dep.id)
            is not None
        )
    return Verdict(dep, breaches, rolled, {k: w.requests for k, w in windows.items()})
