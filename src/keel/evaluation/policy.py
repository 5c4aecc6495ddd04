"""Gate policies: what must improve, by how much, how sure we must be, and what may not regress.

``gate.toml``::

    [primary]
    metric = "value"          # or auc, logloss, brier, accuracy, mae, rmse, mape
    min_improvement = 0.0     # in the metric's units (value: per decision)
    confidence = 0.95

    [value]                   # the value matrix, when the primary metric is value
    tp = 120.0
    fp = -15.0
    fn = -80.0
    tn = 0.0

    [[guardrails]]
    metric = "auc"
    slice = "region=north"    # optional: judged on that slice only
    max_regression = 0.02

    [bootstrap]
    resamples = 1000
    seed = 0
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput
from keel.evaluation.metrics import HIGHER_IS_BETTER
from keel.evaluation.outcomes import ValueMatrix

__all__ = ["GATE_METRICS", "WHOLE_SAMPLE", "Guardrail", "Policy", "PolicyError", "load_policy"]

# metrics that are not a mean over rows (multi-class models'): the gate compares them by a
# paired bootstrap of their difference, the same resampled rows for both models
WHOLE_SAMPLE = ("f1_macro", "f1_weighted", "precision_macro", "recall_macro", "auc_ovr")
GATE_METRICS = ("value", "auc", "logloss", "brier", "accuracy", "mae", "rmse", "mape", *WHOLE_SAMPLE)


class PolicyError(InvalidInput):
    """A policy file with an unknown key, a wrong type or an impossible value."""


@dataclass(frozen=True)
class Guardrail:
    metric: str
    max_regression: float
    slice: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "max_regression": self.max_regression, "slice": self.slice}


@dataclass(frozen=True)
class Policy:
    """The gate's rule. Without a file: the default documented in docs/evaluation.md."""

    metric: str | None = None  # None: value when a value matrix is given, else auc / rmse
    min_improvement: float = 0.0
    confidence: float = 0.95
    value: ValueMatrix | None = None
    guardrails: tuple[Guardrail, ...] = ()
    resamples: int = 1000
    seed: int = 0
    threshold: float = 0.5
    min_slice_size: int = 30
    source: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "min_improvement": self.min_improvement,
            "confidence": self.confidence,
            "value": self.value.to_dict() if self.value else None,
            "guardrails": [g.to_dict() for g in self.guardrails],
            "resamples": self.resamples,
            "seed": self.seed,
            "threshold": self.threshold,
            "min_slice_size": self.min_slice_size,
            "source": self.source,
        }


_SECTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "primary": {
        "metric": str,
        "min_improvement": (int, float),
        "confidence": (int, float),
        "threshold": (int, float),
        "min_slice_size": int,
    },
    "value": {"tp": (int, float), "fp": (int, float), "fn": (int, float), "tn": (int, float)},
    "bootstrap": {"resamples": int, "seed": int},
}
_GUARD: dict[str, type | tuple[type, ...]] = {
    "metric": str,
    "max_regression": (int, float),
    "slice": str,
}


def _check_table(
    where: str, table: Any, allowed: dict[str, type | tuple[type, ...]]
) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise PolicyError(f"policy: [{where}] must be a table")
    for key, value in table.items():
        if key not in allowed:
            raise PolicyError(
                f"policy: unknown key {where}.{key}; expected one of {', '.join(sorted(allowed))}"
            )
        expected = allowed[key]
        if isinstance(value, bool) or not isinstance(value, expected):
            names = (
                "number"
                if expected == (int, float)
                else getattr(expected, "__name__", str(expected))
            )
            raise PolicyError(f"policy: {where}.{key} must be a {names}, not {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise PolicyError(f"policy: {where}.{key} must be a finite number, not {value!r}")
    return table


def _check_metric(metric: str, where: str) -> str:
    if metric not in GATE_METRICS:
        raise PolicyError(
            f"policy: {where} {metric!r} is not a gate metric; expected one of {', '.join(GATE_METRICS)}"
        )
    return metric


def load_policy(source: str | Path | dict[str, Any] | Policy | None) -> Policy:
    """A Policy from a TOML file path, a dict of the same shape, a Policy, or None (the default)."""
    if source is None:
        return Policy()
    if isinstance(source, Policy):
        return source
    where = "dict"
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise PolicyError(f"policy file {path} does not exist")
        try:
            doc = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy file {path} is not valid TOML: {exc}") from None
        where = str(path)
    else:
        doc = dict(source)
    unknown = set(doc) - {"primary", "value", "bootstrap", "guardrails"}
    if unknown:
        raise PolicyError(
            f"policy: unknown section {sorted(unknown)[0]!r}; expected primary, value, guardrails, bootstrap"
        )
    primary = _check_table("primary", doc.get("primary", {}), _SECTIONS["primary"])
    boot = _check_table("bootstrap", doc.get("bootstrap", {}), _SECTIONS["bootstrap"])
    value = None
    if "value" in doc:
        cells = _check_table("value", doc["value"], _SECTIONS["value"])
        value = ValueMatrix.from_dict(cells)
    guards = []
    raw_guards = doc.get("guardrails", [])
    if not isinstance(raw_guards, list):
        raise PolicyError("policy: guardrails must be an array of tables ([[guardrails]])")
    for i, g in enumerate(raw_guards):
        table = _check_table(f"guardrails[{i}]", g, _GUARD)
        if "metric" not in table or "max_regression" not in table:
            raise PolicyError(f"policy: guardrails[{i}] needs metric and max_regression")
        if table["max_regression"] < 0:
            raise PolicyError(f"policy: guardrails[{i}].max_regression must be 0 or more")
        metric = table["metric"]
        if metric not in HIGHER_IS_BETTER:
            raise PolicyError(f"policy: guardrails[{i}].metric {metric!r} is not a known metric")
        guards.append(Guardrail(metric, float(table["max_regression"]), table.get("slice")))
    confidence = float(primary.get("confidence", 0.95))
    if not 0.5 <= confidence < 1:
        raise PolicyError(
            f"policy: primary.confidence must be at least 0.5 and below 1, not {confidence}"
        )
    resamples = int(boot.get("resamples", 1000))
    if not 100 <= resamples <= 100_000:
        raise PolicyError(
            f"policy: bootstrap.resamples must be from 100 to 100000, not {resamples}"
        )
    threshold = float(primary.get("threshold", 0.5))
    if not 0 <= threshold <= 1:
        raise PolicyError(f"policy: primary.threshold must be from 0 to 1, not {threshold}")
    metric = primary.get("metric")
    return Policy(
        metric=_check_metric(metric, "primary.metric") if metric is not None else None,
        min_improvement=float(primary.get("min_improvement", 0.0)),
        confidence=confidence,
        value=value,
        guardrails=tuple(guards),
        resamples=resamples,
        seed=int(boot.get("seed", 0)),
        threshold=threshold,
        min_slice_size=int(primary.get("min_slice_size", 30)),
        source=where,
    )
