"""Point-in-time joins: for each entity row at time t, each view's latest feature row known at t.

For an entity row (key k, time t) and a feature view with time-to-live ``ttl``, the
feature row joined is the one of key k with the greatest ``event_ts`` such that
``event_ts <= t`` and, when the view has a ttl, ``event_ts >= t - ttl``; none (nulls)
otherwise. Exactly one output row per entity row, in the entity table's order, whatever
the order of either input.

Determinism. Several feature rows of one key may share an ``event_ts``. DuckDB's ASOF
join picks any of them, run to run, so the ties are settled first (when a count of
repeated (key, time) pairs says there are any), by a hash aggregate:
the row with the greatest ``created_ts`` (when the view has one; a row without one
loses) wins, then the one that comes last in the feature table (a later write of the
same instant), or, with ``ties="values"`` (rows whose order means nothing, such as a
query's output), the one whose feature values hash highest. ``as_of`` leaves out feature rows
created after it (needs ``created_ts``), so a training set built twice from the same
inputs is the same.

How. The ASOF join runs on narrow tables (key, time, row number), DuckDB's fastest plan;
the ttl is applied to the row it found, in the select list, in whole microseconds (a
predicate in an ``ASOF LEFT JOIN``'s condition drops left rows: duckdb#17046; interval
arithmetic doubles the join's time); the feature columns are then
gathered by row number (Arrow ``take``), so a wide view costs a copy, not a join. Each view is joined on the entity key and the time
inequality only, never an ``OR`` (duckdb#19027).
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from keel.errors import InvalidInput, listed

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
    # how rows tied on (key, time, created) are settled: "position" (the last given wins)
    # or "values" (by a hash of the feature values: the same whatever order the rows
    # come in; rows equal in every feature are interchangeable)
    ties: str = "position"


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
            f"{listed(table.column_names)}"
        )


def _numbered(table: Any, column: str, positions: Any) -> Any:
    """``table`` with its rows' positions in ``column``, from ``positions`` (0, 1, 2, ...:
    one array made for every table of the join; fresh memory costs more than counting)."""
    import pyarrow as pa

    n = table.num_rows
    # from the buffer: pa.array would import pandas (a quarter of a second) to check for it
    numbers = pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(positions[:n])])
    return table.append_column(column, numbers)


def _cast_time(column: str, kind: str | None, common: str) -> str:
    quoted = f'"{column}"'
    if common == "utc":
        return f"CAST({quoted} AS TIMESTAMPTZ)"
    return f"CAST({quoted} AS TIMESTAMP)"


def _one_per_instant(con: Any, name: str, rows: str, view: ViewFrame, t: str, where: str) -> None:
    """Make table ``name``: one (key, time, row number) per instant of a key, the row its
    ties settle on. The narrow rows first: when no instant repeats among them (a count of
    groups that DuckDB reads from its own table in a third of an aggregate over the view's
    rows) there is nothing to settle and they are the table."""
    key = f'"{view.key}"'
    con.execute(
        f"CREATE TEMP TABLE {name} AS SELECT {key} AS k, {t} AS t, {FEATURE_ROW} AS r "
        f"FROM {rows} {where}"
    )
    repeated = con.sql(
        f"SELECT count(*) FROM (SELECT k, t FROM {name} GROUP BY k, t HAVING count(*) > 1)"
    ).fetchall()[0][0]
    if not repeated:
        return
    # The rank is one number where it can be (a struct costs the aggregate twice the time):
    # the row number, or the values' hash, whose ties are rows equal in every feature,
    # any of which gives the same output.
    settle = [FEATURE_ROW]
    if view.ties == "values":
        values = ", ".join(f'"{f}"' for f in view.features) or FEATURE_ROW
        settle = [f"hash({values})"] + ([FEATURE_ROW] if view.created else [])
    if view.created:
        created = f"coalesce(CAST(\"{view.created}\" AS TIMESTAMPTZ), TIMESTAMPTZ '-infinity')"
        settle.insert(0, created)
    rank = f"({', '.join(settle)})" if len(settle) > 1 else settle[0]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {key} AS k, {t} AS t, "
        f"arg_max({FEATURE_ROW}, {rank}) AS r FROM {rows} {where} GROUP BY {key}, {t}"
    )


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
    import numpy as np

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
    gather = ThreadPoolExecutor(max_workers=2)
    try:
        con.execute("SET TimeZone = 'UTC'")
        # positions are numbered here, not by row_number() OVER (): a parallel scan need
        # not keep the table's order
        positions = np.arange(max(t.num_rows for t in [left, *frames]), dtype=np.int64)
        con.register("entities_in", _numbered(left, ROW, positions))
        con.execute(  # a table, not a view: the join reads its own tables faster than Arrow;
            # of the entity rows only what the join reads (labels stay in Arrow)
            f'CREATE TEMP TABLE entities AS SELECT "{key}", {ROW}, '
            f"{_cast_time(timestamp, None, common)} AS __keel_t FROM entities_in"
        )
        out = left
        for i, (view, table) in enumerate(zip(views, frames, strict=True)):
            con.register(f"rows_{i}", _numbered(table, FEATURE_ROW, positions))
            cutoff = ""
            moment = view.as_of if view.as_of is not None else as_of
            if moment is not None:
                stamp = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
                cutoff = (
                    f"WHERE CAST(\"{view.created}\" AS TIMESTAMPTZ) <= "
                    f"TIMESTAMPTZ '{stamp.astimezone(dt.UTC).isoformat()}'"
                )
            t = _cast_time(view.timestamp, None, common)
            where = f"WHERE \"{view.key}\" IS NOT NULL AND \"{view.timestamp}\" IS NOT NULL"
            if cutoff:
                where += " AND " + cutoff.removeprefix("WHERE ")
            _one_per_instant(con, f"keys_{i}", f"rows_{i}", view, t, where)
            within = ""
            if view.ttl is not None:  # in whole microseconds: interval arithmetic costs
                # the join as much again
                micros = view.ttl // dt.timedelta(microseconds=1)
                within = f" AND epoch_us(e.__keel_t) - epoch_us(f.t) <= {micros}"
            # which feature row each entity row takes, in the entity rows' order; the
            # columns then come by position (a gather), never through a join
            match = con.sql(
                f"SELECT CASE WHEN f.r IS NOT NULL{within} THEN f.r END AS r "
                f'FROM entities e ASOF LEFT JOIN keys_{i} f ON e."{key}" = f.k AND e.__keel_t >= f.t '
                f"ORDER BY e.{ROW}"
            ).to_arrow_table().column("r")
            # column by column on both cores (a gather is memory-bound, and Arrow's lets go
            # of the GIL); the order of the columns is the view's
            rows = match.combine_chunks()
            columns = list(
                gather.map(lambda c, at=rows: c.take(at), table.select(view.features).columns)
            )
            for feature, column in zip(view.features, columns, strict=True):
                out = out.append_column(view.rename.get(feature, feature), column)
        return out
    except duckdb.Error as exc:  # a key of another type, a column DuckDB cannot compare
        raise InvalidInput(f"the point-in-time join failed: {str(exc).splitlines()[0]}") from None
    finally:
        gather.shutdown()
        con.close()
