"""``run.log_model``: save a model with its flavor, store its files, record a version."""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any

from keel.registry.flavors import flavor_for
from keel.registry.signature import Signature, infer_signature, to_frame
from keel.store.objects import Tree, TreeEntry
from keel.track.records import MODEL_TAG
from keel.track.reproduce import REGISTER_ENV

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
    """Save ``model``, store it, and record ``name/vN`` (linked to ``run`` when given).

    In a reproduction run the model is stored and recorded with the run, marked as the
    reproduction's, and no version is registered (unless ``keel reproduce --register``):
    re-creating a run must not add a duplicate to the registry."""
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
    if run is not None and signature is not None and not signature.is_tensor:
        from dataclasses import replace

        from keel.features.online_table import model_features

        needs = model_features(ws, run.pk, [c.name for c in signature.columns])
        if needs is not None:
            signature = replace(signature, features=needs)
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
            if run is not None and run.reproduction_of and not os.environ.get(REGISTER_ENV):
                return _record_with_run(
                    ws, run, name, chosen.name, saved, oid, tree.size, signature, message
                )
            version = record_model_version(
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
    if saved.loaded is not None:
        from keel.registry.loading import remember_loaded

        remember_loaded(ws, version, saved.loaded)
    return version


def _record_with_run(
    ws: Workspace,
    run: Run,
    name: str,
    flavor: str,
    saved: Any,
    oid: str,
    size: int,
    signature: Signature | None,
    message: str,
) -> ModelVersion:
    """A reproduction's model: a tag on its run (``keel.model.NAME``) and a reference that
    keeps its files, but no version."""
    from keel.registry.versions import ModelVersion
    from keel.store.db import actor, object_refs, run_tags
    from keel.store.objects import hash_bytes

    key = f"{MODEL_TAG}{name}"
    doc = {
        "digest": oid,
        "flavor": flavor,
        "format": saved.format,
        "size": size,
        "reproduction_of": run.reproduction_of,
    }
    role = f"model:{hash_bytes(name.encode())[:26]}"

    def txn(conn: Any) -> None:
        conn.execute(
            run_tags.delete().where(run_tags.c.run_pk == run.pk, run_tags.c.key == key)
        )
        conn.execute(run_tags.insert().values(run_pk=run.pk, key=key, value=json.dumps(doc)))
        conn.execute(
            object_refs.delete().where(
                object_refs.c.owner_kind == "run",
                object_refs.c.owner_id == str(run.pk),
                object_refs.c.role == role,
            )
        )
        conn.execute(
            object_refs.insert().values(
                owner_kind="run",
                owner_id=str(run.pk),
                role=role,
                oid=oid,
                shape="tree",
                label=f"run {run.id[:8]}: model {name} (not registered)",
            )
        )

    ws.db.write(txn)
    print(
        f"keel: {name} recorded with run {run.id[:8]}, a reproduction of "
        f"{str(run.reproduction_of)[:8]}; no version registered "
        "(keel reproduce --register registers one)",
        file=sys.stderr,
    )
    return ModelVersion(
        name=name,
        number=0,
        flavor=flavor,
        format=saved.format,
        oid=oid,
        size=size,
        signature=signature.to_dict() if signature else None,
        frameworks=saved.frameworks,
        details=saved.details,
        message=message,
        created_at=time.time(),
        created_by=actor(),
        run_id=run.id,
        workspace=ws,
        registered=False,
    )
