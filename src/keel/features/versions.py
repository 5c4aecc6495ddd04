"""Feature view versions: ``keel features apply``, list, show, diff.

A version is immutable and named ``spend@v2``. Its identity is a digest of its
definition (the function's source, entity key, timestamp and created columns, ttl,
source name, or an on-demand feature's inputs) and of the versions it reads (the source
dataset version's digest; an on-demand feature's input views' digests). ``apply`` records
a new version of a name only when that digest differs from its latest version's:
re-applying unchanged definitions changes nothing, and a new source version, a new ttl or
an edited function each make one. Every definition of a file is recorded in one
transaction, or none is.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import BadPath, InvalidInput, NotFound
from keel.features.definitions import FeatureView, OnDemand, digest

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from keel.workspace import Workspace

__all__ = [
    "Applied",
    "FeatureVersion",
    "apply",
    "diff_versions",
    "list_features",
    "load_definitions",
    "resolve_feature",
    "stored_definition",
]


@dataclass
class FeatureVersion:
    """``spend@v2``: one immutable version of a feature definition."""

    name: str
    number: int
    digest: str
    kind: str
    definition: dict[str, Any]
    code: str
    source: str | None  # the source dataset version (``transactions@v3``), for a view
    message: str
    created_at: float
    created_by: str
    inputs: dict[str, str] = field(default_factory=dict)  # on-demand: input view → its version
    file_oid: str = ""  # the whole definitions file it was applied from (helpers, imports)
    applied_from: str | None = None  # that file's path then (its folder's modules import)
    pk: int = field(default=0, repr=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.number}"

    def changed_from(self, other: FeatureVersion) -> list[str]:
        """What of the definition differs from ``other``'s (the code, ttl, ...), source
        versions aside: empty when both compute the same way over whatever data."""
        changed = sorted(
            k for k in set(self.definition) | set(other.definition)
            if self.definition.get(k) != other.definition.get(k)
        )  # fmt: skip
        return (["code"] if self.code != other.code else []) + changed

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "name": self.name,
            "version": self.number,
            "digest": self.digest,
            "kind": self.kind,
            "definition": self.definition,
            "code": self.code,
            "source": self.source,
            "inputs": self.inputs,
            "message": self.message,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass
class Applied:
    """What ``apply`` did for one definition: ``created`` a new version, or ``unchanged``."""

    name: str
    status: str
    version: FeatureVersion
    previous: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "ref": self.version.ref,
            "previous": f"{self.name}@v{self.previous}" if self.previous else None,
            "source": self.version.source,
        }


def load_definitions(path: str | Path) -> list[FeatureView | OnDemand]:
    """The feature views and on-demand features a file defines, in the file's order.

    Two definitions of one name are refused, as is a file that does not import or defines
    none."""
    from keel.features import definitions as module_defs

    file = Path(path)
    if not file.is_file():
        raise BadPath(f"feature definitions {str(path)!r}: no such file")
    folder = str(file.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"keel_features_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    collected: list[FeatureView | OnDemand] = []
    module_defs.COLLECTING.append(collected)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except InvalidInput:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's file: said in one line
        first = (str(exc).strip().splitlines() or [""])[0]
        raise InvalidInput(f"{path} does not import: {type(exc).__name__}: {first}") from None
    finally:
        module_defs.COLLECTING.remove(collected)
        sys.modules.pop(name, None)
    seen: dict[str, FeatureView | OnDemand] = {}
    for item in collected:
        if item.name in seen:
            raise InvalidInput(
                f"{path} defines {item.name!r} twice: each feature view or on-demand feature "
                "needs a name of its own"
            )
        seen[item.name] = item
    if not collected:
        raise InvalidInput(
            f"{path} defines no feature view: decorate functions with "
            "@keel.features.feature_view(...) or @on_demand(...)"
        )
    for item in collected:
        if isinstance(item, OnDemand):
            unknown = [i for i in item.inputs if i not in seen]
            if unknown:
                raise InvalidInput(
                    f"on-demand feature {item.name!r} reads {', '.join(unknown)}, which "
                    f"{path} does not define"
                )
    return collected


# recorded with a version, but not what makes it: where it was applied from, and the
# input versions (their digests are in the identity already)
_NOT_IDENTITY = ("input_versions", "applied_from")


def _row(conn: Connection, name: str, number: int | None) -> Any:
    from sqlalchemy import select

    from keel.store.db import feature_view_versions as fvv
    from keel.store.db import feature_views

    query = (
        select(fvv, feature_views.c.name)
        .join(feature_views, feature_views.c.id == fvv.c.view_id)
        .where(feature_views.c.name == name)
    )
    if number is None:
        query = query.order_by(fvv.c.number.desc()).limit(1)
    else:
        query = query.where(fvv.c.number == number)
    return conn.execute(query).first()


def _version(conn: Connection, ws: Workspace, row: Any) -> FeatureVersion:
    from sqlalchemy import select

    from keel.store.db import dataset_versions, datasets

    definition = json.loads(row.definition)
    source = None
    if row.source_version_id is not None:
        found = conn.execute(
            select(datasets.c.name, dataset_versions.c.number)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(dataset_versions.c.id == row.source_version_id)
        ).first()
        if found is not None:
            source = f"{found.name}@v{found.number}"
    return FeatureVersion(
        name=row.name,
        number=row.number,
        digest=row.digest,
        kind=row.kind,
        definition={k: v for k, v in definition.items() if k not in ("code", *_NOT_IDENTITY)},
        code=definition.get("code", ""),
        source=source,
        message=row.message,
        created_at=row.created_at,
        created_by=row.created_by,
        inputs=definition.get("input_versions", {}),
        file_oid=row.code_oid,
        applied_from=definition.get("applied_from"),
        pk=row.id,
    )


def parse_feature_ref(ref: str) -> tuple[str, int | None]:
    """``spend`` (its latest version) or ``spend@v2``.

    >>> parse_feature_ref("spend@v2")
    ('spend', 2)
    >>> parse_feature_ref("spend")
    ('spend', None)
    """
    from keel.names import check_name

    name, sep, rest = ref.partition("@")
    check_name(name, "feature name")
    if not sep:
        return name, None
    if not (rest.startswith("v") and rest[1:].isdecimal() and int(rest[1:]) >= 1):
        raise InvalidInput(f"invalid feature version {ref!r}: expected NAME or NAME@vN")
    return name, int(rest[1:])


def resolve_feature(ws: Workspace, ref: str) -> FeatureVersion:
    """The version ``spend`` (latest) or ``spend@v2`` names."""
    name, number = parse_feature_ref(ref)
    with ws.db.read() as conn:
        row = _row(conn, name, number)
        if row is None:
            latest = _row(conn, name, None)
            if latest is None:
                known = ", ".join(f.name for f in _all_latest(conn, ws)[:20]) or "none"
                raise NotFound(
                    f"no feature named {name!r}; the features: {known} "
                    "(`keel features apply FILE` records them)"
                )
            raise NotFound(f"feature {name} has no version v{number}; its latest is v{latest.number}")
        return _version(conn, ws, row)


def _all_latest(conn: Connection, ws: Workspace) -> list[FeatureVersion]:
    from sqlalchemy import func, select

    from keel.store.db import feature_view_versions as fvv
    from keel.store.db import feature_views

    latest = (
        select(fvv.c.view_id, func.max(fvv.c.number).label("number"))
        .group_by(fvv.c.view_id)
        .subquery()
    )
    rows = conn.execute(
        select(fvv, feature_views.c.name)
        .join(feature_views, feature_views.c.id == fvv.c.view_id)
        .join(latest, (latest.c.view_id == fvv.c.view_id) & (latest.c.number == fvv.c.number))
        .order_by(feature_views.c.name)
    ).all()
    return [_version(conn, ws, r) for r in rows]


def list_features(ws: Workspace) -> list[FeatureVersion]:
    """Every feature definition's latest version, by name."""
    with ws.db.read() as conn:
        return _all_latest(conn, ws)


