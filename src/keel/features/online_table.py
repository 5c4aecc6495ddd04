"""The online table: each feature view's latest values per entity, for serving.

``keel features build spend --online`` computes the view's recorded function on its
recorded source version, takes for every entity the row a point-in-time join would take
at the build's time (the same join, the same ties, the same ttl as a training set), and
writes it to table ``online_features`` in the metadata store (SQLite in the workspace,
PostgreSQL at team scale). A build is incremental and atomic: only entities whose value
changed are written, and the rows and the build's record (``online_builds``: which
version, which columns) commit in one transaction, so a reader sees the previous build or
this one, never half, and a build killed mid-way leaves the previous one.

A lookup is one query for every (view, entity) a request needs. An entity the table does
not hold gets the view's declared ``default``, or none (null).

```python
keel.features.online(["spend", "spend_ratio"], {"customer_id": [42, 7]})
```
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, NotFound, listed

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from keel.features.versions import FeatureVersion
    from keel.store.db import Database
    from keel.workspace import Workspace

__all__ = [
    "OnlineBuild",
    "build_online",
    "column_kind",
    "current_builds",
    "entity_text",
    "lookup",
    "model_features",
    "online",
]

_AT = "__keel_at"  # the build's time, as the entity rows' time of the join
_EVENT = "__keel_event"  # the event time of the row each entity got
_CHUNK = 500  # rows per statement: under SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True)
class OnlineBuild:
    """What the online table holds of one view: which version, its columns and their types."""

    view: str
    ref: str
    version_pk: int
    columns: dict[str, str]  # feature column -> signature type (integer, float, ...)
    entities: int
    changed: int
    built_at: float
    built_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "ref": self.ref,
            "columns": self.columns,
            "entities": self.entities,
            "changed": self.changed,
            "built_at": self.built_at,
            "built_by": self.built_by,
        }


def entity_text(value: Any) -> str | None:
    """An entity key as the online table stores it: 42, 42.0 and "42" are one customer.

    >>> entity_text(42), entity_text(42.0), entity_text("42"), entity_text(None)
    ('42', '42', '42', None)
    """
    if value is None or isinstance(value, bool):
        return None if value is None else str(value).lower()
    if isinstance(value, float):
        if value != value:  # NaN names nobody
            return None
        if value.is_integer():
            return str(int(value))
    return str(value)


def column_kind(kind: Any) -> str:
    """The signature type of an Arrow type."""
    import pyarrow as pa

    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "float"
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return "datetime"
    return "string"


def _plain(value: Any) -> Any:
    """A value as JSON stores it: times as ISO text, decimals as floats."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "is_finite") and hasattr(value, "as_tuple"):  # Decimal
        return float(value)
    return value


