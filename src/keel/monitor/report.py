"""The result of :func:`keel.monitor.drift`: what drifted, how much, and why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from keel.monitor.cbpe import EstimatedPerformance
from keel.monitor.concept import ConceptDrift
from keel.monitor.decision import DecisionRule
from keel.monitor.feature import FeatureDrift
from keel.monitor.multivariate import MultivariateDrift
from keel.monitor.schema import SchemaFinding

__all__ = ["DriftReport"]


@dataclass
class DriftReport:
    """Per-column verdicts, multivariate drift, performance, and the rule that decided."""

    id: str
    reference: str
    current: str
    rows: tuple[int, int]
    features: dict[str, FeatureDrift]
    rule: DecisionRule
    tests: int = 0
    target: FeatureDrift | None = None
    prediction: FeatureDrift | None = None
    multivariate: MultivariateDrift | None = None
    performance: ConceptDrift | None = None
    estimated_performance: EstimatedPerformance | None = None
    reference_only: list[str] = field(default_factory=list)
    current_only: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    schema: SchemaFinding = field(default_factory=SchemaFinding)
    # the chunks of the current table judged by the same rule, and the flags noise would give
    over_time: dict[str, Any] | None = None
    model: str | None = None
    dataset: str | None = None
    created_at: float = 0.0
    seconds: float = 0.0
    record_id: str | None = None

    @property
    def drifted_features(self) -> list[str]:
        """Names of the features that drifted, the largest effect first."""
        hits = [f for f in self.features.values() if f.drifted]
        return [f.name for f in sorted(hits, key=lambda f: -(f.statistic or 0.0))]

    @property
    def drifted(self) -> bool:
        """Drift anywhere: a feature, the prediction, the target, or the joint distribution."""
        return bool(
            self.drifted_features
            or (self.target is not None and self.target.drifted)
            or (self.prediction is not None and self.prediction.drifted)
            or (self.multivariate is not None and self.multivariate.drifted)
        )

    @property
    def schema_broken(self) -> bool:
        """A column the model needs is missing or of another type: the pipeline changed."""
        return bool(self.schema.broken)

    @property
    def exit_code(self) -> int:
        """What ``keel drift`` exits with: 1 on drift or a schema break, else 0."""
        return 1 if self.drifted or self.schema_broken else 0

    @property
    def status(self) -> str:
        """``schema`` (a break, whatever else), ``drift``, ``no drift`` or ``not enough data``."""
        if self.schema_broken:
            return "schema"
        if self.drifted:
            return "drift"
        judged = [f for f in self._all() if f.status not in ("not enough data", "empty")]
        return "no drift" if judged else "not enough data"

    def _all(self) -> list[FeatureDrift]:
        extra = [f for f in (self.target, self.prediction) if f is not None]
        return [*self.features.values(), *extra]

    def findings(self) -> list[str]:
        """Each thing that tripped, in words, the schema first; empty when nothing did."""
        out = []
        if self.schema_broken:
            out.append(f"schema: {self.schema.sentence()}")
        for f in (self.prediction, self.target):
            if f is not None and f.drifted:
                out.append(f"{f.describe()} drifted: {'; '.join(f.reasons)}")
        if self.multivariate is not None and self.multivariate.drifted:
            out.append("multivariate: " + "; ".join(self.multivariate.reasons()))
        return out

    def headline(self) -> str:
        """One line that says what tripped: ``DRIFT: 0 of 31 features drifted; multivariate:
        domain classifier AUC 0.663 (0.632-0.694)``."""
        drifted = self.drifted_features
        named = f" ({', '.join(drifted[:8])}{', ...' if len(drifted) > 8 else ''})" if drifted else ""
        features = f"{len(drifted)} of {len(self.features)} features drifted{named}"
        found = self.findings()
        # A break leads (it is why the status is SCHEMA); a harmless change comes last.
        if self.schema_broken:  # "SCHEMA: inputs bmi, s1 missing ..."
            parts = [found[0].removeprefix("schema: "), features, *found[1:]]
        else:  # a harmless schema change tripped nothing: the details say it
            parts = [features, *found]
        return f"{self.status.upper()}: " + "; ".join(parts)

    def explanation(self) -> str:
        """The decision rule, in words."""
        return self.rule.explain().replace("{tests}", str(self.tests))

    def summary(self) -> dict[str, Any]:
        """The headline: status, what drifted, the largest effects."""
        return {
            "status": self.status,
            "drifted": self.drifted,
            "drifted_features": self.drifted_features,
            "feature_count": len(self.features),
            "target_drifted": self.target.drifted if self.target else None,
            "prediction_drifted": self.prediction.drifted if self.prediction else None,
            "multivariate_auc": self.multivariate.auc if self.multivariate else None,
            "estimated_accuracy": (
                self.estimated_performance.accuracy if self.estimated_performance else None
            ),
            "concept_drift_at": self.performance.first_detection if self.performance else None,
            "schema_broken": self.schema.broken,
            "headline": self.headline(),
            "findings": self.findings(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reference": self.reference,
            "current": self.current,
            "rows": {"reference": self.rows[0], "current": self.rows[1]},
            "created_at": dt.datetime.fromtimestamp(self.created_at, dt.UTC).isoformat(),
            "seconds": self.seconds,
            "model": self.model,
            "dataset": self.dataset,
            "record": self.record_id,
            **self.summary(),
            "rule": {**self.rule.to_dict(), "tests": self.tests, "text": self.explanation()},
            "columns": {"reference_only": self.reference_only, "current_only": self.current_only},
            "schema": self.schema.to_dict(),
            "features": {k: f.to_dict() for k, f in self.features.items()},
            "over_time": self.over_time,
            "target": self.target.to_dict() if self.target else None,
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "multivariate": self.multivariate.to_dict() if self.multivariate else None,
            "performance": self.performance.to_dict() if self.performance else None,
            "estimated_performance": (
                self.estimated_performance.to_dict() if self.estimated_performance else None
            ),
            "notes": self.notes,
        }