def history(ws: Workspace, name: str) -> list[FeatureVersion]:
    """Every version of ``name``, newest first."""
    from sqlalchemy import select

    from keel.store.db import feature_view_versions as fvv
    from keel.store.db import feature_views

    resolve_feature(ws, name)  # NotFound for an unknown name
    with ws.db.read() as conn:
        rows = conn.execute(
            select(fvv, feature_views.c.name)
            .join(feature_views, feature_views.c.id == fvv.c.view_id)
            .where(feature_views.c.name == name)
            .order_by(fvv.c.number.desc())
        ).all()
        return [_version(conn, ws, r) for r in rows]


def apply(ws: Workspace, path: str | Path, message: str = "") -> list[Applied]:
    """Record a version of each definition in ``path`` whose digest changed (views first,
    then on-demand features, which name their input views' versions), all in one
    transaction."""
    from keel.data.catalog import resolve

    items = load_definitions(path)
    sources: dict[str, Any] = {}
    for item in items:
        if isinstance(item, FeatureView) and item.source not in sources:
            try:
                sources[item.source] = resolve(ws, item.source)
            except NotFound as exc:
                raise NotFound(
                    f"feature view {item.name!r} reads {item.source!r}: {exc} "
                    "(`keel data add` it first)"
                ) from None
    # the whole file is kept (its imports and helpers), so a build runs what was applied;
    # a version's identity is its own function's source and parameters
    with ws.writing_objects():
        file_oid = ws.objects.put(Path(path).read_bytes())
        ws.objects.commit()

    def txn(conn: Connection) -> list[Applied]:
        from sqlalchemy import insert

        from keel.data.catalog import version_id
        from keel.store.db import actor, feature_view_versions, feature_views, object_refs
        from keel.store.db.numbering import claim_name, next_number

        who = actor()
        now = time.time()
        done: dict[str, Applied] = {}
        ordered = [i for i in items if isinstance(i, FeatureView)] + [
            i for i in items if isinstance(i, OnDemand)
        ]
        for item in ordered:
            definition = item.definition()
            source_id = None
            if isinstance(item, FeatureView):
                version = sources[item.source]
                reads = {version.ref: version.digest}
                source_id = version_id(conn, version.name, version.number)
            else:
                reads = {name: done[name].version.digest for name in item.inputs}
                definition["input_versions"] = {
                    name: done[name].version.ref for name in item.inputs
                }
            definition["applied_from"] = str(Path(path).resolve())
            identity = digest({k: v for k, v in definition.items() if k not in _NOT_IDENTITY}, reads)
            latest = _row(conn, item.name, None)
            if latest is not None and latest.digest == identity:
                done[item.name] = Applied(item.name, "unchanged", _version(conn, ws, latest))
                continue
            vid = claim_name(conn, feature_views, item.name, created_at=now, created_by=who)
            number = next_number(conn, feature_view_versions.c.number, feature_view_versions.c.view_id, vid)
            pk = conn.execute(
                insert(feature_view_versions).values(
                    view_id=vid,
                    number=number,
                    digest=identity,
                    kind=item.kind,
                    definition=json.dumps(definition, sort_keys=True),
                    code_oid=file_oid,
                    source_version_id=source_id,
                    message=message,
                    created_at=now,
                    created_by=who,
                )
            ).inserted_primary_key
            assert pk is not None
            conn.execute(
                insert(object_refs).values(
                    owner_kind="feature_version",
                    owner_id=str(pk[0]),
                    role="file",
                    oid=file_oid,
                    shape="blob",
                    label=f"{item.name}@v{number}",
                )
            )
            row = _row(conn, item.name, number)
            done[item.name] = Applied(
                item.name,
                "created",
                _version(conn, ws, row),
                latest.number if latest is not None else None,
            )
        return [done[i.name] for i in items]

    return ws.db.write(txn, retry_integrity=True)


