"""scikit-learn estimators and Pipelines (and anything with their API: LGBMClassifier, XGBRegressor…).

Saved with skops when the model round-trips through it (same predictions on
the example), else with pickle. skops records the types it will rebuild; on
load only those types are trusted, and only after the bytes were verified.
"""

from __future__ import annotations

import pickle
from typing import Any

from keel.registry.flavors.contract import MissingFramework, SavedModel, unpickle

__all__ = ["SklearnFlavor"]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("scikit-learn", "skops", "numpy", "lightgbm", "xgboost", "xgboost-cpu"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


class SklearnFlavor:
    name = "sklearn"
    package = "scikit-learn"
    # skops imports every estimator module to start: keel keeps what it rebuilt (see loading)
    cached_formats = ("skops",)

    def warm(self) -> None:
        """Import every estimator module now, as a skops load used to as a side effect. A
        server calls it before it is ready: a version loaded later (a swap, a rollback)
        then imports nothing, which under load took seconds, each file read waiting for
        the busy request threads to hand the interpreter back."""
        import warnings

        from sklearn.utils import all_estimators

        with warnings.catch_warnings():  # modules nobody asked for: their notices are noise
            warnings.simplefilter("ignore")
            all_estimators()

    def handles(self, model: Any) -> bool:
        return any(
            c.__module__.startswith("sklearn.") and c.__name__ == "BaseEstimator"
            for c in type(model).__mro__
        )

    def save(self, model: Any, example: Any | None) -> SavedModel:
        try:
            import skops.io as sio
        except ImportError:
            sio = None
        if sio is not None:
            try:
                data = _stable_zip(sio.dumps(model))
                trusted = sio.get_untrusted_types(data=data)
                again = sio.loads(data, trusted=trusted)
                if example is None or _same_predictions(model, again, example):
                    return SavedModel(
                        {"model.skops": data}, "skops", {"trusted": trusted}, _versions(), again
                    )
            except Exception:  # noqa: BLE001, S110 - skops cannot hold every estimator: fall back
                pass
        data = pickle.dumps(model, protocol=5)
        return SavedModel({"model.pkl": data}, "pickle", {}, _versions())

    def load(self, saved: SavedModel) -> Any:
        if saved.format == "skops":
            try:
                import skops.io as sio
            except ImportError:
                raise MissingFramework("skops", "skops") from None
            return sio.loads(saved.files["model.skops"], trusted=saved.details.get("trusted", []))
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise MissingFramework("scikit-learn", self.package) from None
        # Verified bytes of the workspace's own object: pickle is safe to open here only.
        return unpickle(saved.files["model.pkl"])

    def predict(self, model: Any, inputs: Any) -> Any:
        return model.predict(inputs)


def _stable_zip(data: bytes) -> bytes:
    """The same model saved twice must be the same bytes (one object, and a reproduction
    that is ``identical``). skops writes a zip whose entries carry the time of saving and
    whose schema and array files are named by ``id()`` of the objects, which differ from one
    process to the next: entries get a fixed time, and ids are renumbered in the order the
    schema first names them (a one-to-one renaming, so shared references still match)."""
    import io
    import json
    import re
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as src:
        infos = src.infolist()
        files = {info.filename: src.read(info) for info in infos}
    schema_text = files["schema.json"].decode()
    ids: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    ids.add(str(value))
                elif key == "file" and isinstance(value, str):
                    stem = value.rsplit(".", 1)[0]
                    if stem.isdecimal():
                        ids.add(stem)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(schema_text))
    renumber: dict[str, str] = {}
    for match in re.finditer(r"\d+", schema_text):
        if match.group() in ids and match.group() not in renumber:
            renumber[match.group()] = str(len(renumber) + 1)

    def rename(text: str) -> str:
        return re.sub(r"\d+", lambda m: renumber.get(m.group(), m.group()), text)

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in sorted(infos, key=lambda i: rename(i.filename)):
            fixed = zipfile.ZipInfo(rename(info.filename), date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            body = files[info.filename]
            if info.filename == "schema.json":
                body = rename(schema_text).encode()
            dst.writestr(fixed, body)
    return out.getvalue()


def _same_predictions(a: Any, b: Any, example: Any) -> bool:
    import numpy as np

    pa, pb = np.asarray(a.predict(example)), np.asarray(b.predict(example))
    if pa.dtype.kind in "fc":
        return bool(np.allclose(pa, pb, equal_nan=True))
    return bool(np.array_equal(pa, pb))
