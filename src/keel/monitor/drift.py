"""``keel.monitor.drift``: judge a current table against a reference.

>>> import numpy as np, pandas as pd
>>> import keel
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
>>> cur = pd.DataFrame({"x": rng.normal(1.0, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
>>> report = keel.monitor.drift(ref, cur, multivariate=False)
>>> report.drifted_features, round(report.features["x"].statistic, 1)
(['x'], 1.1)
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from keel.errors import InvalidInput, listed
from keel.monitor.cbpe import estimate_performance
from keel.monitor.columns import (
    Column,
    Columns,
    column_from_codes,
    column_from_profile,
    column_from_values,
    column_names,
    is_arrow,
)
from keel.monitor.concept import ChangeDetector, performance_by_chunk
from keel.monitor.decision import DecisionRule
from keel.monitor.feature import FeatureDrift, decide, score_feature
from keel.monitor.multivariate import multivariate_drift
from keel.monitor.report import DriftReport
from keel.monitor.schema import SchemaFinding
from keel.monitor.sources import Side, load_side, read_together

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["drift"]

T = TypeVar("T")


def _names(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _column(side: Side, name: str, kind: str | None) -> tuple[Column | None, str | None]:
    """``name`` of ``side`` as ``kind`` (inferred when None); None when it cannot compare."""
    frame = side.frame
    if frame is None and side.profile is not None:
        stats = side.profile["columns"][name]
        col = column_from_profile(stats)
        if col is None:
            return None, f"{name}: {stats.get('type')} columns are not compared"
        return col, None
    data = side.data()
    inferred, note = data.kind(name)
    col = data.column(name, kind or inferred)
    if note:
        col.notes.append(note)
    return col, None


def _pair(reference: Side, current: Side, name: str) -> tuple[Column, Column] | str:
    """``name`` on both sides, each read by the typing rule of :func:`kind_of`; a side with
    no value present takes the other's kind (nothing there changed type)."""
    ref, why = _column(reference, name, None)
    if ref is None:
        return why or name
    data = current.data()
    kind, note = data.kind(name)
    if kind != ref.kind:
        if not data.present(name):
            kind = ref.kind
        elif reference.frame is not None and not reference.data().present(name):
            ref, _ = _column(reference, name, kind)
    cur = data.column(name, kind)
    if note:
        cur.notes.append(note)
    assert ref is not None
    return ref, cur


def _task(truth: Any, predicted: Any) -> tuple[str, Any, Any]:
    """("classification" | "regression", truth, decisions) from a target and a prediction."""
    import pandas as pd

    y = truth
    classes = pd.unique(y.dropna())
    numeric_pred = pd.api.types.is_numeric_dtype(
        predicted.dtype
    ) and not pd.api.types.is_bool_dtype(predicted.dtype)
    if len(classes) <= 2 and numeric_pred:
        p = predicted.to_numpy(dtype=float, na_value=np.nan)
        if np.nanmin(p) >= 0 and np.nanmax(p) <= 1 and len(set(np.unique(p)) - {0.0, 1.0}):
            positive = sorted(classes, key=str)[-1] if len(classes) else 1
            return "classification", (y == positive).to_numpy(), p >= 0.5
    if not pd.api.types.is_numeric_dtype(y.dtype) or (
        len(classes) <= 20 and set(pd.unique(predicted.dropna())) <= set(classes)
    ):
        return "classification", y.astype(str).to_numpy(), predicted.astype(str).to_numpy()
    return "regression", y.to_numpy(dtype=float), predicted.to_numpy(dtype=float)


