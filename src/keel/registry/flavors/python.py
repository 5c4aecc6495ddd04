"""Anything else: subclass ``keel.PythonModel`` and implement ``predict``.

The instance is pickled; its class must be importable where it is loaded
(define it in a module, not in a notebook cell).
"""

from __future__ import annotations

import pickle
from typing import Any

from keel.registry.flavors.contract import SavedModel, unpickle

__all__ = ["PythonFlavor", "PythonModel"]


class PythonModel:
    """Base class for a model keel cannot otherwise save: implement ``predict(inputs)``.

    >>> class Doubler(PythonModel):
    ...     def predict(self, inputs):
    ...         return [2 * x for x in inputs]
    >>> Doubler().predict([1, 2])
    [2, 4]
    """

    def predict(self, inputs: Any) -> Any:
        raise NotImplementedError("a PythonModel implements predict(inputs)")


class PythonFlavor:
    name = "python"
    package = "keel-mlops"

    def handles(self, model: Any) -> bool:
        return isinstance(model, PythonModel)

    def save(self, model: Any, example: Any | None) -> SavedModel:
        cls = type(model)
        return SavedModel(
            {"model.pkl": pickle.dumps(model, protocol=5)},
            "pickle",
            {"class": f"{cls.__module__}.{cls.__qualname__}"},
            {},
        )

    def load(self, saved: SavedModel) -> Any:
        # Verified bytes of the workspace's own object: pickle is safe to open here only.
        return unpickle(saved.files["model.pkl"])

    def predict(self, model: Any, inputs: Any) -> Any:
        return model.predict(inputs)
