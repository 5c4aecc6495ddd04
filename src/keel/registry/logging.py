"""``run.log_model``: save a model with its flavor, store its files, record a version."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from keel.registry.flavors import flavor_for
from keel.registry.signature import Signature, infer_signature, to_frame
from keel.store.objects import Tree, TreeEntry

if TYPE_CHECKING:
    from keel.registry.versions import ModelVersion
    from keel.track.run import Run
    from keel.workspace import Workspace

__all__ = ["NoSignatureWarning", "log_model"]


class NoSignatureWarning(UserWarning):
    """A model version was logged without a signature (no input example, none given)."""


def _example_frame(example: Any) -> Any:
    import numpy as np

    if example is None or isinstance(example, np.ndarray) or hasattr(example, "columns"):
        return example
    return to_frame(example)


def log_model(
    ws: Workspace,
    model: Any,
    *,
    name: str,
    run: Run | None = None,
    input_example: Any | None = None,
    signature: Signature | None = None,
    flavor: str | None = None,
    message: str = "",
) -> ModelVersion:
    """Save ``model``, store it, and record ``name/vN`` (linked to ``run`` when given)."""
    from keel.names import check_name
    from keel.registry.versions import record_model_version

    check_name(name, "model name")
    chosen = flavor_for(model, flavor)
    example = _example_frame(input_example)
    if signature is None and example is not None:
        predictions = None
        try:
            predictions = chosen.predict(model, example)
        except Exception:  # noqa: BLE001, S110 - the output spec is optional; the inputs are not
            pass
        signature = infer_signature(example, predictions, getattr(model, "classes_", None))
    if signature is None:
        warnings.warn(
            f"{name}: no input_example or signature, so this version has no signature: "
            "keel serve cannot check requests before the model sees them, nor /feedback the "
            "outcomes (pass input_example=a few rows of the training inputs)",
            NoSignatureWarning,
            stacklevel=3,
        )
    saved = chosen.save(model, example)
    store = ws.objects
    with ws.writing_objects():
        try:
            entries = [
                TreeEntry(path, store.put(data), len(data))
                for path, data in sorted(saved.files.items())
            ]
            tree = Tree(entries)
            oid = store.put(tree.encode())
            store.commit()
            return record_model_version(
                ws,
                name=name,
                run_pk=run.pk if run is not None else None,
                flavor=chosen.name,
                format=saved.format,
                oid=oid,
                size=tree.size,
                signature=signature,
                frameworks=saved.frameworks,
                details=saved.details,
                message=message,
            )
        except BaseException:
            store.abort()
            raise