def diff_versions(ws: Workspace, a: str, b: str) -> dict[str, Any]:
    """What changed from version ``a`` to ``b``: parameters, source and inputs, and the
    code as a unified diff."""
    left, right = resolve_feature(ws, a), resolve_feature(ws, b)
    changed = {}
    for key in sorted(set(left.definition) | set(right.definition)):
        if left.definition.get(key) != right.definition.get(key):
            changed[key] = {"from": left.definition.get(key), "to": right.definition.get(key)}
    if left.source != right.source:
        changed["source_version"] = {"from": left.source, "to": right.source}
    if left.inputs != right.inputs:
        changed["inputs"] = {"from": left.inputs, "to": right.inputs}
    code = list(
        difflib.unified_diff(
            left.code.splitlines(),
            right.code.splitlines(),
            fromfile=left.ref,
            tofile=right.ref,
            lineterm="",
        )
    )
    return {
        "from": left.ref,
        "to": right.ref,
        "same": left.digest == right.digest,
        "changed": changed,
        "code": code,
    }


def stored_definition(ws: Workspace, version: FeatureVersion) -> FeatureView | OnDemand:
    """The definition ``version`` was applied from, loaded from its recorded file (not the
    working copy, which may have changed since)."""
    import tempfile

    if version.applied_from:
        home = str(Path(version.applied_from).parent)
        if home not in sys.path:
            sys.path.append(home)  # sibling modules the file imports
    folder = Path(tempfile.mkdtemp(prefix="keel-features-"))
    try:
        file = folder / f"applied_{version.file_oid[:12]}.py"
        file.write_bytes(ws.objects.get(version.file_oid))
        found = {item.name: item for item in load_definitions(file)}
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    item = found.get(version.name)
    if item is None or item.definition().get("code") != version.code:
        raise InvalidInput(f"the file {version.ref} was applied from no longer defines it")
    return item