def drift(
    reference: Any,
    current: Any,
    *,
    target: str | None = None,
    prediction: str | None = None,
    exclude: str | Iterable[str] | None = None,
    include: str | Iterable[str] | None = None,
    time_column: str | None = None,
    rule: DecisionRule | None = None,
    multivariate: bool = True,
    change_detector: ChangeDetector | None = None,
    chunks: int = 10,
    chunk_size: int | None = None,
    workspace: Workspace | None = None,
    record: bool = True,
    seed: int = 0,
    model: Any = None,
    allow_missing: str | Iterable[str] | None = None,
) -> DriftReport:
    """Judge ``current`` against ``reference``: per-column drift, multivariate drift,
    prediction and target drift, realized or estimated performance.

    ``reference`` and ``current`` may be DataFrames, paths to CSV or Parquet
    files, dataset versions (``churn@v3``: the reference is read from its stored
    profile where the detectors allow) or, for the reference, a model version
    (``churn/v4``, ``churn@champion``: the dataset version it was trained on,
    through lineage) or a stored profile. With a workspace (given, or needed to
    resolve a reference), the report is recorded, linked to what it judged.

    The current table is also judged in consecutive chunks (``chunks`` of them, or of
    ``chunk_size`` rows each), by the same rule, each at its own size.

    ``exclude`` leaves columns out; ``include`` judges only the columns it names (and the
    target and prediction).

    Columns missing, new or of another type are a schema finding (``report.schema``):
    a break, status ``schema``, when the current table lacks an input of the model's
    signature (the reference model version's, or ``model``'s), the named target or
    prediction, or when such a column changed type; ``allow_missing`` names columns
    that may be absent.
    """
    started = time.perf_counter()
    rule = rule or DecisionRule()
    if int(chunks) != chunks or chunks < 0:
        raise InvalidInput(f"invalid chunks {chunks!r}: expected a whole number of 0 or more")
    if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < rule.min_rows):
        raise InvalidInput(
            f"invalid chunk_size {chunk_size!r}: expected a whole number of rows, "
            f"at least {rule.min_rows}"
        )
    used_ws: list[Workspace] = [workspace] if workspace is not None else []

    def ws() -> Workspace:
        if not used_ws:
            from keel.workspace import connect

            used_ws.append(connect())
        return used_ws[0]

    read = read_together(current, reference)
    cur = load_side(current, "current", ws, read=read)
    if cur.profile is not None and cur.table() is None:
        raise InvalidInput("current must be a table (a profile can only be the reference)")
    if cur.table() is None:
        cur.frame = cur.table()
    cur_cols = cur.columns
    ref = load_side(reference, "reference", ws, want=cur_cols, read=read)
    ref_cols = ref.columns
    excluded = _names(exclude)
    included = _names(include)
    for flag, names in (("--exclude", excluded), ("--include", included)):
        unknown = [c for c in names if c not in ref_cols and c not in cur_cols]
        if unknown:
            raise InvalidInput(
                f"{flag} names {unknown[0]!r}, which is in neither table; "
                f"columns: {listed(cur_cols)}"
            )
    if included:  # only these (and the target and prediction) are in scope
        excluded += [c for c in {*ref_cols, *cur_cols} if c not in included]
    for role, col in (("target", target), ("prediction", prediction), ("time", time_column)):
        if col is not None and col not in ref_cols and col not in cur_cols:
            raise InvalidInput(
                f"{role} column {col!r} is in neither table; columns: {listed(cur_cols)}"
            )
    if time_column is not None:
        if time_column not in cur_cols:
            raise InvalidInput(f"time column {time_column!r} is not in the current table")
        cur.frame = _sorted_by(cur.table(), time_column)
    allowed = _names(allow_missing)
    signed = _signed_model(ref, model, ws)
    required = _required(signed, target, prediction)
    unknown = [c for c in allowed if c not in ref_cols and c not in required]
    if unknown:
        raise InvalidInput(
            f"--allow-missing names {unknown[0]!r}, which is neither a reference column nor "
            f"one the model needs; reference columns: {listed(ref_cols)}"
        )
    special = {c for c in (target, prediction, time_column) if c}
    common = [c for c in cur_cols if c in ref_cols]
    excluded = [c for c in excluded if c not in special]
    features = [c for c in common if c not in special and c not in excluded]
    if not common:
        raise InvalidInput(
            f"the reference ({ref.label}) and the current table ({cur.label}) have no column "
            f"in common; reference: {listed(ref_cols, 10)}; current: {listed(cur_cols, 10)}"
        )
    notes: list[str] = list(ref.notes)
    judged: dict[str, FeatureDrift] = {}
    kinds: dict[str, str] = {}
    references: dict[str, Column] = {}
    # Read and wrapped once, before the columns are judged side by side on threads.
    cur.data()
    if ref.profile is None:
        ref.data()

    def judge(name: str) -> tuple[tuple[Column, Column] | str, FeatureDrift | None]:
        pair = _pair(ref, cur, name)
        if isinstance(pair, str):
            return pair, None
        return pair, score_feature(name, pair[0], pair[1], rule)

    for name, (pair, verdict) in zip(features, _each(judge, features, cur.rows), strict=True):
        if isinstance(pair, str):
            notes.append(pair)
            continue
        assert verdict is not None
        judged[name] = verdict
        kinds[name] = pair[1].kind
        references[name] = pair[0]
    extras: dict[str, FeatureDrift] = {}
    for role, col in (("target", target), ("prediction", prediction)):
        if col is not None and col in common:
            pair = _pair(ref, cur, col)
            if not isinstance(pair, str):
                extras[role] = verdict = score_feature(col, pair[0], pair[1], rule, role=role)
                if role == "target" and "missing_rate" in verdict.scores:
                    # Outcomes arrive late: a row without one yet is not a changed target.
                    share = verdict.scores.pop("missing_rate").details.get("current", 0.0)
                    verdict.notes.append(
                        f"{1 - share:.1%} of current rows have an outcome; the rest are left "
                        "out (a missing outcome is not target drift)"
                    )
    if prediction is not None and prediction in cur_cols and prediction not in ref_cols:
        made = _predicted_reference(ref, cur, prediction, signed, rule, ws)
        if isinstance(made, str):
            notes.append(made)
        else:
            extras["prediction"] = made
    tests = decide([*judged.values(), *extras.values()], rule)

    report = DriftReport(
        id=uuid.uuid4().hex,
        reference=ref.label,
        current=cur.label,
        rows=(ref.rows, cur.rows),
        features=judged,
        rule=rule,
        tests=tests,
        target=extras.get("target"),
        prediction=extras.get("prediction"),
        reference_only=[c for c in ref_cols if c not in cur_cols and c not in excluded],
        current_only=[c for c in cur_cols if c not in ref_cols and c not in excluded],
        notes=notes,
        schema=SchemaFinding(
            missing=[c for c in ref_cols if c not in cur_cols and (c not in excluded or c in required)],
            new=[c for c in cur_cols if c not in ref_cols and c not in {*excluded, *special}],
            retyped=[
                {"name": f.name, "reference": f.kind.split("/")[0], "current": f.kind.split("/")[-1]}
                for f in judged.values()
                if f.status == "type changed"
            ],
            required=required,
            allowed=allowed,
            signature=signed.ref if signed is not None else None,
            absent=[c for c in required if c not in cur_cols and c not in allowed],
        ),
        model=ref.model.ref if ref.model is not None else None,
        dataset=ref.dataset.ref if ref.dataset is not None else None,
        created_at=time.time(),
    )
    current_table = cur.table()
    multivariate_result: Callable[[], Any] | None = None
    if multivariate and kinds:
        if ref.table() is None:
            report.notes.append("multivariate drift needs the reference table; only a profile")
        else:
            cols = [c for c in judged if judged[c].status not in ("type changed", "identifier")]
            ref_data, cur_data = ref.data(), cur.data()
            multivariate_result = _beside(
                lambda: multivariate_drift(ref_data, cur_data, cols, kinds, seed=seed), cur.rows
            )
    report.over_time = _over_time(judged, references, cur.data(), rule, chunks, chunk_size, seed)
    if multivariate_result is not None:
        report.multivariate = multivariate_result()
    _performance(report, ref, current_table, target, prediction, change_detector, chunks)
    report.seconds = time.perf_counter() - started
    if record and used_ws:
        from keel.monitor.records import record_report

        report.record_id = record_report(used_ws[0], report, ref, cur)
    return report


