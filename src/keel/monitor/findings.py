"""Alerts that start, repeat and resolve, as Alertmanager's do.

A check's *findings* are what it found wrong, each with a stable id: a drifted column
(``churn/drift/tenure``), the prediction or the target drifting, the multivariate check,
a schema break (``churn/schema``). :class:`AlertState` remembers which findings are
firing. A finding fires when it first appears, fires again at most once per
``realert`` interval while it lasts, and is ``resolved`` at the first check that no
longer finds it. A check that could not judge (not enough data, or it failed) changes
nothing: a finding is resolved by evidence, not by silence.

>>> state = AlertState(realert=3600)
>>> [a["status"] for a in state.update({"m/drift/x": {"text": "x drifted"}}, now=0)]
['firing']
>>> state.update({"m/drift/x": {"text": "x drifted"}}, now=60)
[]
>>> [(a["id"], a["status"]) for a in state.update({}, now=120)]
[('m/drift/x', 'resolved')]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.monitor.report import DriftReport

__all__ = ["DEFAULT_REALERT", "AlertState", "findings_of"]

DEFAULT_REALERT = 24 * 3600.0


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def findings_of(model: str, report: DriftReport) -> dict[str, dict[str, Any]]:
    """What ``report`` found wrong, by finding id: each with its kind, column and sentence."""
    found: dict[str, dict[str, Any]] = {}
    if report.schema_broken:
        found[f"{model}/schema"] = {
            "finding": "schema",
            "column": None,
            "columns": report.schema.broken,
            "text": f"schema: {report.schema.sentence()}",
        }
    columns = [*report.features.values()]
    columns += [f for f in (report.prediction, report.target) if f is not None]
    for f in columns:
        if f.drifted:
            found[f"{model}/drift/{f.name}"] = {
                "finding": "drift",
                "column": f.name,
                "role": f.role,
                "statistic": f.statistic,
                "threshold": f.threshold,
                "p_value": f.p_value,
                "text": f"{f.describe()} drifted: {'; '.join(f.reasons)}",
            }
    mv = report.multivariate
    if mv is not None and mv.drifted:
        found[f"{model}/multivariate"] = {
            "finding": "multivariate",
            "column": None,
            "auc": mv.auc,
            "text": "multivariate: " + "; ".join(mv.reasons()),
        }
    return found


@dataclass
class AlertState:
    """The findings now firing, when each started and when it was last sent."""

    realert: float = DEFAULT_REALERT
    firing: dict[str, dict[str, Any]] = field(default_factory=dict)

    def update(self, found: dict[str, dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """The alerts one check's findings call for: ``firing`` for a finding that is new or
        was last sent ``realert`` seconds ago or more, ``resolved`` for one that ended."""
        out: list[dict[str, Any]] = []
        for fid, info in found.items():
            known = self.firing.get(fid)
            if known is None:
                known = self.firing[fid] = {"started": now, "sent": now, "info": info}
                repeat = False
            elif now - known["sent"] >= self.realert:
                known.update(sent=now, info=info)
                repeat = True
            else:
                known["info"] = info  # the latest figures, for when it resolves
                continue
            out.append(
                {
                    "id": fid,
                    "status": "firing",
                    "repeat": repeat,
                    "started_at": _iso(known["started"]),
                    **info,
                }
            )
        for fid in [f for f in self.firing if f not in found]:
            known = self.firing.pop(fid)
            out.append(
                {
                    "id": fid,
                    "status": "resolved",
                    "started_at": _iso(known["started"]),
                    "ended_at": _iso(now),
                    **known["info"],
                }
            )
        return out
