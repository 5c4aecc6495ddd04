"""Training/serving skew: what a model was served against what training would have given it.

``keel features skew churn@champion`` takes a sample of the model's logged requests
(the entity key, the time and the feature values the server looked up or computed) and
recomputes each feature offline: the point-in-time join a training set makes, for that
entity at that request's time, by the model's own feature definitions over their newest
source data (the newest version of each view with the same code and parameters), and
on-demand features by their recorded functions. Per feature it reports the share of
rows whose served value differs and the size of the difference.

A served value differs from the offline one when exactly one is null, or when both are
numbers further apart than 1e-9 of the larger (float noise is no skew), or when they are
not equal otherwise. Causes it finds: an online table built from another version of a
view, an online table not rebuilt since the source moved (stale values), a feature
computed differently online.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.features.versions import FeatureVersion
    from keel.workspace import Workspace

__all__ = ["measure_skew"]

_AT = "__keel_at"
_OFFLINE = "__keel_offline_"


def _offline_version(ws: Workspace, ref: str) -> tuple[FeatureVersion, FeatureVersion]:
    """(the version the model was trained on, the newest with the same definition)."""
    from keel.features.versions import history, resolve_feature

    trained = resolve_feature(ws, ref)
    same = [
        v for v in history(ws, trained.name)
        if v.number >= trained.number and not v.changed_from(trained)
    ]  # fmt: skip
    return trained, (same[0] if same else trained)


def _sample(
    ws: Workspace, model: str, version: int, columns: list[str], since: float | None,
    sample: int, seed: int,
) -> tuple[Any, int]:  # fmt: skip
    """Up to ``sample`` served, error-free requests of ``model/vN`` (a uniform sample) with
    ``ts`` and the ``input_`` columns asked for, and how many there were."""
    import duckdb

    db = duckdb.connect()
    try:
        preds = ws.logs.scan("predictions", model, since, conn=db)
        if preds is None:
            return None, 0
        present = set(preds.columns)
        missing = [c for c in columns if f"input_{c}" not in present]
        if missing:
            raise InvalidInput(
                f"the prediction log of {model}/v{version} has no {', '.join(missing)}: it "
                "was not served by entity key (keel serve logs the features it looks up)"
            )
        db.register("preds", preds)
        where = [f"version = {int(version)}", "prediction_id IS NOT NULL"]
        if "served" in present:
            where.append("served")
        if "error" in present:
            where.append("error IS NULL")
        select = ", ".join(["ts", *(f'"input_{c}" AS "{c}"' for c in columns)])
        db.execute(f"CREATE TEMP VIEW logged AS SELECT {select} FROM preds WHERE {' AND '.join(where)}")
        total = int(db.sql("SELECT count(*) FROM logged").fetchall()[0][0])
        if total == 0:
            return None, 0
        cut = (
            f" USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE ({int(seed)})"
            if total > sample
            else ""
        )
        table = db.sql(f"SELECT * FROM (SELECT * FROM logged{cut}) ORDER BY ts").to_arrow_table()
        return table, total
    finally:
        db.close()


def _left(rows: Any, key: str, key_type: Any, zoned: bool) -> Any:
    """The sampled requests as entity rows of one view's join: its key, the request time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    times = rows.column("ts")
    if not zoned:
        times = pc.cast(pc.cast(times, pa.timestamp("us", tz="UTC")), pa.int64()).cast(
            pa.timestamp("us")
        )
    try:
        keys = rows.column(key).cast(key_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        keys = pa.array([None if k is None else str(k) for k in rows.column(key).to_pylist()]).cast(key_type)
    return pa.table({key: keys, _AT: times})


def _differs(served: Any, offline: Any) -> tuple[bool, float | None]:
    """(whether they differ, |difference| when both are numbers)."""
    if isinstance(served, float) and math.isnan(served):
        served = None
    if isinstance(offline, float) and math.isnan(offline):
        offline = None
    if served is None or offline is None:
        return (served is None) != (offline is None), None
    numbers = (int, float)
    if isinstance(served, numbers) and isinstance(offline, numbers) and not isinstance(served, bool):
        from keel.data.diff import within_float_noise

        served, offline = float(served), float(offline)
        return not within_float_noise(served, offline), abs(served - offline)
    return str(served) != str(offline), None


def measure_skew(
    ws: Workspace,
    model: str,
    version: int,
    needs: dict[str, Any],
    *,
    since: float | None = None,
    sample: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Per feature of model ``model/vN`` (``needs``: its signature's features), the share of
    a sample of its logged requests whose served value differs from the offline one."""
    import pyarrow as pa

    from keel.features.build import _ttl, computed, view_rows
    from keel.features.pit import ViewFrame, point_in_time_join
    from keel.features.versions import resolve_feature

    if sample < 1:
        raise InvalidInput(f"invalid sample {sample}: expected a number of requests, at least 1")
    views = needs.get("views", [])
    on_demand = needs.get("on_demand", [])
    keys = list(needs.get("entities", {}))
    features = [c for v in views for c in v["columns"]] + [d["name"] for d in on_demand]
    rows, total = _sample(ws, model, version, [*keys, *features], since, sample, seed)
    report: dict[str, Any] = {
        "model": f"{model}/v{version}",
        "since": since,
        "logged": total,
        "compared": 0 if rows is None else rows.num_rows,
        "features": [],
        "skewed": [],
    }
    if rows is None:
        return report
    offline: dict[str, list[Any]] = {}
    origin: dict[str, tuple[str, str]] = {}
    for need in views:
        trained, newest = _offline_version(ws, need["ref"])
        table = view_rows(ws, newest)
        stamp = trained.definition["timestamp"]
        kind = table.schema.field(stamp).type
        zoned = pa.types.is_timestamp(kind) and bool(kind.tz)
        key = need["key"]
        left = _left(rows, key, table.schema.field(key).type, zoned)
        frame = ViewFrame(
            trained.name,
            table,
            key,
            stamp,
            list(need["columns"]),
            _ttl(trained),
            trained.definition.get("created"),
            rename={c: f"{_OFFLINE}{c}" for c in need["columns"]},
            ties="values",
        )
        joined = point_in_time_join(left, [frame], key=key, timestamp=_AT)
        for c in need["columns"]:
            offline[c] = joined.column(f"{_OFFLINE}{c}").to_pylist()
            origin[c] = (trained.ref, newest.ref)
    served = {c: rows.column(c).to_pylist() for c in rows.column_names if c != "ts"}
    for need in on_demand:
        reads = [c for v in views if v["name"] in need["inputs"] for c in v["columns"]]
        # each logged request with the offline values in place of the served ones
        requests = [
            {**{c: served[c][i] for c in served}, **{c: offline[c][i] for c in offline}}
            for i in range(rows.num_rows)
        ]
        offline[need["name"]] = computed(ws, resolve_feature(ws, need["ref"]), requests, reads)
        origin[need["name"]] = (need["ref"], need["ref"])
    for feature in features:
        differ = 0
        gaps: list[float] = []
        for a, b in zip(served[feature], offline[feature], strict=True):
            different, gap = _differs(a, b)
            differ += different
            if different and gap is not None:
                gaps.append(gap)
        n = rows.num_rows
        trained_ref, offline_ref = origin[feature]
        report["features"].append(
            {
                "feature": feature,
                "trained_on": trained_ref,
                "offline": offline_ref,
                "compared": n,
                "differ": differ,
                "share": differ / n if n else 0.0,
                "mean_abs_diff": sum(gaps) / len(gaps) if gaps else 0.0,
                "max_abs_diff": max(gaps) if gaps else 0.0,
            }
        )
        if differ:
            report["skewed"].append(feature)
    first, last = rows.column("ts")[0].as_py(), rows.column("ts")[-1].as_py()
    report["first"] = first.isoformat() if isinstance(first, dt.datetime) else first
    report["last"] = last.isoformat() if isinstance(last, dt.datetime) else last
    return report
