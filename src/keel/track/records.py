"""Reading runs back: one run whole, a metric's history, and runs whose process died."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, select, update

from keel.errors import BadRef, NotFound
from keel.store.db import (
    dataset_versions,
    datasets,
    metric_chunks,
    metric_keys,
    model_versions,
    models,
    pointers,
    run_artifacts,
    run_inputs,
    run_metrics,
    run_params,
    run_tags,
    runs,
)
from keel.track.chunks import unpack
from keel.track.keys import VOLATILE_METRICS, VOLATILE_TAG, check_key

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = [
    "MODEL_TAG",
    "VOLATILE_METRICS",
    "VOLATILE_TAG",
    "MetricHistory",
    "RunRecord",
    "format_steps",
    "get_run",
    "mark_crashed",
    "metric_history",
    "parse_steps",
    "resolve_run",
    "run_steps",
]

MODEL_TAG = "keel.model."  # + name: a model a reproduction recorded without registering it
STEPS_TAG = "keel.steps"  # a run's child steps: name=status:run, comma-separated


def format_steps(steps: list[tuple[str, str, str | None]]) -> str:
    """The ``keel.steps`` tag of a run whose steps are runs of their own (a pipeline run):
    each step's name, status and run (the run that made its output).

    >>> format_steps([("load", "cached", "ab12"), ("train", "skipped", None)])
    'load=cached:ab12,train=skipped:'
    """
    return ",".join(f"{name}={status}:{run or ''}" for name, status, run in steps)[:2000]


def run_steps(conn: Connection, run_id: str) -> list[tuple[str, str, str | None]]:
    """The steps a run recorded in its ``keel.steps`` tag (none when it has no such tag)."""
    text = conn.execute(
        select(run_tags.c.value)
        .join(runs, runs.c.pk == run_tags.c.run_pk)
        .where(and_(runs.c.id == run_id, run_tags.c.key == STEPS_TAG))
    ).scalar()
    return parse_steps(text)


def parse_steps(text: str | None) -> list[tuple[str, str, str | None]]:
    """:func:`format_steps` read back.

    >>> parse_steps("load=cached:ab12,train=skipped:")
    [('load', 'cached', 'ab12'), ('train', 'skipped', None)]
    """
    steps = []
    for item in (text or "").split(","):
        name, _, rest = item.partition("=")
        status, _, run = rest.partition(":")
        if name:
            steps.append((name, status, run or None))
    return steps


@dataclass
class RunRecord:
    """Everything recorded about a run."""

    id: str
    name: str
    experiment: str
    status: str
    created_at: float
    ended_at: float | None
    user: str
    host: str
    params: dict[str, Any]
    tags: dict[str, str]
    metrics: dict[str, dict[str, Any]]
    inputs: list[dict[str, Any]]
    artifacts: list[dict[str, Any]]
    code: dict[str, Any]
    command: dict[str, Any]
    seeds: dict[str, int]
    environment_oid: str | None
    error: str | None
    reproduction_of: str | None
    workspace: Workspace | None = field(default=None, repr=False, compare=False)
    pk: int = field(default=0, repr=False)
    # what the run made: versions it registered, and models a reproduction recorded unregistered
    models: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.created_at

    @property
    def environment(self) -> dict[str, Any] | None:
        """Python, platform and packages at run start (recorded in the background)."""
        if self.environment_oid is None or self.workspace is None:
            return None
        doc: dict[str, Any] = json.loads(self.workspace.objects.get(self.environment_oid))
        return doc

    def patch(self) -> bytes | None:
        """The uncommitted changes to tracked files when the run started."""
        oid = self.code.get("patch_oid")
        if oid is None or self.workspace is None:
            return None
        return self.workspace.objects.get(oid)

    def history(self, key: str) -> MetricHistory:
        """Every point of one metric, in step order."""
        assert self.workspace is not None
        return metric_history(self.workspace, self, key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "experiment": self.experiment,
            "status": self.status,
            "created_at": _iso(self.created_at),
            "ended_at": _iso(self.ended_at) if self.ended_at else None,
            "duration_s": self.duration,
            "user": self.user,
            "host": self.host,
            "params": self.params,
            "tags": self.tags,
            "metrics": self.metrics,
            "inputs": self.inputs,
            "artifacts": self.artifacts,
            "code": self.code,
            "command": self.command,
            "seeds": self.seeds,
            "environment": self.environment_oid,
            "error": self.error,
            "reproduction_of": self.reproduction_of,
            "models": self.models,
        }


@dataclass
class MetricHistory:
    """One metric's points: parallel lists of steps, timestamps and values (NaN kept)."""

    key: str
    steps: list[int]
    timestamps: list[float]
    values: list[float]

    def __len__(self) -> int:
        return len(self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "points": [
                {"step": s, "time": t, "value": v}
                for s, t, v in zip(self.steps, self.timestamps, self.values, strict=True)
            ],
        }


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def mark_crashed(conn: Connection, now: float | None = None) -> int:
    """Runs whose process stopped beating for three intervals become ``crashed``."""
    now = time.time() if now is None else now
    result = conn.execute(
        update(runs)
        .where(
            and_(
                runs.c.status == "running",
                runs.c.heartbeat_at < now - 3 * runs.c.heartbeat_interval,
            )
        )
        .values(status="crashed", ended_at=runs.c.heartbeat_at)
    )
    return int(result.rowcount or 0)


