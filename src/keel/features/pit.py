"""Point-in-time joins: for each entity row at time t, each view's latest feature row known at t.

For an entity row (key k, time t) and a feature view with time-to-live ``ttl``, the
feature row joined is the one of key k with the greatest ``event_ts`` such that
``event_ts <= t`` and, when the view has a ttl, ``event_ts >= t - ttl``; none (nulls)
otherwise. Exactly one output row per entity row, in the entity table's order, whatever
the order of either input.

Determinism. Several feature rows of one key may share an ``event_ts``. DuckDB's ASOF
join picks any of them, run to run, so the ties are settled first: the row with the
greatest ``created_ts`` (when the view has one) wins, then the one that comes last in the
feature table (a later write of the same instant). ``as_of`` leaves out feature rows
created after it (needs ``created_ts``), so a training set built twice from the same
inputs is the same.

How. The ASOF join runs on narrow tables (key, time, row number), DuckDB's fastest plan;
the ttl is applied to the row it found, in the select list (a predicate in an ``ASOF
LEFT JOIN``'s condition drops left rows: duckdb#17046); the feature columns then come by
a hash join on the row number. Each view is joined on the entity key and the time
inequality only, never an ``OR`` (duckdb#19027).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from keel.errors import InvalidInput

__all__ = ["ViewFrame", "point_in_time_join"]

ROW = "__keel_row"  # the entity row's position
FEATURE_ROW = "__keel_frow"  # a feature row's position in its table


@dataclass
class ViewFrame:
    """One view's feature rows, ready to join: a pyarrow table (or pandas frame) with the
    entity key, the event time, the feature columns and optionally a created time."""

    name: str
    table: Any
    key: str
    timestamp: str
    features: list[str]
    ttl: dt.timedelta | None = None
    created: str | None = None
    # output column of each feature (default: the feature's name)
    rename: dict[str, str] = field(default_factory=dict)
    as_of: dt.datetime | None = None  # leave out rows created after it (this view only)


def _arrow(table: Any, what: str) -> Any:
    import pyarrow as pa

    if isinstance(table, pa.Table):
        return table
    if hasattr(table, "columns") and hasattr(table, "to_numpy"):  # pandas
        return pa.Table.from_pandas(table, preserve_index=False)
    if hasattr(table, "arrow"):  # a DuckDB relation
        return table.arrow()
    raise InvalidInput(f"{what} must be a table (pandas or pyarrow), not {type(table).__name__}")


def _time_kind(table: Any, column: str, what: str) -> str | None:
    """'naive', 'utc' (any zone: compared as instants), or raise for a non-time column."""
    import pyarrow as pa

    kind = table.schema.field(column).type
    if pa.types.is_timestamp(kind):
        return "utc" if kind.tz else "naive"
    if pa.types.is_date(kind):
        return "naive"
    raise InvalidInput(
        f"{what} column {column!r} holds {kind}, not times: expected a timestamp or date column"
    )


def _check_columns(table: Any, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InvalidInput(
            f"{what} has no column {', '.join(repr(c) for c in missing)}; its columns: "
            f"{', '.join(table.column_names[:20])}"
        )


def _numbered(table: Any, column: str) -> Any:
    import pyarrow as pa

    return table.append_column(column, pa.array(range(table.num_rows), pa.int64()))


def _cast_time(column: str, kind: str | None, common: str) -> str:
    quoted = f'"{column}"'
    if common == "utc":
        return f"CAST({quoted} AS TIMESTAMPTZ)"
    return f"CAST({quoted} AS TIMESTAMP)"


def point_in_time_join(
    entities: Any,
    views: list[ViewFrame],
    *,
    key: str,
    timestamp: str,
    as_of: dt.datetime | None = None,
) -> Any:
    """The entity rows (in their order) with each view's features as of each row's time.

    ``entities`` has the entity ``key`` and ``timestamp`` columns (and any others: labels,
    kept as they are). Returns a pyarrow table: the entity columns, then each view's
    feature columns. Raises InvalidInput for missing columns, non-time columns, a mix of
    zoned and naive times, or clashing output names."""
    import duckdb

    left = _arrow(entities, "the entity table")
    _check_columns(left, [key, timestamp], "the entity table")
    kinds = {_time_kind(left, timestamp, "the entity table's time")}
    frames = []
    outputs = set(left.column_names)
    for view in views:
        table = _arrow(view.table, f"view {view.name}")
        wanted = [view.key, view.timestamp, *view.features] + ([view.created] if view.created else [])
        _check_columns(table, wanted, f"view {view.name}")
        kinds.add(_time_kind(table, view.timestamp, f"view {view.name}'s event time"))
        if view.created:
            _time_kind(table, view.created, f"view {view.name}'s created time")
        for feature in view.features:
            out = view.rename.get(feature, feature)
            if out in outputs:
                raise InvalidInput(
                    f"feature {out!r} of view {view.name} clashes with a column already in the "
                    "training set: rename it or leave one out"
                )
            outputs.add(out)
        if (view.as_of or as_of) is not None and not view.created:
            raise InvalidInput(
                f"as_of needs to know when each feature row was created, and view {view.name} "
                "has no created timestamp column"
            )
        frames.append(table)
    if len(kinds) > 1:
        raise InvalidInput(
            "the entity and feature times mix time zones and naive times: give every time "
            "column a zone (UTC), or none"
        )
    common = kinds.pop() or "naive"
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        # positions are numbered here, not by row_number() OVER (): a parallel scan need
        # not keep the table's order
        con.register("entities_in", _numbered(left, ROW))
        con.execute(
            f"CREATE TEMP TABLE entities AS SELECT *, "
            f"{_cast_time(timestamp, None, common)} AS __keel_t FROM entities_in"
        )
        select = [f'e."{c}"' for c in left.column_names]
        joins = []
        for i, (view, table) in enumerate(zip(views, frames, strict=True)):
            con.register(f"rows_{i}", _numbered(table, FEATURE_ROW))
            cutoff = ""
            moment = view.as_of if view.as_of is not None else as_of
            if moment is not None:
                stamp = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
                cutoff = (
                    f"WHERE CAST(\"{view.created}\" AS TIMESTAMPTZ) <= "
                    f"TIMESTAMPTZ '{stamp.astimezone(dt.UTC).isoformat()}'"
                )
            # one row per (key, event time): the tie-break
            created = f'"{view.created}" DESC NULLS LAST, ' if view.created else ""
            con.execute(
                f"CREATE TEMP TABLE keys_{i} AS SELECT \"{view.key}\" AS k, "
                f"{_cast_time(view.timestamp, None, common)} AS t, {FEATURE_ROW} AS r FROM ("
                f"SELECT *, row_number() OVER (PARTITION BY \"{view.key}\", \"{view.timestamp}\" "
                f"ORDER BY {created}{FEATURE_ROW} DESC) AS __keel_rank FROM rows_{i} {cutoff}"
                f") WHERE __keel_rank = 1 AND \"{view.timestamp}\" IS NOT NULL "
                f"AND \"{view.key}\" IS NOT NULL"
            )
            within = ""
            if view.ttl is not None:
                seconds = view.ttl.total_seconds()
                within = f" AND e.__keel_t - f.t <= INTERVAL '{seconds} seconds'"
            con.execute(
                f"CREATE TEMP TABLE match_{i} AS SELECT e.{ROW}, "
                f"CASE WHEN f.r IS NOT NULL{within} THEN f.r END AS r "
                f'FROM entities e ASOF LEFT JOIN keys_{i} f ON e."{key}" = f.k AND e.__keel_t >= f.t'
            )
            joins.append(
                f"LEFT JOIN match_{i} m{i} ON m{i}.{ROW} = e.{ROW} "
                f"LEFT JOIN rows_{i} v{i} ON v{i}.{FEATURE_ROW} = m{i}.r"
            )
            select += [
                f'v{i}."{feature}" AS "{view.rename.get(feature, feature)}"'
                for feature in view.features
            ]
        query = f"SELECT {', '.join(select)} FROM entities e {' '.join(joins)} ORDER BY e.{ROW}"
        return con.sql(query).to_arrow_table()
    except duckdb.Error as exc:  # a key of another type, a column DuckDB cannot compare
        raise InvalidInput(f"the point-in-time join failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