def _latest(ws: Workspace, version: FeatureVersion, moment: dt.datetime) -> tuple[Any, list[str]]:
    """For every entity of the view, the row a point-in-time join takes at ``moment`` (a
    pyarrow table: key, features, the row's event time), and the feature columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from keel.features.build import _features_of, _ttl, view_rows
    from keel.features.pit import ViewFrame, point_in_time_join

    rows = view_rows(ws, version)
    key, stamp = version.definition["entity"], version.definition["timestamp"]
    created = version.definition.get("created")
    features = _features_of(rows, version)
    keys = pc.unique(rows.column(key)).drop_null()
    zoned = pa.types.is_timestamp(rows.schema.field(stamp).type) and bool(
        rows.schema.field(stamp).type.tz
    )
    at = moment if zoned else moment.astimezone(dt.UTC).replace(tzinfo=None)
    left = pa.table(
        {
            key: keys,
            _AT: pa.array([at] * len(keys), pa.timestamp("us", tz="UTC" if zoned else None)),
        }
    )
    frame = ViewFrame(
        version.name,
        rows,
        key,
        stamp,
        [*features, stamp],
        _ttl(version),
        created,
        rename={stamp: _EVENT},
        as_of=moment if created else None,
        ties="values",
    )
    joined = point_in_time_join(left, [frame], key=key, timestamp=_AT)
    return joined.filter(pc.is_valid(joined.column(_EVENT))), features


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return stamp.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    return float(value)


def _encoded(table: Any, key: str, features: list[str]) -> dict[str, tuple[float, str]]:
    """entity -> (event time, the features as JSON text), from the latest rows."""
    import orjson

    out: dict[str, tuple[float, str]] = {}
    columns = {f: table.column(f).to_pylist() for f in features}
    keys = table.column(key).to_pylist()
    events = table.column(_EVENT).to_pylist()
    for i, k in enumerate(keys):
        name = entity_text(k)
        if name is None:
            continue
        doc = {f: _plain(columns[f][i]) for f in features}
        out[name] = (_epoch(events[i]), orjson.dumps(doc, default=str).decode())
    return out


def _write_changes(
    conn: Connection, view: str, gone: list[str], rows: list[dict[str, Any]]
) -> None:
    """Delete the entities that changed or left, insert their new rows, a chunk at a time."""
    from sqlalchemy import and_

    from keel.store.db import online_features as of

    for start in range(0, len(gone), _CHUNK):
        chunk = gone[start : start + _CHUNK]
        conn.execute(of.delete().where(and_(of.c.view == view, of.c.entity.in_(chunk))))
    for start in range(0, len(rows), _CHUNK):
        conn.execute(of.insert(), rows[start : start + _CHUNK])


def build_online(
    ws: Workspace, ref: str, *, as_of: str | dt.datetime | None = None
) -> OnlineBuild:
    """Write view ``ref``'s latest row per entity (within its ttl, at ``as_of``: now by
    default) to the online table, replacing the view's previous build in one transaction;
    only entities whose values or event time changed are written."""
    from keel.features.build import parse_moment
    from keel.features.versions import resolve_feature

    version = resolve_feature(ws, ref)
    if version.kind != "view":
        raise InvalidInput(
            f"{version.ref} is an on-demand feature: it is computed per request from its "
            "inputs, so it has no online table of its own (build its input views)"
        )
    moment = parse_moment(as_of) or dt.datetime.now(dt.UTC)
    latest, features = _latest(ws, version, moment)
    key = version.definition["entity"]
    wanted = _encoded(latest, key, features)
    columns = {f: column_kind(latest.schema.field(f).type) for f in features}
    columns_text = json.dumps(columns)
    name = version.name

    def txn(conn: Connection) -> OnlineBuild:
        from sqlalchemy import select

        from keel.store.db import actor, online_builds
        from keel.store.db import online_features as of

        held = {
            r.entity: (r.event_ts, r.data)
            for r in conn.execute(
                select(of.c.entity, of.c.event_ts, of.c.data).where(of.c.view == name)
            )
        }
        changed = [e for e, row in wanted.items() if held.get(e) != row]
        left = [e for e in held if e not in wanted]
        _write_changes(
            conn,
            name,
            [e for e in changed if e in held] + left,
            [
                {"view": name, "entity": e, "event_ts": wanted[e][0], "data": wanted[e][1]}
                for e in changed
            ],
        )
        now, who = time.time(), actor()
        conn.execute(online_builds.delete().where(online_builds.c.view == name))
        conn.execute(
            online_builds.insert().values(
                view=name,
                version_id=version.pk,
                columns=columns_text,
                entities=len(wanted),
                changed=len(changed) + len(left),
                built_at=now,
                built_by=who,
            )
        )
        return OnlineBuild(
            name, version.ref, version.pk, columns, len(wanted), len(changed) + len(left), now, who
        )

    return ws.db.write(txn)


def current_builds(ws: Workspace, names: Iterable[str] | None = None) -> dict[str, OnlineBuild]:
    """The online table's build of each view (of ``names``; of all by default)."""
    from sqlalchemy import select

    from keel.store.db import feature_view_versions as fvv
    from keel.store.db import feature_views, online_builds

    query = (
        select(online_builds, feature_views.c.name.label("vname"), fvv.c.number)
        .join(fvv, fvv.c.id == online_builds.c.version_id)
        .join(feature_views, feature_views.c.id == fvv.c.view_id)
    )
    if names is not None:
        query = query.where(online_builds.c.view.in_(list(names)))
    with ws.db.read() as conn:
        rows = conn.execute(query).all()
    return {
        r.view: OnlineBuild(
            r.view,
            f"{r.vname}@v{r.number}",
            r.version_id,
            json.loads(r.columns),
            r.entities,
            r.changed,
            r.built_at,
            r.built_by,
        )
        for r in rows
    }