def resolve_run(conn: Connection, ref: str, *, latest: bool = False) -> Any:
    """The runs row for a full id, an id prefix (at least 4 characters) or a name.

    A name that more than one run carries is bad input naming them (id, start, whether a
    reproduction), unless ``latest`` picks the newest."""
    text = ref.strip()
    if not text:
        raise BadRef("empty run reference: expected a run id, an id prefix or a run name")
    hexadecimal = all(c in "0123456789abcdef" for c in text)
    if len(text) >= 4 and hexadecimal:
        rows = conn.execute(
            select(runs.c.id).where(runs.c.id.startswith(text, autoescape=True)).limit(20)
        ).all()
        if len(rows) == 1:
            return conn.execute(select(runs).where(runs.c.id == rows[0].id)).one()
        if len(rows) > 1:
            ids = sorted(r.id for r in rows)
            need = 1 + max(_common(a, b) for a, b in itertools.pairwise(ids))
            raise BadRef(
                f"run id prefix {text!r} is ambiguous: {len(ids)}{'+' if len(ids) == 20 else ''} "
                f"runs start with it ({', '.join(i[:need] for i in ids[:5])}"
                f"{', ...' if len(ids) > 5 else ''}); give at least {need} characters"
            )
    rows = conn.execute(
        select(runs).where(runs.c.name == text).order_by(runs.c.created_at.desc()).limit(11)
    ).all()
    if not rows:
        short = hexadecimal and conn.execute(
            select(runs.c.id).where(runs.c.id.startswith(text, autoescape=True)).limit(1)
        ).first()
        hint = (
            f"; run id prefixes need at least 4 characters ({text!r} is {len(text)})"
            if short
            else " (`keel runs list` shows them)"
        )
        raise NotFound(f"no run {text!r}: expected a run id, an id prefix or a run name{hint}")
    if len(rows) > 1 and not latest:
        import time

        listed = "; ".join(
            f"{r.id[:8]} ({time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(r.created_at))}"
            f"{', a reproduction of ' + r.reproduction_of[:8] if r.reproduction_of else ''})"
            for r in rows[:10]
        )
        raise BadRef(
            f"run name {text!r} names {len(rows)}{'+' if len(rows) > 10 else ''} runs, newest "
            f"first: {listed}; give an id, or --latest for the newest"
        )
    return rows[0]


