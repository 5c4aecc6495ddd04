"""Online evaluation: predictions joined to the outcomes that arrived, judged per version and arm.

The same metric definitions (:func:`keel.evaluation.metrics.compute_metrics`)
and the same outcome definitions (:class:`ValueMatrix`, :class:`AsymmetricCost`)
as offline evaluation, so the offline and online numbers of a version can be
put side by side and their gap read off.

Outcomes are deduplicated by prediction id, the first received winning, so a
retried or repeated feedback call is never counted twice; an outcome whose
prediction id was never logged joins nothing and is counted as unmatched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.evaluation.proportion import wilson

if TYPE_CHECKING:
    import pandas as pd

    from keel.evaluation.outcomes import Outcome
    from keel.workspace import Workspace

__all__ = [
    "ArmResult",
    "OnlineResult",
    "arm_utilities",
    "join",
    "offline_threshold",
    "online_results",
    "outcome_from_dict",
    "threshold_of",
]

# One row per served or shadow prediction; outcomes deduplicated, first received wins.
_JOIN = """
WITH p AS (
    SELECT * EXCLUDE (rn) FROM (
        SELECT *, row_number() OVER (PARTITION BY prediction_id, served ORDER BY ts) AS rn
        FROM preds WHERE prediction_id IS NOT NULL
    ) WHERE rn = 1
),
o AS (
    SELECT prediction_id, outcome, outcome_label, ts AS outcome_ts FROM (
        SELECT *, row_number() OVER (PARTITION BY prediction_id ORDER BY ts) AS rn FROM outs
    ) WHERE rn = 1
)
SELECT p.*, o.outcome, o.outcome_label, o.outcome_ts
FROM p {how} JOIN o USING (prediction_id)
"""


def _relations(ws: Workspace, model: str, since: float | None) -> tuple[Any, Any, Any] | None:
    import duckdb

    db = duckdb.connect()
    preds = ws.logs.scan("predictions", model, since, conn=db)
    if preds is None:
        return None
    outs = ws.logs.scan("outcomes", model, since, conn=db)
    if outs is None:
        outs = db.sql(
            "SELECT NULL::VARCHAR AS prediction_id, NULL::DOUBLE AS outcome, "
            "NULL::VARCHAR AS outcome_label, NULL::TIMESTAMPTZ AS ts WHERE false"
        )
    elif "outcome_label" not in outs.columns:
        outs = outs.project("*, NULL::VARCHAR AS outcome_label")
    elif "outcome" not in outs.columns:
        outs = outs.project("*, NULL::DOUBLE AS outcome")
    for col, kind in (("label", "VARCHAR"), ("score", "DOUBLE"), ("prediction", "DOUBLE")):
        if col not in preds.columns:
            preds = preds.project(f"*, NULL::{kind} AS {col}")
    return db, preds, outs


def join(
    model: str,
    *,
    since: float | str | None = None,
    workspace: Workspace | None = None,
    how: str = "inner",
) -> pd.DataFrame:
    """Logged predictions of ``model`` with their outcomes (``how="left"`` keeps those without).

    >>> # keel.outcomes.join("churn", since="1d")[["prediction_id", "prediction", "outcome"]]
    """
    import pandas as pd

    from keel.errors import InvalidInput
    from keel.store.logs import parse_since
    from keel.workspace import connect

    if how not in ("inner", "left"):
        raise InvalidInput(f"invalid join {how!r}: expected 'inner' or 'left'")
    ws = workspace or connect()
    start = parse_since(since) if isinstance(since, str) else since
    found = _relations(ws, model, start)
    if found is None:
        return pd.DataFrame()
    db, preds, outs = found
    db.register("preds", preds)
    db.register("outs", outs)
    return db.sql(_JOIN.format(how=how.upper())).df()


def outcome_from_dict(doc: dict[str, Any] | None) -> Outcome | None:
    """The outcome definition a deployment recorded (``to_dict`` of a ValueMatrix or AsymmetricCost)."""
    from keel.evaluation.outcomes import AsymmetricCost, ValueMatrix

    if not doc:
        return None
    kind = doc.get("type")
    if kind == "value_matrix":
        return ValueMatrix.from_dict(doc)
    if kind == "asymmetric_cost":
        return AsymmetricCost(under=float(doc["under"]), over=float(doc["over"]))
    return None


@dataclass
class ArmResult:
    """What one model version did in one arm: traffic, errors, latency and, once outcomes
    arrive, its metrics and value with intervals."""

    version: int
    arm: str
    served: bool
    requests: int
    predictions: int
    errors: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    outcomes: int = 0
    metrics: dict[str, float | None] = field(default_factory=dict)
    metric: str | None = None  # the headline: value per prediction, accuracy or mae
    metric_value: float | None = None
    metric_interval: tuple[float, float] | None = None
    value_total: float | None = None
    # The cut applied to logged scores: the version's newest offline evaluation's, so the online
    # and offline numbers are at one threshold; None when the model's own labels were used.
    threshold: float | None = None
    top_error: str | None = None  # the most frequent error of the arm's failed requests
    utilities: Any = field(default=None, repr=False)  # per-row value / correctness, for the test

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "arm": self.arm,
            "served": self.served,
            "requests": self.requests,
            "predictions": self.predictions,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "top_error": self.top_error,
            "latency_ms": {"p50": self.latency_p50_ms, "p99": self.latency_p99_ms},
            "outcomes": self.outcomes,
            "metric": self.metric,
            "value": self.metric_value,
            "interval": list(self.metric_interval) if self.metric_interval else None,
            "value_total": self.value_total,
            "threshold": self.threshold,
            "metrics": self.metrics,
        }


@dataclass
class OnlineResult:
    arms: list[ArmResult]
    unmatched_outcomes: int
    duplicate_outcomes: int

    def arm(self, name: str) -> ArmResult | None:
        return next((a for a in self.arms if a.arm == name), None)


_TRAFFIC = """
SELECT version, arm, served,
       count(DISTINCT request_id) AS requests,
       count(prediction_id) AS predictions,
       count(DISTINCT CASE WHEN error IS NOT NULL THEN request_id END) AS errors,
       quantile_cont(latency_ms, 0.5) AS p50,
       quantile_cont(latency_ms, 0.99) AS p99,
       mode(error) AS top_error
