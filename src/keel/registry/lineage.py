"""Lineage: from a model version back to the data, code, environment and run that made it;
from a dataset version forward to every run and model that used it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select

from keel.store.db import model_versions, models, run_inputs, runs

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["evaluation_summary", "lineage"]


def _node(kind: str, ref: str, **attrs: Any) -> dict[str, Any]:
    return {"id": f"{kind}:{ref}", "kind": kind, "ref": ref, **attrs}


def lineage(ws: Workspace, ref: str, *, at: float | None = None) -> dict[str, Any]:
    """The graph around ``ref``: a model (``churn/v4``, ``churn@champion``, ``churn``) or a
    dataset version (``churn@v3``). Returns {"root": id, "nodes": [...], "edges": [...]}.

    With ``at`` (a time), ``ref`` is an alias read from the event log as it was then: the
    graph is its version's, with the alias move that put it there and the loop attempt
    that rolled it out (its trigger, gate decision and rollout steps) under ``"at"``."""
    if at is not None:
        return _lineage_at(ws, ref, at)
    from keel.data.catalog import resolve, version_id
    from keel.errors import NotFound
    from keel.registry.versions import resolve_model
    from keel.track.records import get_run

    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, str]] = []

    def add(node: dict[str, Any]) -> str:
        nodes.setdefault(node["id"], node)
        return str(node["id"])

    def edge(src: str, dst: str, rel: str) -> None:
        edges.append({"from": src, "to": dst, "relation": rel})

    def run_upstream(run_id: str) -> str:
        rec = get_run(ws, run_id)
        rid = add(
            _node(
                "run",
                rec.id[:8],
                id_full=rec.id,
                name=rec.name,
                status=rec.status,
                params=rec.params,
                metrics={k: v["last"] for k, v in rec.metrics.items()},
            )
        )
        code = rec.code
        if code.get("commit"):
            cid = add(
                _node(
                    "code",
                    code["commit"][:12],
                    commit=code["commit"],
                    branch=code["branch"],
                    dirty=code["dirty"],
                    patch=code["patch_oid"],
                    untracked=code["untracked_oid"],
                )
            )
            edge(cid, rid, "ran")
        env = rec.environment
        if env is not None:
            eid = add(
                _node(
                    "environment",
                    (rec.environment_oid or "")[:12],
                    python=env.get("python"),
                    platform=env.get("platform"),
                    packages=len(env.get("packages", {})),
                )
            )
            edge(eid, rid, "ran in")
        for item in rec.inputs:
            did = add(_node("dataset", item["ref"], digest=item["digest"]))
            edge(did, rid, "input of")
            features_upstream(item["ref"], did)
        return rid

    def features_upstream(dataset_ref: str, did: str) -> None:
        """A dataset version built from features: the feature versions, their sources and
        the entity table it was made from."""
        made = _made_from(ws, dataset_ref)
        for view in made["features"]:
            fid = add(_node("feature", view["ref"], feature_kind=view["kind"], digest=view["digest"]))
            edge(fid, did, "built into")
            if view["source"]:
                sid = add(_node("dataset", view["source"]))
                edge(sid, fid, "source of")
            for input_ref in view["inputs"]:
                edge(add(_node("feature", input_ref)), fid, "input of")
        for entities in made["entities"]:
            edge(add(_node("dataset", entities)), did, "entities of")

    is_dataset = "@v" in ref and ref.split("@v", 1)[1].isdecimal() and "/" not in ref
    if is_dataset:
        version = resolve(ws, ref)
        root = add(_node("dataset", version.ref, digest=version.digest))
        with ws.db.read() as conn:
            vid = version_id(conn, version.name, version.number)
            used = conn.execute(
                select(runs.c.id, runs.c.pk)
                .join(run_inputs, run_inputs.c.run_pk == runs.c.pk)
                .where(run_inputs.c.dataset_version_id == vid)
                .order_by(runs.c.created_at)
            ).all()
            produced = conn.execute(
                select(models.c.name, model_versions.c.number, model_versions.c.run_pk)
                .join(models, models.c.id == model_versions.c.model_id)
                .where(model_versions.c.run_pk.in_([pk for _, pk in used]))
            ).all()
        by_pk = {pk: rid for rid, pk in used}
        for run_id, _pk in used:
            rid = add(_node("run", run_id[:8], id_full=run_id))
            edge(root, rid, "input of")
        for name, number, run_pk in produced:
            mid = add(_node("model", f"{name}/v{number}"))
            edge(f"run:{by_pk[run_pk][:8]}", mid, "produced")
        for judged in _judged_on(ws, vid):
            jid = add(_node(judged["kind"], judged["id"][:8], **judged["summary"]))
            edge(root, jid, judged["relation"])
            for model_ref in judged["models"]:
                edge(add(_node("model", model_ref)), jid, "judged by")
        features_upstream(version.ref, root)
        for view in _fed(ws, vid):
            fid = add(_node("feature", view["ref"], feature_kind=view["kind"]))
            edge(root, fid, "source of")
            for built in view["built"]:
                edge(fid, add(_node("dataset", built)), "built into")
        return {"root": root, "nodes": list(nodes.values()), "edges": edges}

    try:
        mv = resolve_model(ws, ref)
    except NotFound:
        if "@" not in ref and "/" not in ref:
            return lineage(ws, resolve(ws, ref).ref)  # a dataset's head
        raise
    root = add(
        _node(
            "model",
            mv.ref,
            digest=mv.oid,
            flavor=mv.flavor,
            format=mv.format,
            aliases=mv.aliases,
            frameworks=mv.frameworks,
        )
    )
    if mv.run_id is not None:
        rid = run_upstream(mv.run_id)
        edge(rid, root, "produced")
        for step in _pipeline_steps(ws, mv.run_id, mv.ref):
            sid = add(
                _node(
                    "run",
                    step["run"][:8],
                    id_full=step["run"],
                    name=step["name"],
                    status=step["status"],
                    step=step["step"],
                )
            )
            edge(sid, rid, "step" if step["here"] else "reused step")
            if step["made_model"]:
                edge(sid, root, "trained")
    for judged in _judgements(ws, mv):
        jid = add(_node(judged["kind"], judged["id"][:8], **judged["summary"]))
        edge(root, jid, "judged by")
    return {"root": root, "nodes": list(nodes.values()), "edges": edges}


def _pipeline_steps(ws: Workspace, run_id: str, model_ref: str) -> list[dict[str, Any]]:
    """The steps of a pipeline run (keel.pipeline): each step's run (the one that made its
    output, an earlier one when the step was reused), and which of them made the model."""
    from keel.store.db import object_refs, run_tags
    from keel.track.records import run_steps

    with ws.db.read() as conn:
        listed = run_steps(conn, run_id)
        if not listed:
            return []
        model_oid = conn.execute(
            select(object_refs.c.owner_id).where(
                and_(object_refs.c.owner_kind == "pipeline_model", object_refs.c.label == model_ref)
            )
        ).scalar()
        steps = []
        for step, status, step_run in listed:
            if not step_run:
                continue
            row = conn.execute(
                select(runs.c.pk, runs.c.name, runs.c.status).where(runs.c.id == step_run)
            ).first()
            if row is None:
                continue
            output = conn.execute(
                select(run_tags.c.value).where(
                    and_(run_tags.c.run_pk == row.pk, run_tags.c.key == "keel.output")
                )
            ).scalar()
            steps.append(
                {
                    "step": step,
                    "run": step_run,
                    "name": row.name,
                    "status": row.status,
                    "here": status != "cached",
                    "made_model": model_oid is not None and output == model_oid,
                }
            )
    return steps


def _judgements(ws: Workspace, mv: Any) -> list[dict[str, Any]]:
    """Evaluations and gate decisions of ``mv`` (the evaluation package writes them)."""
    from keel.store.db import evaluations

    with ws.db.read() as conn:
        vid = conn.execute(
            select(model_versions.c.id)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(and_(models.c.name == mv.name, model_versions.c.number == mv.number))
        ).scalar_one()
        rows = conn.execute(
            select(evaluations.c.id, evaluations.c.kind, evaluations.c.summary)
            .where(
                (evaluations.c.model_version_id == vid) | (evaluations.c.against_version_id == vid)
            )
            .order_by(evaluations.c.created_at)
        ).all()
    return [{"id": r.id, "kind": r.kind, "summary": evaluation_summary(r.summary)} for r in rows]


def _made_from(ws: Workspace, dataset_ref: str) -> dict[str, list[Any]]:
    """What a dataset version built from features was made of (keel.features): the
    feature versions, each with its source and inputs, and the entity tables."""
    import json

    from sqlalchemy.orm import aliased

    from keel.data.catalog import version_id
    from keel.data.names import parse_ref
    from keel.errors import NotFound
    from keel.store.db import (
        dataset_versions,
        datasets,
        feature_lineage,
        feature_view_versions,
        feature_views,
    )

    parsed = parse_ref(dataset_ref)
    if parsed.name is None or parsed.number is None:
        return {"features": [], "entities": []}
    source = aliased(dataset_versions)
    source_set = aliased(datasets)
    with ws.db.read() as conn:
        try:
            vid = version_id(conn, parsed.name, parsed.number)
        except NotFound:
            return {"features": [], "entities": []}
        views = conn.execute(
            select(
                feature_views.c.name,
                feature_view_versions.c.number,
                feature_view_versions.c.kind,
                feature_view_versions.c.digest,
                feature_view_versions.c.definition,
                source_set.c.name.label("source_name"),
                source.c.number.label("source_number"),
            )
            .join(
                feature_view_versions,
                feature_view_versions.c.id == feature_lineage.c.feature_view_version_id,
            )
            .join(feature_views, feature_views.c.id == feature_view_versions.c.view_id)
            .outerjoin(source, source.c.id == feature_view_versions.c.source_version_id)
            .outerjoin(source_set, source_set.c.id == source.c.dataset_id)
            .where(feature_lineage.c.dataset_version_id == vid)
            .order_by(feature_views.c.name)
        ).all()
        entities = conn.execute(
            select(datasets.c.name, dataset_versions.c.number)
            .join(dataset_versions, dataset_versions.c.dataset_id == datasets.c.id)
            .join(feature_lineage, feature_lineage.c.input_version_id == dataset_versions.c.id)
            .where(
                and_(feature_lineage.c.dataset_version_id == vid, feature_lineage.c.role == "entities")
            )
        ).all()
    return {
        "features": [
            {
                "ref": f"{r.name}@v{r.number}",
                "kind": r.kind,
                "digest": r.digest,
                "source": f"{r.source_name}@v{r.source_number}" if r.source_name else None,
                "inputs": sorted(json.loads(r.definition).get("input_versions", {}).values()),
            }
            for r in views
        ],
        "entities": [f"{n}@v{number}" for n, number in entities],
    }


def _fed(ws: Workspace, dataset_version_id: int) -> list[dict[str, Any]]:
    """The feature versions that read a dataset version, and what was built from them."""
    from keel.store.db import (
        dataset_versions,
        datasets,
        feature_lineage,
        feature_view_versions,
        feature_views,
    )

    with ws.db.read() as conn:
        rows = conn.execute(
            select(
                feature_view_versions.c.id,
                feature_views.c.name,
                feature_view_versions.c.number,
                feature_view_versions.c.kind,
            )
            .join(feature_views, feature_views.c.id == feature_view_versions.c.view_id)
            .where(feature_view_versions.c.source_version_id == dataset_version_id)
            .order_by(feature_views.c.name, feature_view_versions.c.number)
        ).all()
        out = []
        for r in rows:
            built = conn.execute(
                select(datasets.c.name, dataset_versions.c.number)
                .join(dataset_versions, dataset_versions.c.dataset_id == datasets.c.id)
                .join(feature_lineage, feature_lineage.c.dataset_version_id == dataset_versions.c.id)
                .where(feature_lineage.c.feature_view_version_id == r.id)
                .order_by(datasets.c.name, dataset_versions.c.number)
            ).all()
            out.append(
                {
                    "ref": f"{r.name}@v{r.number}",
                    "kind": r.kind,
                    "built": [f"{n}@v{number}" for n, number in built],
                }
            )
    return out


def _judged_on(ws: Workspace, dataset_version_id: int) -> list[dict[str, Any]]:
    """The evaluations, gate decisions and drift reports that used a dataset version, oldest
    first: each with the model versions it judged and how it used the data."""
    import json

    from sqlalchemy.orm import aliased

    from keel.store.db import drift_reports, evaluations

    judged_mv = aliased(model_versions)
    judged_model = aliased(models)
    against_mv = aliased(model_versions)
    against_model = aliased(models)
    with ws.db.read() as conn:
        evals = conn.execute(
            select(
                evaluations.c.id,
                evaluations.c.kind,
                evaluations.c.summary,
                evaluations.c.created_at,
                judged_model.c.name,
                judged_mv.c.number,
                against_model.c.name.label("against_name"),
                against_mv.c.number.label("against_number"),
            )
            .join(judged_mv, judged_mv.c.id == evaluations.c.model_version_id)
            .join(judged_model, judged_model.c.id == judged_mv.c.model_id)
            .outerjoin(against_mv, against_mv.c.id == evaluations.c.against_version_id)
            .outerjoin(against_model, against_model.c.id == against_mv.c.model_id)
            .where(evaluations.c.dataset_version_id == dataset_version_id)
        ).all()
        drifts = conn.execute(
            select(
                drift_reports.c.id,
                drift_reports.c.status,
                drift_reports.c.summary,
                drift_reports.c.created_at,
                drift_reports.c.dataset_version_id,
                judged_model.c.name,
                judged_mv.c.number,
            )
            .outerjoin(judged_mv, judged_mv.c.id == drift_reports.c.model_version_id)
            .outerjoin(judged_model, judged_model.c.id == judged_mv.c.model_id)
            .where(
                (drift_reports.c.dataset_version_id == dataset_version_id)
                | (drift_reports.c.current_version_id == dataset_version_id)
            )
        ).all()
    found = []
    for r in evals:
        refs = [f"{r.name}/v{r.number}"]
        if r.against_name is not None:
            refs.append(f"{r.against_name}/v{r.against_number}")
        found.append(
            {
                "id": r.id,
                "kind": r.kind,
                "summary": evaluation_summary(r.summary),
                "relation": "evaluated on",
                "models": refs,
                "at": r.created_at,
            }
        )
    for d in drifts:
        summary = json.loads(d.summary)
        headline = summary.get("headline") if isinstance(summary, dict) else None
        found.append(
            {
                "id": d.id,
                "kind": "drift report",
                "summary": {"status": d.status, "headline": headline},
                "relation": "reference of"
                if d.dataset_version_id == dataset_version_id
                else "compared in",
                "models": [f"{d.name}/v{d.number}"] if d.name is not None else [],
                "at": d.created_at,
            }
        )
    return sorted(found, key=lambda j: j["at"])


def evaluation_summary(text: str) -> dict[str, Any]:
    """An evaluation record's summary, with the verdict as a real boolean.

    Gate records written before the verdict was coerced to ``bool`` hold a numpy
    verdict as the string "True" or "False", and any non-empty string reads as
    true: those are normalised here.

    >>> evaluation_summary('{"promote": "False", "metric": "auc"}')
    {'promote': False, 'metric': 'auc'}
    """
    import json

    doc: dict[str, Any] = json.loads(text)
    if isinstance(doc.get("promote"), str):
        doc["promote"] = doc["promote"].strip().lower() == "true"
    return doc


def _lineage_at(ws: Workspace, ref: str, at: float) -> dict[str, Any]:
    import json
    import time

    from keel.errors import InvalidInput, NotFound
    from keel.registry.versions import alias_history
    from keel.store.db import loop_attempts, loop_events

    name, sep, alias = ref.partition("@")
    if not sep or not alias or (alias.startswith("v") and alias[1:].isdecimal()):
        raise InvalidInput(f"--at reads an alias as it was: expected MODEL@ALIAS, not {ref!r}")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
    move = next(
        (e for e in alias_history(ws, name) if e.name == f"{name}@{alias}" and e.at <= at), None
    )
    if move is None or move.to_target is None:
        raise NotFound(f"{ref} pointed nowhere at {when}")
    number = int(move.to_target)
    graph = lineage(ws, f"{name}/v{number}")
    root = graph["root"]
    moved = {
        "id": f"alias move:{move.id}",
        "kind": "alias move",
        "ref": f"{ref} -> v{number}",
        "at": move.at,
        "by": move.actor,
        "action": move.action,
        "message": move.message,
    }
    graph["nodes"].append(moved)
    graph["edges"].append({"from": moved["id"], "to": root, "relation": "pointed at"})
    with ws.db.read() as conn:
        attempt = conn.execute(
            select(loop_attempts)
            .where(
                and_(
                    loop_attempts.c.model == name,
                    loop_attempts.c.version == number,
                    loop_attempts.c.created_at <= at,
                )
            )
            .order_by(loop_attempts.c.created_at.desc())
            .limit(1)
        ).first()
        story = (
            conn.execute(
                select(loop_events)
                .where(loop_events.c.attempt_id == attempt.id)
                .order_by(loop_events.c.id)
            ).all()
            if attempt is not None
            else []
        )
    info: dict[str, Any] = {
        "time": at,
        "alias": ref,
        "version": f"{name}/v{number}",
        "since": move.at,
        "by": move.actor,
        "action": move.action,
        "message": move.message,
        "attempt": None,
    }
    if attempt is not None:
        events = [
            {
                "at": e.at,
                "kind": e.kind,
                "state": e.state,
                "message": e.message,
                "evidence": json.loads(e.evidence),
            }
            for e in story
        ]
        gate = next((e for e in events if e["kind"] == "gate" or "promote" in e["evidence"]), None)
        info["attempt"] = {
            "id": attempt.id,
            "trigger_id": attempt.trigger_id,
            "trigger": json.loads(attempt.trigger),
            "state": attempt.state,
            "gate": gate["evidence"] if gate is not None else None,
            "events": events,
        }
        node = {
            "id": f"loop attempt:{attempt.id[:8]}",
            "kind": "loop attempt",
            "ref": attempt.id[:8],
            "trigger": attempt.trigger_id,
            "state": attempt.state,
        }
        graph["nodes"].append(node)
        graph["edges"].append({"from": node["id"], "to": root, "relation": "rolled out"})
    graph["at"] = info
    return graph