def _predicted_reference(
    ref: Side, cur: Side, name: str, model: Any, rule: DecisionRule, ws: Callable[[], Workspace]
) -> FeatureDrift | str:
    """The current predictions judged against what ``model`` predicts on the reference
    table (without one, the only model trained on a dataset version reference); or why
    they cannot be."""
    from keel.monitor.predictions import models_trained_on, reference_predictions

    unnamed = (
        f"prediction {name} not compared: the reference holds no predictions, and no model "
        "is named to make them (--model, or a model version as the reference)"
    )
    if model is None and ref.dataset is not None:
        trained = models_trained_on(ws(), ref.dataset)
        if len(trained) > 1:
            return (
                f"{unnamed}; several were trained on {ref.dataset.ref}: "
                f"{', '.join(trained[:5])}"
            )
        if trained:
            from keel.registry.versions import resolve_model

            model = resolve_model(ws(), trained[0])  # the only model trained on it
    if model is None:
        return unnamed

    made, why = reference_predictions(model, ref, cur.data(), name)
    if made is None:
        return why
    verdict = score_feature(name, made, cur.data().column(name, made.kind), rule, role="prediction")
    verdict.reference_source = "model"
    verdict.notes.insert(0, why)  # where the reference's predictions came from, first
    return verdict


def _signed_model(ref: Side, model: Any, ws: Callable[[], Workspace]) -> Any:
    """The model version whose signature says what the current table must hold: ``model``
    when given (a reference such as ``churn@champion``, or a ModelVersion), else the
    reference's own model version, if it is one."""
    if model is None:
        return ref.model
    if isinstance(model, str):
        from keel.registry.versions import resolve_model

        return resolve_model(ws(), model)
    if not hasattr(model, "signature") or not hasattr(model, "ref"):
        raise InvalidInput(
            f"model must be a model reference (churn@champion) or a ModelVersion, "
            f"not {type(model).__name__}"
        )
    return model


