"""The current window of a served model, read from the log lake with DuckDB.

Only served rows without an error count; only the columns a drift check needs
are read (the ``input_<column>`` inputs, the prediction, ``ts`` and the
prediction id); the time filter prunes hour partitions and row groups, and a
uniform reservoir sample caps what reaches memory, so a window of tens of
millions of rows costs what ``max_rows`` rows cost. The outcomes that arrived
for the sampled predictions (first received wins) become the target, so
realized performance and concept drift can be judged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from keel.workspace import Workspace

__all__ = ["MAX_ROWS", "Window", "read_window"]

MAX_ROWS = 1_000_000


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


@dataclass
class Window:
    """Logged traffic of one model in a time range (or its last N rows), maybe sampled."""

    model: str
    since: float | None
    until: float | None
    last: int | None
    rows: int = 0  # served, error-free rows in the window
    frame: pd.DataFrame | None = field(default=None, repr=False)  # inputs, prediction, target
    first_ts: float | None = None
    last_ts: float | None = None
    versions: list[int] = field(default_factory=list)
    prediction: str | None = None  # column of ``frame`` holding the prediction
    prediction_source: str | None = None  # "score", "prediction" or "label" in the log
    target: str | None = None  # column of ``frame`` holding the outcome, when any arrived
    outcomes: int = 0  # sampled rows with an outcome
    inputs: list[str] = field(default_factory=list)

    @property
    def sampled(self) -> int:
        return 0 if self.frame is None else len(self.frame)

    def describe(self) -> str:
        """``churn predictions 2026-12-02T09:00 .. 10:00 (52,113 rows)``, for reports."""
        span = (
            f"last {self.last:,} rows"
            if self.last is not None
            else f"{_iso(self.since) or 'start'} .. {_iso(self.until) or 'now'}"
        )
        sample = f", sampled {self.sampled:,}" if self.sampled < self.rows else ""
        return f"{self.model} predictions, {span} ({self.rows:,} rows{sample})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
            "last": self.last,
            "rows": self.rows,
            "sampled": self.sampled,
            "first": _iso(self.first_ts),
            "latest": _iso(self.last_ts),
            "versions": self.versions,
            "inputs": self.inputs,
            "prediction": self.prediction_source,
            "outcomes": self.outcomes,
        }


def _free_name(name: str, taken: set[str]) -> str:
    while name in taken:
        name = f"_{name}"
    return name


def read_window(
    ws: Workspace,
    model: str,
    *,
    since: float | None = None,
    until: float | None = None,
    last: int | None = None,
    max_rows: int = MAX_ROWS,
    target: str = "outcome",
    seed: int = 0,
) -> Window:
    """The served, error-free predictions of ``model`` with ``since <= ts < until`` (or the
    ``last`` such rows), a uniform sample of at most ``max_rows`` of them, as a frame whose
    columns are the model's inputs, ``prediction`` (the score when the log has one) and,
    when outcomes arrived, ``target`` (named so it can match the training data's column)."""
    import duckdb

    if max_rows < 1:
        raise InvalidInput(f"invalid max rows {max_rows}: expected at least 1")
    if last is not None and last < 1:
        raise InvalidInput(f"invalid --last {last}: expected a number of rows, at least 1")
    window = Window(model=model, since=since, until=until, last=last)
    db = duckdb.connect()
    preds = ws.logs.scan("predictions", model, since, conn=db)
    if preds is None:
        return window
    columns = set(preds.columns)
    window.inputs = sorted(c[len("input_") :] for c in columns if c.startswith("input_"))
    where = ["prediction_id IS NOT NULL"] if "prediction_id" in columns else []
    if "served" in columns:
        where.append("served")
    if "error" in columns:
        where.append("error IS NULL")
    if until is not None:
        where.append(f"ts < to_timestamp({float(until)!r})")
    db.register("preds", preds)
    outputs = [c for c in ("score", "prediction", "label") if c in columns]
    keep = ["ts", "prediction_id", "version", *outputs, *(f"input_{c}" for c in window.inputs)]
    keep_sql = ", ".join(f'"{c}"' for c in keep if c in columns)
    db.sql(
        f"CREATE TEMP VIEW w0 AS SELECT {keep_sql} FROM preds"
        + (f" WHERE {' AND '.join(where)}" if where else "")
    )
    view = "w0"
    if last is not None:
        cutoff = db.sql(
            f"SELECT epoch_us(min(ts)) FROM (SELECT ts FROM w0 ORDER BY ts DESC LIMIT {int(last)})"
        ).fetchall()[0][0]
        if cutoff is None:
            return window
        db.sql(f"CREATE TEMP VIEW w AS SELECT * FROM w0 WHERE epoch_us(ts) >= {int(cutoff)}")
        view = "w"
    stats = db.sql(
        "SELECT count(*), epoch(min(ts)), epoch(max(ts)), "
        f"list(DISTINCT version ORDER BY version) FROM {view}"
    ).fetchall()[0]
    window.rows = int(stats[0])
    if not window.rows:
        return window
    window.first_ts, window.last_ts = float(stats[1]), float(stats[2])
    window.versions = [int(v) for v in stats[3] if v is not None]
    sample = (
        f" USING SAMPLE reservoir({int(max_rows)} ROWS) REPEATABLE ({int(seed)})"
        if window.rows > max_rows
        else ""
    )
    wanted = [*outputs, *(f"input_{c}" for c in window.inputs), "ts"]
    select = ", ".join(f's."{c}"' for c in wanted)
    outs = ws.logs.scan("outcomes", model, since, conn=db)
    if outs is not None and "prediction_id" in outs.columns:
        db.sql(f"CREATE TEMP TABLE s AS SELECT * FROM {view}{sample}")
        db.register("outs", outs)
        got = set(outs.columns)
        values = [
            f"arg_min({c}, ts) AS {c}" if c in got else f"NULL AS {c}"
            for c in ("outcome", "outcome_label")
        ]
        db.sql(
            "CREATE TEMP TABLE o AS SELECT prediction_id, "
            + ", ".join(values)
            + " FROM outs WHERE prediction_id IN (SELECT prediction_id FROM s) "
            "GROUP BY prediction_id"
        )
        query = (
            f"SELECT {select}, o.outcome, o.outcome_label FROM s "
            "LEFT JOIN o USING (prediction_id) ORDER BY s.ts"
        )
    else:
        # Order matters only for realized performance by chunk, which needs outcomes.
        query = f"SELECT {select} FROM (SELECT * FROM {view}{sample}) s"
    # Through Arrow: several times faster than DuckDB's own DataFrame conversion for text.
    table = db.sql(query).to_arrow_table()
    counts = {
        name: len(col) - col.null_count
        for name, col in zip(table.column_names, table.columns, strict=True)
    }
    present = {name for name, n in counts.items() if n}
    # The output most rows carry, the score first among equals: a window may span versions,
    # one that logs scores and one that does not, and a score on a few rows is no prediction
    # column for the rest.
    logged = [c for c in outputs if counts.get(c, 0)]
    window.prediction_source = max(logged, key=lambda c: counts[c]) if logged else None
    # An input no row of this window carries belongs to other traffic (another version's
    # signature, a routing key of a deployment that ended): not part of this window.
    window.inputs = [c for c in window.inputs if f"input_{c}" in present]
    _shape(window, table.to_pandas(), target)
    return window


def _shape(window: Window, raw: pd.DataFrame, target: str) -> None:
    """Rename ``input_x`` to ``x``; keep the prediction and the outcome under their own names."""
    frame = raw[[f"input_{c}" for c in window.inputs]].copy()
    frame.columns = list(window.inputs)
    taken = set(window.inputs)
    if window.prediction_source is not None:
        window.prediction = _free_name("prediction", taken)
        frame[window.prediction] = raw[window.prediction_source].to_numpy()
        taken.add(window.prediction)
    if "outcome" in raw.columns:
        labels = raw["outcome_label"]
        source = labels if labels.notna().any() else raw["outcome"]
        window.outcomes = int(source.notna().sum())
        if window.outcomes:
            window.target = _free_name(target, taken)
            frame[window.target] = source.to_numpy()
    window.frame = frame.reset_index(drop=True)
