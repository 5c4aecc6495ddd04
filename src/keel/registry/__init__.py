"""The model registry: flavors, signatures, immutable versions, aliases, rollback, lineage.

``run.log_model(model, name="churn", input_example=X[:5])`` records
``churn/vN``; ``keel.load_model("churn@champion")`` verifies every byte and
loads it; aliases move forward on promotion and back on rollback, every move
an event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.registry.flavors import MissingFramework, PythonModel
from keel.registry.loading import FrameworkVersionWarning, LoadedModel
from keel.registry.logging import NoSignatureWarning
from keel.registry.names import ALIAS_RULE, ModelRef, check_alias, parse_model_ref
from keel.registry.signature import Signature, SignatureError, infer_signature

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = [
    "ALIAS_RULE",
    "FrameworkVersionWarning",
    "LoadedModel",
    "MissingFramework",
    "ModelRef",
    "NoSignatureWarning",
    "PythonModel",
    "Signature",
    "SignatureError",
    "check_alias",
    "infer_signature",
    "load_model",
    "parse_model_ref",
]


def load_model(ref: str, *, workspace: Workspace | None = None) -> LoadedModel:
    """Load ``churn@champion``, ``churn/v4`` or ``churn`` (latest), verified, ready to predict."""
    from keel.registry.loading import load_version
    from keel.registry.versions import resolve_model
    from keel.workspace import connect

    ws = workspace or connect()
    return load_version(ws, resolve_model(ws, ref))


def _log_model_hook(run: Any, model: Any, **kwargs: Any) -> Any:
    from keel.registry.logging import log_model

    return log_model(run.workspace, model, run=run, **kwargs)


def _install() -> None:
    from keel.track import run as run_module

    run_module.MODEL_LOGGER[:] = [_log_model_hook]


_install()