_STATEMENTS: dict[tuple[int, int], str] = {}


def lookup(db: Database, views: list[str], entities: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(view, entity) -> its features, for every pair the table holds: one statement (one
    snapshot), its text kept per shape, on the driver's own connection (a request's path)."""
    import orjson

    if not views or not entities:
        return {}
    shape = (len(views), len(entities))
    sql = _STATEMENTS.get(shape)
    if sql is None:
        sql = (
            "SELECT view, entity, data FROM online_features WHERE view IN ("
            + ", ".join("?" * len(views))
            + ") AND entity IN ("
            + ", ".join("?" * len(entities))
            + ")"
        )
        if len(_STATEMENTS) < 256:
            _STATEMENTS[shape] = sql
    rows = db.fetch_all(sql, [*views, *entities])
    return {(r[0], r[1]): orjson.loads(r[2]) for r in rows}


def _defaults(version: FeatureVersion, columns: Iterable[str]) -> dict[str, Any]:
    """The value each column takes for an entity the online table does not hold."""
    declared = version.definition.get("default")
    if isinstance(declared, dict):
        return {c: declared.get(c) for c in columns}
    return dict.fromkeys(columns, declared)


def online(
    ws: Workspace, features: list[str], entities: Any, *, strict: bool = False
) -> Any:
    """The features of each entity from the online table, as a DataFrame: the entity
    columns given, then each feature. On-demand features are computed per row by their
    recorded function, as in a training set. An entity the table does not hold gets the
    view's declared default, or null (``strict=True``: raises MissingFeatures)."""
    import pandas as pd

    from keel.features.build import computed
    from keel.features.versions import resolve_feature

    frame = pd.DataFrame(entities) if not isinstance(entities, pd.DataFrame) else entities
    if frame.empty:
        raise InvalidInput("no entities given: expected a key column such as {'customer_id': [42]}")
    versions = [resolve_feature(ws, f.strip()) for f in features if f.strip()]
    if not versions:
        raise InvalidInput("no features asked for: expected names such as spend,spend_ratio")
    views: dict[str, FeatureVersion] = {}
    on_demand = []
    for version in versions:
        if version.kind == "on_demand":
            on_demand.append(version)
            for name in version.inputs:
                views.setdefault(name, resolve_feature(ws, name))
        else:
            views[version.name] = version
    builds = current_builds(ws, views)
    for name in views:
        if name not in builds:
            raise NotFound(
                f"the online table holds no build of feature view {name!r}: "
                f"`keel features build {name} --online` first"
            )
    plan = [(name, views[name].definition["entity"], builds[name]) for name in views]
    for _, key, _ in plan:
        if key not in frame.columns:
            raise InvalidInput(
                f"the entities have no column {key!r} (the entity key); their columns: "
                f"{listed(frame.columns)}"
            )
    keys = {key: [entity_text(v) for v in frame[key].tolist()] for _, key, _ in plan}
    wanted = sorted({k for values in keys.values() for k in values if k is not None})
    found = lookup(ws.db, list(views), wanted)
    out = frame.copy()
    for name, key, build in plan:
        defaults = _defaults(resolve_feature(ws, build.ref), build.columns)
        values: dict[str, list[Any]] = {c: [] for c in build.columns}
        for entity in keys[key]:
            row = found.get((name, entity)) if entity is not None else None
            if row is None:
                if strict and any(defaults[c] is None for c in build.columns):
                    raise MissingFeatures(name, key, entity)
                row = defaults
            for c in build.columns:
                values[c].append(row.get(c))
        for c, column in values.items():
            out[c] = column
    for version in on_demand:
        reads = [c for name in version.inputs for c in builds[name].columns]
        out[version.name] = computed(ws, version, out.to_dict("records"), reads)
    return out


