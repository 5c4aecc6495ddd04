"""XGBoost Boosters, saved in XGBoost's own UBJSON format (no pickle)."""

from __future__ import annotations

from typing import Any

from keel.registry.flavors.contract import MissingFramework, SavedModel

__all__ = ["XGBoostFlavor"]


class XGBoostFlavor:
    name = "xgboost"
    package = "xgboost"

    def handles(self, model: Any) -> bool:
        return type(model).__module__.startswith("xgboost") and type(model).__name__ == "Booster"

    def save(self, model: Any, example: Any | None) -> SavedModel:
        import xgboost

        raw = bytes(model.save_raw(raw_format="ubj"))
        names = model.feature_names
        return SavedModel(
            {"model.ubj": raw},
            "xgboost-ubj",
            {"feature_names": names},
            {_distribution(): xgboost.__version__},
        )

    def load(self, saved: SavedModel) -> Any:
        try:
            import xgboost
        except ImportError:
            raise MissingFramework("XGBoost", self.package) from None
        booster = xgboost.Booster()
        booster.load_model(bytearray(saved.files["model.ubj"]))
        return booster

    def predict(self, model: Any, inputs: Any) -> Any:
        import xgboost

        return model.predict(xgboost.DMatrix(inputs))


def _distribution() -> str:
    """The distribution that installed the xgboost module: xgboost, or xgboost-cpu."""
    from importlib.metadata import packages_distributions

    names = packages_distributions().get("xgboost", [])
    return names[0] if names else "xgboost"