def _required(model: Any, target: str | None, prediction: str | None) -> dict[str, str]:
    """The columns the current table must have, each with what it is for."""
    required: dict[str, str] = {}
    if model is not None and model.signature:
        from keel.registry.signature import Signature

        for spec in Signature.from_dict(model.signature).columns:
            required[spec.name] = "input"
    for role, name in (("target", target), ("prediction", prediction)):
        if name is not None:
            required[name] = role
    return required


def _sorted_by(table: Any, column: str) -> Any:
    """The table's rows in ``column``'s order (a stable sort, missing values last)."""
    if is_arrow(table):
        import pyarrow.compute as pc

        return table.take(pc.sort_indices(table[column], null_placement="at_end"))
    return table.sort_values(column, kind="stable")


def _frame(table: Any, columns: list[str]) -> Any:
    """``columns`` of a DataFrame or an Arrow table, as a DataFrame."""
    if is_arrow(table):
        return table.select(columns).to_pandas()
    return table[columns]


# Below this many rows a side the columns are judged one after another: threads cost more
# than they save.
PARALLEL_ROWS = 20_000


def _each(work: Callable[[str], T], names: list[str], rows: int) -> list[T]:
    """``work`` on each column, on every core for large tables (the numpy and Arrow
    kernels release the GIL), in the columns' order either way."""
    workers = min(len(names), os.cpu_count() or 1)
    if workers < 2 or rows < PARALLEL_ROWS:
        return [work(name) for name in names]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="keel-drift") as pool:
        return list(pool.map(work, names))


def _beside(work: Callable[[], T], rows: int) -> Callable[[], T]:
    """Start ``work`` on a thread of its own for large tables (it reads only columns
    already converted), and return what waits for its result (or raises its error)."""
    if rows < PARALLEL_ROWS or (os.cpu_count() or 1) < 2:
        done = work()
        return lambda: done
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="keel-drift")
    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future.result


CHUNK_ROWS = 5_000  # numeric values of each chunk judged (a uniform sample of the chunk)


def _chunk_bounds(n: int, chunks: int, chunk_size: int | None, min_rows: int) -> list[Any]:
    """Row ranges of the chunks: ``chunk_size`` rows each (the rest a last, smaller chunk),
    or ``chunks`` chunks of equal size."""
    if chunk_size is not None:
        starts = range(0, n, chunk_size)
        bounds = [np.arange(s, min(s + chunk_size, n)) for s in starts]
    else:
        if chunks < 2:
            return []
        bounds = list(np.array_split(np.arange(n), chunks))
    # A chunk too small to judge stays in the view, marked "not enough data" (never drift),
    # so the chunks still cover the table; a table of one small chunk has no view at all.
    return bounds if any(len(b) >= min_rows for b in bounds) else []


