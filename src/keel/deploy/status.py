"""How a deployment is doing, from the log lake: traffic, errors, latency and outcomes per arm,
the online metric beside the offline one, and the always-valid test between the arms."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from keel.deploy.records import current_deployment, deployment_history
from keel.deploy.sequential import SequentialTest, msprt

if TYPE_CHECKING:
    from keel.deploy.records import Deployment
    from keel.evaluation.outcomes import Outcome
    from keel.workspace import Workspace

__all__ = ["deployment_status", "outcome_test"]


def _pair(result: Any, dep: Deployment) -> tuple[Any, Any]:
    """The champion's served arm and the challenger's arm (served, or shadow) of a deployment."""
    champion = next((a for a in result.arms if a.arm == "champion" and a.served), None)
    challenger = next(
        (a for a in result.arms if a.arm == "challenger" and a.version == dep.challenger), None
    )
    return champion, challenger


def outcome_test(
    ws: Workspace, dep: Deployment, outcome: Outcome | None = None
) -> SequentialTest | None:
    """The mSPRT of challenger minus champion on the online outcome metric, since the start."""
    from keel.evaluation.online import online_results, outcome_from_dict

    result = online_results(
        ws, dep.model, since=dep.created_at, outcome=outcome or outcome_from_dict(dep.outcome)
    )
    champion, challenger = _pair(result, dep)
    if (
        champion is None
        or challenger is None
        or champion.utilities is None
        or challenger.utilities is None
    ):
        return None
    return msprt(champion.utilities, challenger.utilities)


def _offline(evaluation: dict[str, Any] | None) -> dict[str, Any] | None:
    """An offline evaluation record's metrics and value, to set beside online."""
    if evaluation is None:
        return None
    summary = evaluation["summary"]
    return {
        "evaluation": evaluation["id"],
        "metrics": summary.get("metrics"),
        "value": summary.get("outcome"),
        "data": summary.get("data"),
    }


def deployment_status(
    ws: Workspace,
    model: str,
    *,
    since: float | None = None,
    outcome: Outcome | None = None,
    alias: str = "champion",
) -> dict[str, Any]:
    """Everything ``keel deploy status`` shows, as a JSON-ready dict."""
    from keel.evaluation.online import online_results, outcome_from_dict
    from keel.evaluation.records import newest_evaluation
    from keel.registry.versions import model_aliases

    with ws.db.read() as conn:
        aliases = model_aliases(conn, model)
    dep = current_deployment(ws, model)
    start = since if since is not None else (dep.created_at if dep is not None else None)
    judged = outcome or (outcome_from_dict(dep.outcome) if dep is not None else None)
    # Each version's newest offline evaluation, read once: its threshold takes the online
    # decisions, its metrics stand beside the online ones.
    offline = functools.cache(lambda version: newest_evaluation(ws, model, version))
    result = online_results(ws, model, since=start, outcome=judged, offline=offline)
    arms = []
    for arm in result.arms:
        doc = arm.to_dict()
        doc["ref"] = f"{model}/v{arm.version}"
        doc["offline"] = _offline(offline(arm.version))
        if doc["offline"] and arm.metric in ("accuracy",) and doc["offline"]["metrics"]:
            off = doc["offline"]["metrics"].get("accuracy")
            doc["online_minus_offline"] = (
                None if off is None or arm.metric_value is None else arm.metric_value - off
            )
        arms.append(doc)
    test = None
    if dep is not None:
        champion, challenger = _pair(result, dep)
        if (
            champion is not None
            and challenger is not None
            and champion.utilities is not None
            and challenger.utilities is not None
        ):
            test = msprt(champion.utilities, challenger.utilities).to_dict()
            test["metric"] = champion.metric
    return {
        "model": model,
        "champion": f"{model}/v{aliases[alias]}" if alias in aliases else None,
        "deployment": dep.to_dict() if dep is not None else None,
        "since": start,
        "arms": arms,
        "test": test,
        "outcomes": {
            "unmatched": result.unmatched_outcomes,
            "duplicates_ignored": result.duplicate_outcomes,
        },
        "events": [
            {
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "deployment": e.to_target or e.from_target,
                "message": e.message,
            }
            for e in deployment_history(ws, model, limit=20)
        ],
    }
