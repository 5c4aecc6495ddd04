"""LightGBM Boosters, saved in LightGBM's own text format (no pickle)."""

from __future__ import annotations

from typing import Any

from keel.registry.flavors.contract import MissingFramework, SavedModel

__all__ = ["LightGBMFlavor"]


class LightGBMFlavor:
    name = "lightgbm"
    package = "lightgbm"

    def handles(self, model: Any) -> bool:
        return type(model).__module__.startswith("lightgbm") and type(model).__name__ == "Booster"

    def save(self, model: Any, example: Any | None) -> SavedModel:
        import lightgbm

        text = model.model_to_string()
        return SavedModel(
            {"model.txt": text.encode()}, "lightgbm-text", {}, {"lightgbm": lightgbm.__version__}
        )

    def load(self, saved: SavedModel) -> Any:
        try:
            import lightgbm
        except ImportError:
            raise MissingFramework("LightGBM", self.package) from None
        return lightgbm.Booster(model_str=saved.files["model.txt"].decode())

    def predict(self, model: Any, inputs: Any) -> Any:
        return model.predict(inputs)
