"""Building from feature versions: a view's rows (``keel features build``) and training sets.

Both are dataset versions: content-addressed Parquet, profiled (so a training set is the
drift reference of the model trained on it), with lineage to the feature view versions
they were computed from and, for a training set, the entity table. The Parquet bytes
depend only on the rows, so building the same thing twice gives the same version.

A view runs from the file it was applied from (recorded with its version), on the source
dataset version that version names, as a DuckDB relation.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, listed

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from keel.data.version import DatasetVersion
    from keel.features.versions import FeatureVersion
    from keel.workspace import Workspace

__all__ = ["build_view", "parse_moment", "training_set", "view_rows"]

BUILT_SUFFIX = ".features"  # the dataset a view's rows are built into: spend.features

# (role, feature view version, input dataset version, columns as JSON): a feature view
# version and the columns it gave a training set, or the entity table and its keys' types
Lineage = tuple[str, int | None, int | None, str | None]


def parse_moment(text: str | dt.datetime | None) -> dt.datetime | None:
    """``2026-12-01``, ``2026-12-01T12:00`` (UTC unless it names a zone), or a datetime.

    >>> parse_moment("2026-12-01")
    datetime.datetime(2026, 12, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if text is None:
        return None
    if isinstance(text, dt.datetime):
        moment = text
    else:
        try:
            moment = dt.datetime.fromisoformat(str(text))
        except ValueError:
            raise InvalidInput(
                f"invalid as_of {text!r}: expected a date or time such as 2026-12-01 or "
                "2026-12-01T12:00:00+00:00"
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _failed(what: str, exc: Exception) -> InvalidInput:
    """A user's function raised: one line, what failed, the exception and its first line."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return InvalidInput(f"{what}: {type(exc).__name__}: {first}")


def _arrow(result: Any, what: str) -> Any:
    import pyarrow as pa

    if isinstance(result, pa.Table):
        return result
    if hasattr(result, "to_arrow_table"):  # a DuckDB relation
        return result.to_arrow_table()
    if hasattr(result, "arrow") and not hasattr(result, "columns"):
        return result.arrow()
    if hasattr(result, "columns") and hasattr(result, "to_numpy"):  # pandas
        return pa.Table.from_pandas(result, preserve_index=False)
    raise InvalidInput(
        f"{what} returned {type(result).__name__}: expected rows (a DuckDB relation, a pandas "
        "DataFrame or a pyarrow table)"
    )


def view_rows(
    ws: Workspace, version: FeatureVersion, *, ordered: bool = False, con: Any = None
) -> Any:
    """The rows feature view ``version`` computes: its recorded function on its recorded
    source version (on DuckDB connection ``con``; a new one by default). Raises
    InvalidInput when the function fails or returns no entity key or no timestamp column."""
    import duckdb

    from keel.data.catalog import resolve
    from keel.data.tables import read_table
    from keel.features.definitions import FeatureView
    from keel.features.versions import stored_definition

    if version.kind != "view" or version.source is None:
        raise InvalidInput(
            f"{version.ref} is an on-demand feature: it is computed row by row when a training "
            "set is built, not built on its own"
        )
    view = stored_definition(ws, version)
    assert isinstance(view, FeatureView)
    source = read_table(resolve(ws, version.source))
    own = con is None
    if own:
        con = duckdb.connect()
    try:
        relation = con.from_arrow(source)
        try:
            result = view.function(relation)
            # a view that gives its source back as it is: the source's rows, not a copy
            table = source if result is relation else _arrow(result, f"feature view {version.name}")
        except InvalidInput:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's function: said in one line
            raise _failed(f"feature view {version.name} failed on {version.source}", exc) from None
    finally:
        if own:
            con.close()
    key, stamp = version.definition["entity"], version.definition["timestamp"]
    missing = [c for c in (key, stamp) if c not in table.column_names]
    if missing:
        raise InvalidInput(
            f"feature view {version.name} returned no {' and no '.join(repr(c) for c in missing)} "
            f"column: its rows must carry the entity key and the timestamp (it returned "
            f"{listed(table.column_names, 12)})"
        )
    if not ordered:
        return table  # joined with ties="values": the order it came in does not matter
    created = version.definition.get("created")
    return _sorted(table, [key, stamp] + ([created] if created else []))


def _sorted(table: Any, first: list[str]) -> Any:
    """Rows in one order whatever order the function produced them in (DuckDB's parallel
    plans keep none): by entity key and time, then every other column that sorts (compared
    only where the earlier ones tie). The same rows are then the same bytes."""
    import pyarrow as pa

    rest = [
        f.name
        for f in table.schema
        if f.name not in first
        and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
             or pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
             or pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)
             or pa.types.is_boolean(f.type) or pa.types.is_decimal(f.type))
    ]  # fmt: skip
    return table.sort_by([(c, "ascending") for c in first + rest])


def _features_of(table: Any, version: FeatureVersion) -> list[str]:
    skip = {version.definition["entity"], version.definition["timestamp"]}
    if version.definition.get("created"):
        skip.add(version.definition["created"])
    return [c for c in table.column_names if c not in skip]


def _write_parquet(table: Any, path: Path) -> None:
    """The same rows, the same bytes: no creation time, fixed row groups, one compression.
    Dictionaries only for text (they cost numeric columns time and bytes for nothing)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = [
        f.name
        for f in table.schema
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        or pa.types.is_dictionary(f.type)
    ]  # fmt: skip
    pq.write_table(
        table.replace_schema_metadata(None),
        path,
        compression="zstd",
        row_group_size=1 << 20,
        use_dictionary=text or False,
        write_statistics=True,
    )


def _record(
    ws: Workspace,
    table: Any,
    *,
    name: str,
    file_name: str,
    message: str,
    lineage: list[Lineage],
    source: str,
) -> DatasetVersion:
    """``table`` as a version of dataset ``name``, with its feature lineage in the same
    transaction (added when the same rows were recorded before)."""
    from keel.data.add import add

    def also(conn: Connection, version_pk: int) -> None:
        from sqlalchemy import and_, select

        from keel.store.db import feature_lineage as fl

        for role, view_version_pk, input_pk, columns in lineage:
            exists = conn.execute(
                select(fl.c.id).where(
                    and_(
                        fl.c.dataset_version_id == version_pk,
                        fl.c.role == role,
                        fl.c.feature_view_version_id.is_(None)
                        if view_version_pk is None
                        else fl.c.feature_view_version_id == view_version_pk,
                        fl.c.input_version_id.is_(None)
                        if input_pk is None
                        else fl.c.input_version_id == input_pk,
                    )
                )
            ).first()
            if exists is None:
                conn.execute(
                    fl.insert().values(
                        dataset_version_id=version_pk,
                        role=role,
                        feature_view_version_id=view_version_pk,
                        input_version_id=input_pk,
                        columns=columns,
                    )
                )

    from keel.data.profile import profile_files

    folder = Path(tempfile.mkdtemp(prefix="keel-features-"))
    stop = threading.Event()
    try:
        path = folder / file_name
        # the profile, from the rows in memory, on the other core while the file is
        # written and stored (numpy and the Parquet writer both let go of the GIL); the
        # same rows recorded before need none, and it stops at once
        with ThreadPoolExecutor(max_workers=1) as pool:
            profiled = pool.submit(
                profile_files, [(file_name, str(path))], {str(path): table}, stop
            )
            try:
                _write_parquet(table, path)
                return add(
                    path,
                    name=name,
                    message=message,
                    workspace=ws,
                    also=also,
                    source=source,
                    profiled=profiled,
                )
            finally:
                stop.set()
                profiled.exception()  # waited for (raising nothing): its end, before the pool's
    finally:
        for child in folder.iterdir():
            child.unlink()
        os.rmdir(folder)


def build_view(ws: Workspace, ref: str, message: str = "") -> tuple[FeatureVersion, DatasetVersion]:
    """Compute view ``ref`` (``spend``: its latest version) and record its rows as a version
    of dataset ``spend.features``."""
    from keel.features.versions import resolve_feature

    version = resolve_feature(ws, ref)
    table = view_rows(ws, version, ordered=True)
    built = _record(
        ws,
        table,
        name=f"{version.name}{BUILT_SUFFIX}",
        file_name=f"{version.name}.parquet",
        message=message or f"built from {version.ref} on {version.source}",
        lineage=[("view", version.pk, None, None)],
        source=f"keel features build {version.ref}",
    )
    return version, built


@dataclass
class _Plan:
    versions: list[FeatureVersion]  # the views to join, in the order asked
    on_demand: list[FeatureVersion]


def _plan(ws: Workspace, features: list[str], as_of: dt.datetime | None) -> _Plan:
    """The feature versions ``features`` name: each name's latest version (applied at or
    before ``as_of``), an on-demand feature's input views added."""
    from keel.features.versions import history, resolve_feature

    if not features:
        raise InvalidInput("no features asked for: expected names such as spend,spend_ratio")
    chosen: dict[str, FeatureVersion] = {}

    def pick(ref: str) -> FeatureVersion:
        if "@" in ref or as_of is None:
            return resolve_feature(ws, ref)
        before = [v for v in history(ws, ref) if v.created_at <= as_of.timestamp()]
        if not before:
            raise InvalidInput(f"feature {ref} had no version at {as_of.isoformat()}")
        return before[0]

    views: list[FeatureVersion] = []
    on_demand: list[FeatureVersion] = []
    for ref in features:
        version = pick(ref.strip())
        if version.name in chosen:
            continue
        chosen[version.name] = version
        if version.kind == "on_demand":
            on_demand.append(version)
            for name, input_ref in sorted(version.inputs.items()):
                if name not in chosen:
                    chosen[name] = resolve_feature(ws, input_ref)
                    views.append(chosen[name])
        else:
            views.append(version)
    return _Plan(views, on_demand)


def _entity_table(
    ws: Workspace, entities: Any
) -> tuple[Callable[[], Any], DatasetVersion | None]:
    """What reads the entity rows as a pyarrow table (it touches no record: it may run on
    another thread), and the dataset version they come from (if any)."""
    import pyarrow as pa

    from keel.data.catalog import resolve
    from keel.data.tables import read_table
    from keel.data.version import DatasetVersion

    if isinstance(entities, DatasetVersion):
        return partial(read_table, entities), entities
    if isinstance(entities, str | os.PathLike):
        text = str(entities)
        if os.path.exists(text):
            import pyarrow.csv as pcsv
            import pyarrow.parquet as pq

            if text.endswith(".parquet"):
                return lambda: pq.ParquetFile(text).read(), None
            if text.endswith(".csv"):
                return partial(pcsv.read_csv, text), None
            raise InvalidInput(f"entity table {text}: expected a .parquet or .csv file")
        version = resolve(ws, text)
        return partial(read_table, version), version
    if isinstance(entities, pa.Table):
        return lambda: entities, None
    if hasattr(entities, "columns") and hasattr(entities, "to_numpy"):
        return partial(pa.Table.from_pandas, entities, preserve_index=False), None
    raise InvalidInput(
        f"entities must be a DataFrame, a pyarrow table, a file or a dataset version, not "
        f"{type(entities).__name__}"
    )


def _timestamp_column(table: Any, given: str | None) -> str:
    import pyarrow as pa

    if given is not None:
        if given not in table.column_names:
            raise InvalidInput(
                f"the entity table has no column {given!r}; its columns: "
                f"{listed(table.column_names)}"
            )
        return given
    times = [f.name for f in table.schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)]
    if len(times) != 1:
        raise InvalidInput(
            "the entity table needs one timestamp column (when each label was known); "
            + (f"it has {len(times)}: {', '.join(times)}; name one with timestamp=" if times
               else f"it has none among {listed(table.column_names)}")
        )  # fmt: skip
    return str(times[0])


def training_set(
    ws: Workspace,
    entities: Any,
    features: list[str],
    *,
    as_of: str | dt.datetime | None = None,
    timestamp: str | None = None,
    name: str = "training-set",
    message: str = "",
) -> DatasetVersion:
    """A point-in-time-correct training set, recorded as a version of dataset ``name``.

    Each entity row (entity key(s), a timestamp, labels) gets, for each feature view, its
    latest row at or before the row's time and within the view's ttl, nulls otherwise;
    then each on-demand feature, by its function, row by row. ``as_of`` builds it as it
    would have been then: each feature's latest version applied by then, and feature rows
    created after it left out (views with a created column)."""
    from keel.data.catalog import version_id
    from keel.features.pit import ViewFrame, point_in_time_join
    from keel.names import check_name

    check_name(name)
    moment = parse_moment(as_of)
    plan = _plan(ws, [f for f in features if f.strip()], moment)
    read_entities, entity_version = _entity_table(ws, entities)
    import duckdb

    with ThreadPoolExecutor(max_workers=1) as pool:  # read while the views are computed
        reading = pool.submit(read_entities)
        con = duckdb.connect()  # one for every view: a connection costs 15 ms
        try:
            computed = [view_rows(ws, version, con=con) for version in plan.versions]
        finally:
            con.close()
        left = reading.result()
    stamp = _timestamp_column(left, timestamp)
    frames = []
    keys = set()
    for version, rows in zip(plan.versions, computed, strict=True):
        key = version.definition["entity"]
        keys.add(key)
        if key not in left.column_names:
            raise InvalidInput(
                f"the entity table has no column {key!r}, the entity key of {version.ref}; its "
                f"columns: {listed(left.column_names)}"
            )
        created = version.definition.get("created")
        frames.append(
            ViewFrame(
                version.name,
                rows,
                key,
                version.definition["timestamp"],
                _features_of(rows, version),
                _ttl(version),
                created,
                as_of=moment if created else None,
                ties="values",
            )
        )
    if len(keys) > 1:
        joined = _join_by_key(left, frames, stamp)
    else:
        joined = point_in_time_join(
            left, frames, key=next(iter(keys)) if keys else left.column_names[0], timestamp=stamp
        )
    columns = {frame.name: frame.features for frame in frames}
    joined = _on_demand(ws, joined, plan.on_demand, columns)
    import json

    from keel.features.online_table import column_kind

    lineage: list[Lineage] = [("view", v.pk, None, json.dumps(columns[v.name])) for v in plan.versions]
    lineage += [("view", v.pk, None, json.dumps([v.name])) for v in plan.on_demand]
    key_types = json.dumps({k: column_kind(left.schema.field(k).type) for k in sorted(keys)})
    with ws.db.read() as conn:
        entity_pk = (
            version_id(conn, entity_version.name, entity_version.number)
            if entity_version is not None
            else None
        )
    lineage.append(("entities", None, entity_pk, key_types))
    names = ", ".join(v.ref for v in plan.versions + plan.on_demand)
    return _record(
        ws,
        joined,
        name=name,
        file_name=f"{name}.parquet",
        message=message or f"training set of {names}"
        + (f" as of {moment.isoformat()}" if moment else ""),
        lineage=lineage,
        source=f"keel features training-set {names}",
    )


def _ttl(version: FeatureVersion) -> dt.timedelta | None:
    seconds = version.definition.get("ttl_seconds")
    return None if seconds is None else dt.timedelta(seconds=seconds)


def _join_by_key(left: Any, frames: list[Any], stamp: str) -> Any:
    """Views keyed by different entities: one join per key, columns put side by side."""
    from keel.features.pit import point_in_time_join

    out = left
    for frame in frames:
        joined = point_in_time_join(out, [frame], key=frame.key, timestamp=stamp)
        out = joined
    return out


def _on_demand(
    ws: Workspace, table: Any, versions: list[FeatureVersion], columns: dict[str, list[str]]
) -> Any:
    """Each on-demand feature's column, by its recorded function, one row at a time (the
    same call as online). Null where a feature it reads is null (no row in the window)."""
    import pyarrow as pa

    for version in versions:
        if version.name in table.column_names:
            raise InvalidInput(
                f"on-demand feature {version.name!r} clashes with a column already in the "
                "training set"
            )
        reads = [c for name in version.inputs for c in columns.get(name, [])]
        values = computed(ws, version, table.to_pylist(), reads)
        table = table.append_column(version.name, pa.array(values))
    return table


def computed(
    ws: Workspace, version: FeatureVersion, rows: list[dict[str, Any]], reads: list[str]
) -> list[Any]:
    """An on-demand feature per row, by its recorded function: the same call for a training
    set and for an online lookup. Null where a column it reads is null or NaN (no value)."""
    from keel.features.versions import stored_definition

    return on_demand_values(
        stored_definition(ws, version).function,
        rows,
        reads,
        lambda i, exc: _failed(f"on-demand feature {version.name} failed on a row", exc),
    )


def on_demand_values(
    function: Callable[[dict[str, Any]], Any],
    rows: list[dict[str, Any]],
    reads: list[str],
    failed: Callable[[int, Exception], Exception],
) -> list[Any]:
    """``function`` of each row, null where a column it reads is null or NaN (no value): the
    one rule for training sets, online lookups, skew and the server. When the function
    raises on row ``i``, ``failed(i, exc)`` is raised instead."""
    values: list[Any] = []
    for i, row in enumerate(rows):
        if any((v := row.get(c)) is None or (isinstance(v, float) and v != v) for c in reads):
            values.append(None)
            continue
        try:
            values.append(function(row))
        except Exception as exc:  # noqa: BLE001 - the user's function: the caller says it
            raise failed(i, exc) from None
    return values
