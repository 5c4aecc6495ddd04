"""Loading a model: verify every byte, then deserialize, then predict through the signature."""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any

from keel.registry.flavors import SavedModel, get_flavor
from keel.registry.signature import Signature
from keel.store.objects import Tree, iter_content

if TYPE_CHECKING:
    from keel.registry.versions import ModelVersion
    from keel.workspace import Workspace

__all__ = ["FrameworkVersionWarning", "LoadedModel", "load_version"]


class FrameworkVersionWarning(UserWarning):
    """The model was saved with other framework versions than are installed here."""


class LoadedModel:
    """A model ready to predict: inputs are checked against its signature first."""

    def __init__(self, version: ModelVersion, model: Any) -> None:
        self.version = version
        self.model = model
        self.flavor = get_flavor(version.flavor)
        self.signature = Signature.from_dict(version.signature) if version.signature else None

    def __repr__(self) -> str:
        return f"LoadedModel({self.version.ref!r}, flavor={self.version.flavor!r})"

    @property
    def ref(self) -> str:
        return self.version.ref

    def prepare(self, inputs: Any, strict: bool = False) -> Any:
        """Inputs checked and converted by the signature (a DataFrame or an array); columns
        it does not name are dropped with a warning (``strict``: refused)."""
        if self.signature is not None:
            return self.signature.enforce(inputs, strict)
        from keel.registry.signature import to_frame

        return inputs if hasattr(inputs, "shape") else to_frame(inputs)

    def predict(self, inputs: Any, strict: bool = False) -> Any:
        """Predictions for a DataFrame, a 2-D array (columns in the signature's order), a
        list of records or a dict of columns. Columns the signature does not name are
        dropped with a ``DroppedColumnsWarning`` (as MLflow does), or refused when
        ``strict=True``."""
        return self.flavor.predict(self.model, self.prepare(inputs, strict))

    def predict_proba(self, inputs: Any, strict: bool = False) -> Any:
        """Class probabilities, for classifiers that have them."""
        method = getattr(self.model, "predict_proba", None)
        if method is None:
            from keel.errors import InvalidInput

            raise InvalidInput(f"{self.ref} ({type(self.model).__name__}) has no predict_proba")
        return method(self.prepare(inputs, strict))


@functools.lru_cache(maxsize=64)
def _installed(dist: str) -> str | None:
    """Installed version of ``dist`` (cached: parsing package metadata was half a load's time)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def load_version(ws: Workspace, version: ModelVersion) -> LoadedModel:
    """Read the version's files (each verified against its digest) and deserialize them."""
    flavor = get_flavor(version.flavor)
    tree = Tree.decode(ws.objects.get(version.oid))
    files = {e.path: b"".join(iter_content(ws.objects, e.oid, e.chunked)) for e in tree}
    saved = SavedModel(files, version.format, version.details, version.frameworks)
    model = flavor.load(saved)
    differ = [
        f"{dist} {saved_with} (here {_installed(dist) or 'absent'})"
        for dist, saved_with in version.frameworks.items()
        if dist not in ("onnx-opset",) and _installed(dist) not in (None, saved_with)
    ]
    if differ:
        warnings.warn(
            f"{version.ref} was saved with {', '.join(differ)}; predictions may differ",
            FrameworkVersionWarning,
            stacklevel=3,
        )
    return LoadedModel(version, model)
