"""The reference's predictions, made by the model: what prediction drift is judged against.

A training table holds no predictions, so a prediction column in the current table
had nothing to be compared with. When the reference is a model version (its training
data) or a model is named, keel scores the reference table with that model — the way
the server scores a request (:class:`keel.registry.scoring.Scorer`: the positive
class's probability, the number, or the label) — and compares like with like: scores
with scores, labels with labels.

The predictions of a model version on a dataset version are an object (Parquet:
``score``, ``prediction``, ``label``), recorded in ``object_refs`` under
``reference_predictions``, owner ``<model version id>:<dataset version id>``: its
lineage. The next report on the same pair reads them back instead of scoring again.
A file reference is scored each time (nothing names it for good). A reference of more
than ``SCORED_ROWS`` rows is scored on a uniform sample of that many.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import KeelError
from keel.monitor.columns import (
    Column,
    Columns,
    column_from_series,
    column_from_values,
    column_names,
)

if TYPE_CHECKING:
    from keel.monitor.sources import Side
    from keel.registry.versions import ModelVersion
    from keel.workspace import Workspace

__all__ = ["Predictions", "reference_predictions"]

OWNER = "reference_predictions"
# A larger reference is scored on a uniform sample of this many rows: a distribution of
# predictions needs no more, and a large model on a large table would take minutes.
SCORED_ROWS = 200_000


@dataclass
class Predictions:
    """What a model answered for each row of a table."""

    score: Any | None  # positive-class probability (binary classifiers), float64
    prediction: Any  # the answer as a number (NaN where it is a label)
    label: list[str | None] | None  # the answer as text, for non-numeric answers
    source: str = "scored"  # "scored" now, or "cached" (read back)

    def to_parquet(self) -> bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        n = len(self.prediction)
        table = pa.table(
            {
                "score": pa.array(self.score if self.score is not None else [None] * n, pa.float64()),
                "prediction": pa.array(self.prediction, pa.float64()),
                "label": pa.array(self.label if self.label is not None else [None] * n, pa.string()),
            }
        )
        out = io.BytesIO()
        pq.write_table(table, out)
        return out.getvalue()

    @classmethod
    def from_parquet(cls, blob: bytes) -> Predictions:
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(blob))
        score = table["score"]
        label = table["label"]
        return cls(
            score=None if score.null_count == len(score) else score.to_numpy(zero_copy_only=False),
            prediction=table["prediction"].to_numpy(zero_copy_only=False),
            label=None if label.null_count == len(label) else label.to_pylist(),
            source="cached",
        )


def _score(mv: ModelVersion, table: Any) -> Predictions:
    """Score ``table`` with ``mv`` as the server would (its signature's columns, checked):
    every row, or a uniform sample of ``SCORED_ROWS`` of a larger table."""
    from keel.monitor.drift import _frame
    from keel.registry.loading import load_version
    from keel.registry.scoring import Scorer

    assert mv.workspace is not None
    loaded = load_version(mv.workspace, mv)
    sig = loaded.signature
    names = [c.name for c in sig.columns] if sig is not None and sig.columns else None
    frame = _frame(table, names or column_names(table))
    if len(frame) > SCORED_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(len(frame), SCORED_ROWS, replace=False))
        frame = frame.iloc[rows].reset_index(drop=True)
    scored = Scorer(loaded)(loaded.prepare(frame))
    return Predictions(
        score=np.asarray(scored.scores, dtype=float) if scored.scores is not None else None,
        prediction=np.array([np.nan if v is None else v for v in scored.numbers], dtype=float),
        label=scored.labels,
    )


def _owner(ws: Workspace, mv: ModelVersion, dataset: Any) -> str:
    from keel.data.catalog import version_id
    from keel.registry.versions import version_pk

    with ws.db.read() as conn:
        return f"{version_pk(conn, mv)}:{version_id(conn, dataset.name, dataset.number)}"


def _cached(ws: Workspace, owner: str) -> Predictions | None:
    from sqlalchemy import and_, select

    from keel.store.db import object_refs

    with ws.db.read() as conn:
        oid = conn.execute(
            select(object_refs.c.oid).where(
                and_(object_refs.c.owner_kind == OWNER, object_refs.c.owner_id == owner)
            )
        ).scalar()
    return Predictions.from_parquet(ws.objects.get(oid)) if oid is not None else None


def _store(ws: Workspace, owner: str, label: str, predictions: Predictions) -> None:
    from sqlalchemy.exc import IntegrityError

    from keel.store.db import object_refs

    with ws.writing_objects():
        oid = ws.objects.put(predictions.to_parquet())
        ws.objects.commit()
        try:
            ws.db.write(
                lambda conn: conn.execute(
                    object_refs.insert().values(
                        owner_kind=OWNER,
                        owner_id=owner,
                        role="predictions",
                        oid=oid,
                        shape="blob",
                        label=label[:300],
                    )
                )
            )
        except IntegrityError:
            pass  # another process recorded the same predictions first


def models_trained_on(ws: Workspace, dataset: Any) -> list[str]:
    """The model versions (``churn/v2``) whose runs used ``dataset`` (a DatasetVersion)."""
    from sqlalchemy import select

    from keel.data.catalog import version_id
    from keel.store.db import model_versions, models, run_inputs

    with ws.db.read() as conn:
        vid = version_id(conn, dataset.name, dataset.number)
        rows = conn.execute(
            select(models.c.name, model_versions.c.number)
            .join(models, models.c.id == model_versions.c.model_id)
            .join(run_inputs, run_inputs.c.run_pk == model_versions.c.run_pk)
            .where(run_inputs.c.dataset_version_id == vid)
            .order_by(models.c.name, model_versions.c.number)
        ).all()
    return [f"{name}/v{number}" for name, number in rows]


def reference_predictions(
    mv: ModelVersion, side: Side, current: Columns, name: str
) -> tuple[Column | None, str]:
    """The reference's predictions by ``mv``, as a column of the kind of the current table's
    ``name`` (scores, numbers or labels), and a note saying where they came from; None and
    the reason when they cannot be made."""
    ws = mv.workspace
    owner = None
    found = None
    if ws is not None and side.dataset is not None:
        owner = _owner(ws, mv, side.dataset)
        found = _cached(ws, owner)
    if found is None:
        table = side.table()
        if table is None:
            return None, f"prediction: {side.label} has no table to score with {mv.ref}"
        try:
            found = _score(mv, table)
        except KeelError as exc:
            return None, f"prediction: {mv.ref} could not score {side.label}: {exc}"
        except Exception as exc:  # noqa: BLE001 - the model's own code: any error, said in the report
            first = (str(exc).strip().splitlines() or [""])[0]
            return None, (
                f"prediction: {mv.ref} could not score {side.label}: {type(exc).__name__}: {first}"
            )
        if ws is not None and owner is not None:
            _store(ws, owner, f"{mv.ref} on {side.dataset.ref}", found)  # type: ignore[union-attr]
    kind, _ = current.kind(name)
    scored = len(found.prediction)
    sample = f"a uniform sample of {scored:,} rows of " if scored < side.rows else ""
    where = f"{mv.ref} on {sample}{side.label}" + (", read back" if found.source == "cached" else "")
    if kind == "numeric":
        values = current.numbers(name)[0]
        finite = values[np.isfinite(values)]
        probability = len(finite) and finite.min() >= 0 and finite.max() <= 1
        if found.score is not None and probability and np.any((finite > 0) & (finite < 1)):
            return column_from_values(found.score), f"reference: scores of {where}"
        if np.isfinite(found.prediction).any():
            return column_from_values(found.prediction), f"reference: predictions of {where}"
        return None, f"prediction: {mv.ref} answers labels, the current {name} holds numbers"
    import pandas as pd

    answers = found.label if found.label is not None else [_number(v) for v in found.prediction]
    return column_from_series(pd.Series(answers, dtype=object), "categorical"), (
        f"reference: predictions of {where}"
    )


def _number(value: float) -> str | None:
    """A numeric answer as the label text a served log would hold (1.0 -> "1")."""
    if not np.isfinite(value):
        return None
    return str(int(value)) if float(value).is_integer() else str(value)