def _common(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _load(conn: Connection, row: Any, ws: Workspace) -> RunRecord:
    pk = row.pk
    params = {
        k: json.loads(v)
        for k, v in conn.execute(
            select(run_params.c.key, run_params.c.value).where(run_params.c.run_pk == pk)
        )
    }
    tags = dict(
        conn.execute(select(run_tags.c.key, run_tags.c.value).where(run_tags.c.run_pk == pk)).all()
    )
    latest = {}
    for r in conn.execute(
        select(metric_keys.c.key, run_metrics)
        .join(metric_keys, metric_keys.c.id == run_metrics.c.key_id)
        .where(run_metrics.c.run_pk == pk)
        .order_by(metric_keys.c.key)
    ):
        latest[r.key] = {
            "last": float("nan") if r.value is None else r.value,
            "min": r.min_value,
            "max": r.max_value,
            "step": r.step,
            "count": r.count,
        }
    inputs = [
        {"ref": f"{r.name}@v{r.number}", "digest": r.digest}
        for r in conn.execute(
            select(datasets.c.name, dataset_versions.c.number, dataset_versions.c.digest)
            .join(dataset_versions, dataset_versions.c.id == run_inputs.c.dataset_version_id)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(run_inputs.c.run_pk == pk)
            .order_by(datasets.c.name, dataset_versions.c.number)
        )
    ]
    artifacts = [
        {"path": r.path, "oid": r.oid, "size": r.size, "chunked": bool(r.chunked)}
        for r in conn.execute(
            select(run_artifacts).where(run_artifacts.c.run_pk == pk).order_by(run_artifacts.c.path)
        )
    ]
    made = _models(conn, pk, tags)
    command = json.loads(row.command)
    folder = command.get("code") or {}
    code = {
        "repo_root": row.repo_root,
        "commit": row.git_commit,
        "branch": row.git_branch,
        "remote": row.git_remote,
        "dirty": bool(row.git_dirty),
        "patch_oid": row.patch_oid,
        "untracked_oid": row.untracked_oid,
        "cwd": row.cwd,
        # outside git: the script and local modules (a tree); in a kernel: the notebook
        "kind": "git" if row.git_commit else ("folder" if folder.get("tree") else None),
        "files_root": folder.get("root"),
        "files_oid": folder.get("tree"),
        "files": folder.get("files", []),
        "files_skipped": folder.get("skipped", []),
        "notebook": command.get("notebook"),
    }
    return RunRecord(
        id=row.id,
        name=row.name,
        experiment=row.experiment,
        status=row.status,
        created_at=row.created_at,
        ended_at=row.ended_at,
        user=row.user,
        host=row.host,
        params=params,
        tags=tags,
        metrics=latest,
        inputs=inputs,
        artifacts=artifacts,
        code=code,
        command=command,
        seeds=json.loads(row.seeds),
        environment_oid=row.environment_oid,
        error=row.error,
        reproduction_of=row.reproduction_of,
        workspace=ws,
        pk=pk,
        models=made,
    )


ARCHIVED = "model.archived"  # a pointer per archived version: ``churn/v3`` (keel models archive)


def _models(conn: Connection, pk: int, tags: dict[str, str]) -> list[dict[str, Any]]:
    """The model versions run ``pk`` registered, then the models it recorded unregistered."""
    rows = conn.execute(
        select(models.c.name, model_versions.c.number, model_versions.c.oid)
        .join(models, models.c.id == model_versions.c.model_id)
        .where(model_versions.c.run_pk == pk)
        .order_by(models.c.name, model_versions.c.number)
    ).all()
    refs = [f"{name}/v{number}" for name, number, _ in rows]
    archived = set()
    if refs:
        archived = set(
            conn.execute(
                select(pointers.c.name).where(
                    and_(pointers.c.kind == ARCHIVED, pointers.c.name.in_(refs))
                )
            ).scalars()
        )
    made: list[dict[str, Any]] = [
        {
            "name": name,
            "version": number,
            "ref": ref,
            "digest": oid,
            "registered": True,
            "archived": ref in archived,
        }
        for (name, number, oid), ref in zip(rows, refs, strict=True)
    ]
    for key in sorted(tags):
        if key.startswith(MODEL_TAG):
            doc = json.loads(tags[key])
            made.append(
                {
                    "name": key[len(MODEL_TAG) :],
                    "version": None,
                    "ref": None,
                    "digest": doc["digest"],
                    "registered": False,
                    "archived": False,
                }
            )
    return made


def get_run(ws: Workspace, ref: str, *, latest: bool = False) -> RunRecord:
    """Read a run back: params, metrics, inputs, code, environment, artifacts, status.

    ``ref`` is an id, an id prefix or a name; a name several runs carry is bad input
    unless ``latest`` (the newest of them)."""
    ws.db.write(lambda conn: mark_crashed(conn))
    with ws.db.read() as conn:
        return _load(conn, resolve_run(conn, ref, latest=latest), ws)


def metric_history(ws: Workspace, run: RunRecord, key: str) -> MetricHistory:
    """Every point of ``key`` in ``run``, ordered by step (and time within a step)."""
    check_key(key)
    with ws.db.read() as conn:
        key_id = conn.execute(select(metric_keys.c.id).where(metric_keys.c.key == key)).scalar()
        if key_id is None or key not in run.metrics:
            known = ", ".join(sorted(run.metrics)) or "none"
            raise NotFound(f"run {run.id[:8]} has no metric {key!r}; its metrics: {known}")
        chunks = conn.execute(
            select(metric_chunks.c.steps, metric_chunks.c.timestamps, metric_chunks.c["values"])
            .where(metric_chunks.c.run_pk == run.pk, metric_chunks.c.key_id == key_id)
            .order_by(metric_chunks.c.seq)
        ).all()
    steps: list[int] = []
    stamps: list[float] = []
    values: list[float] = []
    for s_blob, t_blob, v_blob in chunks:
        s_, t_, v_ = unpack(s_blob, t_blob, v_blob)
        steps += s_
        stamps += t_
        values += v_
    if any(a > b for a, b in itertools.pairwise(steps)):  # logged out of order: sort by step, time
        order = sorted(range(len(steps)), key=lambda i: (steps[i], stamps[i]))
        steps = [steps[i] for i in order]
        stamps = [stamps[i] for i in order]
        values = [values[i] for i in order]
    return MetricHistory(key, steps, stamps, values)