FROM preds GROUP BY ALL ORDER BY served DESC, arm
"""


def online_results(
    ws: Workspace,
    model: str,
    *,
    since: float | None = None,
    outcome: Outcome | None = None,
    confidence: float = 0.95,
    offline: Callable[[int], dict[str, Any] | None] | None = None,
) -> OnlineResult:
    """Per (version, arm): traffic and latency from the log, metrics and value from the outcomes.

    ``offline`` gives a version's newest offline evaluation (whose threshold the online
    decisions are taken at): a caller that shows that evaluation too passes its own, so
    it is read once."""
    import numpy as np

    from keel.evaluation.records import newest_evaluation

    evaluation_of = offline or (lambda version: newest_evaluation(ws, model, version))

    found = _relations(ws, model, since)
    if found is None:
        return OnlineResult([], 0, 0)
    db, preds, outs = found
    db.register("preds", preds)
    db.register("outs", outs)
    arms: list[ArmResult] = []
    for version, arm, served, requests, npred, errors, p50, p99, top in db.sql(
        _TRAFFIC
    ).fetchall():
        arms.append(
            ArmResult(
                int(version),
                str(arm),
                bool(served),
                int(requests),
                int(npred),
                int(errors),
                _num(p50),
                _num(p99),
                top_error=str(top) if top is not None else None,
            )
        )
    joined = db.sql(_JOIN.format(how="INNER")).df()
    counts = db.sql(
        "SELECT count(*), count(DISTINCT prediction_id), "
        "count(DISTINCT prediction_id) FILTER (WHERE prediction_id NOT IN "
        "(SELECT prediction_id FROM preds WHERE prediction_id IS NOT NULL)) FROM outs"
    ).fetchall()[0]
    total, distinct, unmatched = (int(c or 0) for c in (counts or (0, 0, 0)))
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    cuts: dict[int, float | None] = {}
    for result in arms:
        rows = joined[(joined["version"] == result.version) & (joined["arm"] == result.arm)]
        rows = rows[rows["served"] == result.served]
        result.outcomes = len(rows)
        if not len(rows):
            continue
        if result.version not in cuts:
            cuts[result.version] = threshold_of(evaluation_of(result.version))
        utilities, name, metrics, value_total, used = arm_utilities(
            rows, outcome, cuts[result.version]
        )
        result.metrics, result.metric, result.utilities = metrics, name, utilities
        result.value_total, result.threshold = value_total, used
        u = np.asarray(utilities, dtype=float)
        mean = float(u.mean())
        if name == "accuracy":  # a proportion: an interval inside [0, 1]
            result.metric_value, result.metric_interval = mean, wilson(float(u.sum()), len(u), z)
        else:
            half = z * float(u.std(ddof=1)) / math.sqrt(len(u)) if len(u) > 1 else math.inf
            result.metric_value, result.metric_interval = mean, (mean - half, mean + half)
    return OnlineResult(arms, unmatched, total - distinct)


def offline_threshold(ws: Workspace, model: str, version: int) -> float | None:
    """The decision threshold of the newest offline evaluation of ``model/v{version}``."""
    from keel.evaluation.records import newest_evaluation

    return threshold_of(newest_evaluation(ws, model, version))


def threshold_of(evaluation: dict[str, Any] | None) -> float | None:
    """The decision threshold an offline evaluation record chose, if any."""
    cut = evaluation["summary"].get("threshold") if evaluation is not None else None
    return float(cut) if isinstance(cut, int | float) else None


def arm_utilities(
    rows: pd.DataFrame, outcome: Outcome | None, threshold: float | None = None
) -> tuple[Any, str, dict[str, float | None], float | None, float | None]:
    """Per-row utility (value, else correctness, else negative absolute error), its name,
    the standard metrics, the total value, and the threshold the decisions were taken at.

    With ``threshold`` and a score logged for every row of a 0/1 classifier, the decisions
    are ``score >= threshold`` (as offline); otherwise the model's own labels."""
    import numpy as np

    from keel.evaluation.metrics import compute_metrics

    labels = rows["label"].notna().any() or rows["outcome_label"].notna().any()
    if labels:
        predicted = rows["label"].astype(str).to_numpy()
        truth = rows["outcome_label"].fillna(rows["outcome"].astype(str)).astype(str).to_numpy()
        correct = (predicted == truth).astype(float)
        return correct, "accuracy", {"accuracy": float(correct.mean())}, None, None
    predicted = rows["prediction"].to_numpy(dtype=float)
    truth = rows["outcome"].to_numpy(dtype=float)
    scores = rows["score"].to_numpy(dtype=float) if rows["score"].notna().all() else None
    binary = set(np.unique(truth).tolist()) <= {0.0, 1.0} and set(
        np.unique(predicted).tolist()
    ) <= {0.0, 1.0}
    kind = getattr(outcome, "kind", None)
    task = (
        "classification"
        if (kind == "classification" or (kind is None and binary))
        else "regression"
    )
    used = None
    if task == "classification" and threshold is not None and scores is not None:
        predicted, used = (scores >= threshold).astype(float), float(threshold)
    metrics = compute_metrics(task, truth, predicted, scores)
    from keel.errors import InvalidInput
    from keel.evaluation.outcomes import ClassValueMatrix

    if isinstance(outcome, ClassValueMatrix):
        raise InvalidInput(
            "online evaluation takes a binary value matrix (tp, fp, fn, tn) or a cost; a value "
            "matrix over classes is for keel evaluate and keel gate"
        )
    if outcome is not None and hasattr(outcome, "per_row"):
        per_row = np.asarray(outcome.per_row(predicted, truth), dtype=float)
        return per_row, "value per prediction", metrics, float(per_row.sum()), used
    if task == "classification":
        return (predicted == truth).astype(float), "accuracy", metrics, None, used
    return -np.abs(predicted - truth), "negative absolute error", metrics, None, None


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
