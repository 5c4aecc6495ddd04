"""Deployments: a challenger meets real traffic beside the champion, under guardrails.

A deployment is an immutable record (challenger version, mode, share, sticky
key, guardrails, outcome definition); the pointer ``("deployment", model)``
names the live one, and every start, stop, promotion and guardrail rollback is
an event on it. The inference server follows the pointer; ``keel deploy
status`` judges the arms on the log lake with an always-valid sequential test.

>>> from keel.deploy import arm_for, Guardrails
>>> arm_for("customer-42", 0.5, salt="d1") == arm_for("customer-42", 0.5, salt="d1")
True
>>> Guardrails.parse({"max_error_rate": 0.01}).max_error_rate
0.01
"""

from __future__ import annotations

from keel.deploy.fields import declare_fields, declared_fields
from keel.deploy.guardrails import ArmWindow, Breach, GuardrailError, Guardrails, check
from keel.deploy.records import (
    DEPLOYMENT,
    MODES,
    Deployment,
    current_deployment,
    deployment_history,
    end_deployment,
    promote_challenger,
    routing_state,
    start_deployment,
)
from keel.deploy.routing import arm_for
from keel.deploy.sequential import SequentialTest, msprt

__all__ = [
    "DEPLOYMENT",
    "MODES",
    "ArmWindow",
    "Breach",
    "Deployment",
    "GuardrailError",
    "Guardrails",
    "SequentialTest",
    "arm_for",
    "check",
    "current_deployment",
    "declare_fields",
    "declared_fields",
    "deployment_history",
    "end_deployment",
    "msprt",
    "promote_challenger",
    "routing_state",
    "start_deployment",
]
