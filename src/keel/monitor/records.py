"""Drift reports as records: the whole report is an object; the row links it to the model
version and the dataset versions it judged."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select

from keel.registry.versions import version_pk
from keel.store.db import actor, drift_reports, model_versions, models, object_refs
from keel.store.jsondoc import plain

if TYPE_CHECKING:
    from keel.monitor.report import DriftReport
    from keel.monitor.sources import Side
    from keel.workspace import Workspace

__all__ = ["drift_reports_of", "latest_report", "record_report"]


def record_report(ws: Workspace, report: DriftReport, reference: Side, current: Side) -> str:
    """Store ``report`` and its record; returns the record id (the report's id)."""
    from keel.data.catalog import version_id

    doc = report.to_dict()
    blob = json.dumps(doc, sort_keys=True, default=plain).encode()
    with ws.writing_objects():
        oid = ws.objects.put(blob)
        ws.objects.commit()

        def txn(conn: Any) -> None:
            ref_v, cur_v = reference.dataset, current.dataset
            conn.execute(
                drift_reports.insert().values(
                    id=report.id,
                    model_version_id=(
                        version_pk(conn, reference.model) if reference.model else None
                    ),
                    dataset_version_id=(
                        version_id(conn, ref_v.name, ref_v.number) if ref_v else None
                    ),
                    current_version_id=(
                        version_id(conn, cur_v.name, cur_v.number) if cur_v else None
                    ),
                    reference=report.reference[:1000],
                    current=report.current[:1000],
                    status=report.status,
                    summary=json.dumps(report.summary(), sort_keys=True, default=plain),
                    result_oid=oid,
                    created_at=report.created_at,
                    created_by=actor(),
                )
            )
            conn.execute(
                object_refs.insert().values(
                    owner_kind="drift_report",
                    owner_id=report.id,
                    role="result",
                    oid=oid,
                    shape="blob",
                    label=f"drift report {report.id[:8]} of {report.current[:80]}",
                )
            )

        ws.db.write(txn)
    return report.id


def drift_reports_of(
    ws: Workspace, *, model: Any = None, dataset: Any = None
) -> list[dict[str, Any]]:
    """Drift reports that judged ``model`` (a ModelVersion) or used ``dataset`` (a
    DatasetVersion) as reference, newest first."""
    from keel.data.catalog import version_id

    query = select(drift_reports).order_by(drift_reports.c.created_at.desc())
    with ws.db.read() as conn:
        if model is not None:
            query = query.where(drift_reports.c.model_version_id == version_pk(conn, model))
        if dataset is not None:
            vid = version_id(conn, dataset.name, dataset.number)
            query = query.where(
                (drift_reports.c.dataset_version_id == vid)
                | (drift_reports.c.current_version_id == vid)
            )
        rows = conn.execute(query).all()
    return [
        {
            "id": r.id,
            "reference": r.reference,
            "current": r.current,
            "status": r.status,
            "summary": json.loads(r.summary),
            "created_at": r.created_at,
            "result": r.result_oid,
        }
        for r in rows
    ]


def latest_report(ws: Workspace, model: str, number: int) -> dict[str, Any] | None:
    """The newest drift report that judged ``model/v{number}``, whole (read from its verified
    object), or None."""
    with ws.db.read() as conn:
        row = conn.execute(
            select(drift_reports.c.result_oid)
            .join(model_versions, model_versions.c.id == drift_reports.c.model_version_id)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(and_(models.c.name == model, model_versions.c.number == number))
            .order_by(drift_reports.c.created_at.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    doc: dict[str, Any] = json.loads(ws.objects.get(row[0]))
    return doc