class MissingFeatures(InvalidInput):
    """An entity the online table does not hold, for a view that declares no default."""

    http_status = 422

    def __init__(self, view: str, key: str, entity: str | None) -> None:
        self.view, self.key, self.entity = view, key, entity
        super().__init__(
            f"no online features of {view} for {key}={entity}: the online table does not "
            f"hold this entity and {view} declares no default"
        )


def model_features(ws: Workspace, run_pk: int, columns: list[str]) -> dict[str, Any] | None:
    """What a model trained by run ``run_pk`` on a training set needs served: the feature
    views (versions) and on-demand features its input ``columns`` come from and their entity
    keys, from the training sets the run used; None when no column is a feature."""
    from sqlalchemy import select

    from keel.store.db import dataset_versions, datasets, feature_lineage, run_inputs
    from keel.store.db import feature_view_versions as fvv
    from keel.store.db import feature_views as fv

    wanted = set(columns)
    with ws.db.read() as conn:
        rows = conn.execute(
            select(
                feature_lineage.c.role,
                feature_lineage.c.columns,
                fv.c.name,
                fvv.c.number,
                fvv.c.kind,
                fvv.c.definition,
                datasets.c.name.label("dataset"),
                dataset_versions.c.number.label("dataset_number"),
            )
            .join(run_inputs, run_inputs.c.dataset_version_id == feature_lineage.c.dataset_version_id)
            .join(dataset_versions, dataset_versions.c.id == feature_lineage.c.dataset_version_id)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .outerjoin(fvv, fvv.c.id == feature_lineage.c.feature_view_version_id)
            .outerjoin(fv, fv.c.id == fvv.c.view_id)
            .where(run_inputs.c.run_pk == run_pk, feature_lineage.c.columns.is_not(None))
            .order_by(feature_lineage.c.id)
        ).all()
    views: dict[str, dict[str, Any]] = {}
    on_demand: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    made_from: list[str] = []
    for r in rows:
        if r.role == "entities":
            keys.update(json.loads(r.columns))
            continue
        definition = json.loads(r.definition)
        ref = f"{r.name}@v{r.number}"
        if r.kind == "on_demand":
            if r.name in wanted and r.name not in on_demand:
                on_demand[r.name] = {
                    "name": r.name,
                    "ref": ref,
                    "inputs": sorted(definition.get("input_versions", {})),
                }
                made_from.append(f"{r.dataset}@v{r.dataset_number}")
        elif r.name not in views:
            views[r.name] = {
                "name": r.name,
                "ref": ref,
                "key": definition["entity"],
                "columns": json.loads(r.columns),
            }
    needed = {n for item in on_demand.values() for n in item["inputs"]}
    used = {
        name: view
        for name, view in views.items()
        if name in needed or wanted.intersection(view["columns"])
    }
    if not used and not on_demand:
        return None
    for view in used.values():
        if wanted.intersection(view["columns"]):
            made_from.append(next(
                f"{r.dataset}@v{r.dataset_number}" for r in rows if r.name == view["name"]
            ))  # fmt: skip
    entity_keys = sorted({v["key"] for v in used.values()})
    return {
        "entities": {k: keys.get(k, "string") for k in entity_keys},
        "views": list(used.values()),
        "on_demand": list(on_demand.values()),
        "training_sets": sorted(set(made_from)),
    }
