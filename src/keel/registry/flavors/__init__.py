"""Model flavors: one module per framework, one contract (:class:`Flavor`).

Order matters: the first flavor that handles a model saves it. Framework
imports happen only inside a flavor, when it is used.
"""

from __future__ import annotations

from typing import Any

from keel.errors import InvalidInput
from keel.registry.flavors.contract import Flavor, MissingFramework, SavedModel
from keel.registry.flavors.lightgbm import LightGBMFlavor
from keel.registry.flavors.onnx import OnnxFlavor
from keel.registry.flavors.python import PythonFlavor, PythonModel
from keel.registry.flavors.sklearn import SklearnFlavor
from keel.registry.flavors.xgboost import XGBoostFlavor

__all__ = [
    "FLAVORS",
    "Flavor",
    "MissingFramework",
    "PythonModel",
    "SavedModel",
    "flavor_for",
    "get_flavor",
]

FLAVORS: tuple[Flavor, ...] = (
    PythonFlavor(),
    LightGBMFlavor(),
    XGBoostFlavor(),
    OnnxFlavor(),
    SklearnFlavor(),
)


def get_flavor(name: str) -> Flavor:
    for flavor in FLAVORS:
        if flavor.name == name:
            return flavor
    known = ", ".join(f.name for f in FLAVORS)
    raise InvalidInput(f"unknown model flavor {name!r}: expected one of {known}")


def flavor_for(model: Any, name: str | None = None) -> Flavor:
    """The flavor that saves ``model`` (or the one named)."""
    if name is not None:
        return get_flavor(name)
    for flavor in FLAVORS:
        if flavor.handles(model):
            return flavor
    raise InvalidInput(
        f"keel cannot save a {type(model).__module__}.{type(model).__name__}: expected a "
        "scikit-learn estimator, a LightGBM or XGBoost Booster, an ONNX ModelProto, or a "
        "keel.PythonModel subclass"
    )
