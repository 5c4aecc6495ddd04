"""The contract every flavor keeps: save a model to bytes, load it from verified bytes, predict.

A flavor never reads a path: ``load`` receives the files' bytes only after the
object store has checked every byte against its digest, so a model is never
deserialized from anything but what was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from keel.errors import KeelError

__all__ = ["Flavor", "MissingFramework", "ModelCodeMissing", "SavedModel", "unpickle"]


class MissingFramework(KeelError):
    """The model's framework is not installed here; the message gives the install command."""

    exit_code = 2
    http_status = 400

    def __init__(self, framework: str, package: str) -> None:
        super().__init__(
            f"this model needs {framework}, which is not installed: pip install {package}"
        )


class ModelCodeMissing(MissingFramework):
    """The model's own code (the module defining its class) cannot be imported here."""

    def __init__(self, message: str) -> None:
        KeelError.__init__(self, message)


def unpickle(data: bytes) -> Any:
    """Unpickle verified bytes of the workspace's own object; a missing class is one clear error."""
    import pickle

    try:
        return pickle.loads(data)  # noqa: S301 - only ever called on digest-verified workspace bytes
    except (ImportError, AttributeError) as exc:
        raise ModelCodeMissing(
            f"the model's code cannot be imported here ({exc}); install or put on the path the "
            "module that defines its class"
        ) from None


@dataclass
class SavedModel:
    """A model as files, plus what loading them needs."""

    files: dict[str, bytes]
    format: str  # "skops", "pickle", "lightgbm-text", "xgboost-ubj", "onnx", …
    details: dict[str, Any] = field(default_factory=dict)
    frameworks: dict[str, str] = field(default_factory=dict)
    # The model as loading these files rebuilds it, when saving had it at hand (a round
    # trip checked): the load cache starts from it, so a first load is as fast as the next.
    loaded: Any = None


class Flavor(Protocol):
    """Save, load, predict and describe one framework's models."""

    name: str
    package: str  # what `pip install` needs when the framework is missing

    def handles(self, model: Any) -> bool:
        """True when this flavor knows how to save ``model`` (checked without importing)."""

    def save(self, model: Any, example: Any | None) -> SavedModel:
        """The model as files; ``example`` (already converted) lets a flavor check a round trip."""

    def load(self, saved: SavedModel) -> Any:
        """The model rebuilt from verified bytes."""

    def predict(self, model: Any, inputs: Any) -> Any:
        """Predictions for ``inputs`` (a DataFrame or an array that passed the signature)."""
