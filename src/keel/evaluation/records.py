"""Evaluations as records: the whole result is an object; the row links model, rival and data."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from keel.registry.lineage import evaluation_summary
from keel.registry.versions import version_pk
from keel.store.db import actor, evaluations, object_refs
from keel.store.jsondoc import plain

if TYPE_CHECKING:
    from keel.registry.versions import ModelVersion
    from keel.workspace import Workspace

__all__ = ["evaluations_of", "newest_evaluation", "record_evaluation"]


def record_evaluation(
    ws: Workspace,
    result: Any,
    kind: str,
    model: ModelVersion,
    against: ModelVersion | None,
    dataset_version_id: int | None,
    summary: dict[str, Any] | None = None,
) -> str:
    """Store ``result.to_dict()`` as an object and its record; returns the record id."""
    doc = result.to_dict() if hasattr(result, "to_dict") else result
    blob = json.dumps(doc, sort_keys=True, default=plain, allow_nan=True).encode()
    with ws.writing_objects():
        oid = ws.objects.put(blob)
        ws.objects.commit()
        headline = (
            summary
            if summary is not None
            else {
                "metrics": doc.get("metrics"),
                "outcome": (doc.get("outcome") or {}).get("total"),
                "threshold": doc.get("threshold"),
                "data": doc.get("data"),
            }
        )

        def txn(conn: Any) -> None:
            conn.execute(
                evaluations.insert().values(
                    id=doc["id"],
                    kind=kind,
                    model_version_id=version_pk(conn, model),
                    against_version_id=version_pk(conn, against) if against is not None else None,
                    dataset_version_id=dataset_version_id,
                    summary=json.dumps(headline, sort_keys=True, default=plain),
                    result_oid=oid,
                    created_at=time.time(),
                    created_by=actor(),
                )
            )
            conn.execute(
                object_refs.insert().values(
                    owner_kind="evaluation",
                    owner_id=doc["id"],
                    role="result",
                    oid=oid,
                    shape="blob",
                    label=f"{kind} {doc['id'][:8]} of {model.ref}",
                )
            )

        ws.db.write(txn)
    return str(doc["id"])


def evaluations_of(ws: Workspace, model: ModelVersion) -> list[dict[str, Any]]:
    """Every evaluation and gate decision that judged ``model`` (as challenger or champion)."""
    with ws.db.read() as conn:
        vid = version_pk(conn, model)
        rows = conn.execute(
            select(evaluations)
            .where(
                (evaluations.c.model_version_id == vid) | (evaluations.c.against_version_id == vid)
            )
            .order_by(evaluations.c.created_at.desc())
        ).all()
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "summary": evaluation_summary(r.summary),
            "created_at": r.created_at,
            "result": r.result_oid,
        }
        for r in rows
    ]


def newest_evaluation(ws: Workspace, model: str, version: int) -> dict[str, Any] | None:
    """The newest offline evaluation of ``model/v{version}`` (as :func:`evaluations_of`
    lists it); None when it has none, or the version is not in the registry (a log
    written by hand, a version since removed)."""
    from keel.errors import NotFound
    from keel.registry.versions import resolve_model

    try:
        mv = resolve_model(ws, f"{model}/v{version}")
    except NotFound:
        return None
    return next((e for e in evaluations_of(ws, mv) if e["kind"] == "evaluation"), None)