def _over_time(
    judged: dict[str, FeatureDrift],
    references: dict[str, Column],
    table: Columns,
    rule: DecisionRule,
    chunks: int,
    chunk_size: int | None,
    seed: int,
) -> dict[str, Any] | None:
    """Judge consecutive chunks of the current table (in its order: time order with
    ``time_column``, log order for a window) by the same rule as the whole table, each at
    its own size, so a report shows since when a feature drifted, not only that it did.

    Returns what the chunks were and how many (feature, chunk) flags noise alone would
    give; each feature's chunks land in its ``over_time``."""
    n = len(table)
    if n < 2 * rule.min_rows:
        return None
    bounds = _chunk_bounds(n, chunks, chunk_size, rule.min_rows)
    if not bounds:
        return None
    names = [
        name
        for name, f in judged.items()
        if references.get(name) is not None and f.status != "type changed" and f.method
    ]
    # The numeric samples are drawn first, in order, so the view is the same however many
    # threads judge the columns.
    rng = np.random.default_rng(seed)
    samples = {
        name: [
            rows if len(rows) <= CHUNK_ROWS else np.sort(rng.choice(rows, CHUNK_ROWS, replace=False))
            for rows in bounds
        ]
        for name in names
        if references[name].kind == "numeric"
    }

    def judge_chunks(name: str) -> list[FeatureDrift]:
        ref = references[name]
        if ref.kind == "categorical":
            codes, labels = table.codes(name)
            cols: list[Column] = [column_from_codes(codes[rows], labels) for rows in bounds]
        else:
            values = table.numbers(name)[0]
            cols = [column_from_values(values[rows]) for rows in samples[name]]
        return [score_feature(name, ref, col, rule, light=True) for col in cols]

    by_feature = dict(zip(names, _each(judge_chunks, names, n), strict=True))
    flagged = 0
    for i, rows in enumerate(bounds):
        verdicts = {name: chunks[i] for name, chunks in by_feature.items()}
        decide(list(verdicts.values()), rule)
        for name, v in verdicts.items():
            flagged += v.drifted
            judged[name].over_time.append(
                {
                    "chunk": i,
                    "first_row": int(rows[0]),
                    "rows": len(rows),
                    "statistic": v.statistic,
                    "threshold": v.threshold,
                    "p_value": v.p_value,
                    "status": v.status,
                    "drifted": v.drifted,
                    "reasons": v.reasons,
                }
            )
    checks = len(bounds) * len(by_feature)
    return {
        "chunks": len(bounds),
        "chunk_rows": [len(b) for b in bounds],
        "numeric_sample": CHUNK_ROWS,
        "checks": checks,
        "flagged": flagged,
        "false_alarm": rule.false_alarm,
        "expected_false_flags": checks * rule.false_alarm,
    }


def _performance(
    report: DriftReport,
    ref: Side,
    current: Any,
    target: str | None,
    prediction: str | None,
    detector: ChangeDetector | None,
    chunks: int,
) -> None:
    if prediction is None or prediction not in column_names(current):
        return
    has_target = target is not None and target in column_names(current)
    if has_target:
        assert target is not None
        rows = _frame(current, [target, prediction]).dropna()
        if len(rows) < 30:
            report.notes.append(
                f"performance: only {len(rows)} current rows have both target and prediction"
            )
            return
        task, y, p = _task(rows[target], rows[prediction])
        report.performance = performance_by_chunk(y, p, task, chunks=chunks, detector=detector)
        return
    pred = _frame(current, [prediction])[prediction]
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(pred.dtype) or pd.api.types.is_bool_dtype(pred.dtype):
        return
    values = pred.to_numpy(dtype=float, na_value=np.nan)
    finite = values[np.isfinite(values)]
    if not len(finite) or finite.min() < 0 or finite.max() > 1:
        report.notes.append(
            "no target in the current table and the prediction is not a probability: "
            "performance cannot be estimated"
        )
        return
    ref_p = ref_y = None
    ref_table = ref.table()
    if (
        ref_table is not None
        and target is not None
        and {target, prediction} <= set(column_names(ref_table))
    ):
        rows = _frame(ref_table, [target, prediction]).dropna()
        task, ref_y, _ = _task(rows[target], rows[prediction])
        if task == "classification" and np.asarray(ref_y).dtype == bool:
            ref_p = rows[prediction].to_numpy(dtype=float)
            ref_y = np.asarray(ref_y, dtype=float)
    report.estimated_performance = estimate_performance(finite, ref_p, ref_y)
