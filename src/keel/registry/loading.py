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
    if _cached(flavor, version):
        model = _load_through_cache(ws, version, flavor)
    else:
        model = flavor.load(_read(ws, version))
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


def _read(ws: Workspace, version: ModelVersion) -> SavedModel:
    tree = Tree.decode(ws.objects.get(version.oid))
    files = {e.path: b"".join(iter_content(ws.objects, e.oid, e.chunked)) for e in tree}
    return SavedModel(files, version.format, version.details, version.frameworks)


# -- the load cache ------------------------------------------------------------
#
# A format whose loader is slow to start (skops imports every estimator module of
# scikit-learn to list the types it trusts: most of a short command's time) is loaded
# once per environment; what it rebuilt is kept as a pickle in the object store, named
# in ``object_refs`` (owner: the version's digest; role: the environment). Later loads
# with the same Python and framework versions unpickle those verified bytes, which keel
# itself wrote: the security model's rule for pickle. Another environment loads the
# original format again and takes the entry over, so an upgrade leaves nothing behind
# for `keel gc` to keep. A cache that cannot be read or written costs speed, never a load.

_CACHE_OWNER = "model_load"


def _cached(flavor: Any, version: ModelVersion) -> bool:
    """Whether ``version``'s format goes through the load cache (its flavor says so)."""
    return version.format in getattr(flavor, "cached_formats", ())


def _environment(version: ModelVersion) -> str:
    """What a pickle of the rebuilt model depends on, as 32 hex digits."""
    import json
    import sys

    from keel.store.objects import hash_bytes

    dists = sorted({*version.frameworks, "numpy", "scipy"} - {"onnx-opset"})
    described = {
        "python": sys.version,
        "pickle": 5,
        "format": version.format,
        "frameworks": {dist: _installed(dist) for dist in dists},
    }
    return hash_bytes(json.dumps(described, sort_keys=True).encode())[:32]


def _load_through_cache(ws: Workspace, version: ModelVersion, flavor: Any) -> Any:
    from keel.errors import StorageError
    from keel.registry.flavors import contract

    saved = _read(ws, version)  # verified even when not deserialized: altered is refused
    rows = ws.db.fetch_all(
        "SELECT oid FROM object_refs WHERE owner_kind = ? AND owner_id = ? AND role = ?",
        (_CACHE_OWNER, version.oid, _environment(version)),
    )
    if rows:
        try:
            return contract.unpickle(ws.objects.get(str(rows[0][0])))
        except (StorageError, contract.ModelCodeMissing):
            # Collected, altered on disk (refused by its digest), or a framework that cannot
            # be imported here: the original format loads, or says exactly what is missing.
            pass
    model = flavor.load(saved)
    remember_loaded(ws, version, model)
    return model


def remember_loaded(ws: Workspace, version: ModelVersion, model: Any) -> None:
    """Keep ``model`` (what loading ``version`` rebuilds, in this environment) for the next
    load. Never fails: a read-only or busy store, or a model pickle refuses, costs speed."""
    import pickle

    from keel.store.db import object_refs

    if not _cached(get_flavor(version.flavor), version):
        return
    env = _environment(version)

    def txn(conn: Any) -> None:
        conn.execute(
            object_refs.delete().where(
                (object_refs.c.owner_kind == _CACHE_OWNER) & (object_refs.c.owner_id == version.oid)
            )
        )
        conn.execute(
            object_refs.insert().values(
                owner_kind=_CACHE_OWNER,
                owner_id=version.oid,
                role=env,
                oid=oid,
                shape="blob",
                label=f"{version.ref} (load cache)",
            )
        )

    try:
        data = pickle.dumps(model, protocol=5)
        with ws.writing_objects():
            # Committed at once and never aborted: other objects this process staged are
            # not ours to drop, and an object no record names is only `keel gc`'s to remove.
            oid = ws.objects.put(data)
            ws.objects.commit()
            ws.db.write(txn, retry_integrity=True, durable=False)
    except Exception:  # noqa: BLE001, S110 - a cache that cannot be written costs speed only
        pass
