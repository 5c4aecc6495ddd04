"""Evaluation tied to outcomes, and the champion/challenger gate.

``keel.evaluate`` measures a model version on a dataset version: metrics from
scikit-learn, value from an outcome definition (with a bootstrap interval),
the value-maximizing threshold, and per-slice results. ``keel.gate`` decides
a promotion with a paired test and guardrails. Both are recorded, linked to
the model and data versions they judged.
"""

from __future__ import annotations

from keel.evaluation.evaluation import Evaluation, OutcomeResult, evaluate
from keel.evaluation.gate import Decision, delong, gate
from keel.evaluation.outcomes import AsymmetricCost, RowValue, ValueMatrix
from keel.evaluation.policy import Guardrail, Policy, PolicyError, load_policy
from keel.evaluation.slices import SliceError

__all__ = [
    "AsymmetricCost",
    "Decision",
    "Evaluation",
    "Guardrail",
    "OutcomeResult",
    "Policy",
    "PolicyError",
    "RowValue",
    "SliceError",
    "ValueMatrix",
    "delong",
    "evaluate",
    "gate",
    "load_policy",
]
