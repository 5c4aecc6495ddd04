"""Drift and performance monitoring: is the model still seeing the world it learned?

``keel.monitor.drift(reference, current)`` judges a current table against a
reference (a table, a dataset version's stored profile, or a model version's
training data through lineage): per-column drift from detectors that share one
contract, multivariate drift (a domain classifier, PCA reconstruction),
prediction and target drift, realized performance with change detection on
the error stream, and label-free performance estimation (CBPE). The
:class:`DriftReport` explains its decision rule, renders as HTML and JSON, and
is recorded, linked to what it judged. ``keel.monitor.check(model)`` judges the
served model's recent traffic, read from the log lake, against its training
data; ``watch`` repeats it and sends alerts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Eager: ``keel.monitor.drift`` is both a module and this function, and the function wins only
# when it is bound after the module is imported. The rest load on first use, so `keel drift`
# does not import what only `keel monitor` needs (the log lake, webhooks).
from keel.monitor.categorical import ChiSquare, NewCategories
from keel.monitor.cbpe import EstimatedPerformance, estimate_performance
from keel.monitor.concept import ADWIN, ChangeDetector, ConceptDrift, PageHinkley
from keel.monitor.decision import DecisionRule
from keel.monitor.detector import Detector, Score
from keel.monitor.drift import drift
from keel.monitor.feature import FeatureDrift
from keel.monitor.jensen_shannon import JensenShannon
from keel.monitor.missing import MissingRate
from keel.monitor.multivariate import MultivariateDrift
from keel.monitor.numeric import PSI, KolmogorovSmirnov, Wasserstein
from keel.monitor.report import DriftReport
from keel.monitor.schema import SchemaFinding

if TYPE_CHECKING:
    from keel.monitor.alerts import Alerter, Delivery
    from keel.monitor.findings import AlertState
    from keel.monitor.live import MonitorResult, check, watch
    from keel.monitor.window import Window, read_window

_LAZY = {
    "AlertState": "keel.monitor.findings",
    "Alerter": "keel.monitor.alerts",
    "Delivery": "keel.monitor.alerts",
    "MonitorResult": "keel.monitor.live",
    "check": "keel.monitor.live",
    "watch": "keel.monitor.live",
    "Window": "keel.monitor.window",
    "read_window": "keel.monitor.window",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keel.monitor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ADWIN",
    "PSI",
    "AlertState",
    "Alerter",
    "ChangeDetector",
    "ChiSquare",
    "ConceptDrift",
    "DecisionRule",
    "Delivery",
    "Detector",
    "DriftReport",
    "EstimatedPerformance",
    "FeatureDrift",
    "JensenShannon",
    "KolmogorovSmirnov",
    "MissingRate",
    "MonitorResult",
    "MultivariateDrift",
    "NewCategories",
    "PageHinkley",
    "SchemaFinding",
    "Score",
    "Wasserstein",
    "Window",
    "check",
    "drift",
    "estimate_performance",
    "read_window",
    "watch",
]
