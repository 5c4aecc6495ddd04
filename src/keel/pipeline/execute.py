"""Running a pipeline: each step a keel run under the pipeline's run, its output an object,
its result reused when its cache key was seen before.

A step's result is kept as a cache entry in ``object_refs`` (``step_cache``, owner the
key, role ``output:<format>``, label ``<run id> <pipeline>.<step>``), written after its
output object is durable. An entry whose object is gone (``keel gc``) is a miss, never an
error. A step that raises ends its run and the pipeline run ``failed`` (the step's name
and traceback recorded); the steps after it do not run, and a rerun reuses the ones that
finished.
"""

from __future__ import annotations

import functools
import json
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError
from keel.pipeline.key import StepKey, step_key
from keel.pipeline.outputs import decode, encode
from keel.pipeline.steps import Pipeline, Step
from keel.track.records import STEPS_TAG, format_steps

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["PipelineRun", "StepFailed", "StepResult", "run_pipeline"]

CACHE = "step_cache"
EXECUTORS = ("local", "dask")
PARTS_INLINE = 2000  # a key's parts up to this long live in a tag (an index holds them)


class StepFailed(KeelError):
    """A step raised: the pipeline run failed there."""

    exit_code = 1


@dataclass
class StepResult:
    """One step of a pipeline run."""

    name: str
    status: str  # finished | cached | failed | skipped
    run: str | None = None  # the run that made the output (an earlier one when cached)
    cached: bool = False
    output: str | None = None  # digest of the output object
    format: str | None = None
    key: str | None = None
    key_parts: dict[str, Any] = field(default_factory=dict)
    not_cacheable: str | None = None
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "status": self.status,
            "run": self.run,
            "cached": self.cached,
            "output": self.output,
            "format": self.format,
            "key": self.key,
            "not_cacheable": self.not_cacheable,
            "seconds": round(self.seconds, 6),
            "error": self.error,
        }


@dataclass
class PipelineRun:
    """A pipeline run: its own keel run, and each step's result in the order they ran."""

    pipeline: str
    run: str
    status: str
    params: dict[str, Any]
    steps: list[StepResult]
    seconds: float = 0.0
    error: str | None = None
    model: str | None = None  # the model version registered (register=), e.g. churn/v5
    _ws: Any = field(default=None, repr=False)

    def output(self, name: str) -> Any:
        """The output of step ``name``, read back from its object."""
        for s in self.steps:
            if s.name == name and s.output is not None and s.format is not None:
                return decode(s.format, self._ws.objects.get(s.output))
        raise KeyError(f"step {name} has no output in this run")

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "run": self.run,
            "status": self.status,
            "params": self.params,
            "seconds": round(self.seconds, 6),
            "error": self.error,
            "model": self.model,
            "steps": [s.to_dict() for s in self.steps],
        }


@functools.cache
def _entry_query() -> Any:
    """The cache entry of a key, built once: a statement built per call costs more than
    the lookup itself (SQLAlchemy derives its cache key every time)."""
    from sqlalchemy import bindparam, select

    from keel.store.db import object_refs

    return select(object_refs.c.role, object_refs.c.oid, object_refs.c.label).where(
        object_refs.c.owner_kind == CACHE, object_refs.c.owner_id == bindparam("key")
    )


def _lookup(ws: Workspace, key: str) -> tuple[str, str, str] | None:
    """``(run id, format, output digest)`` of a cache entry whose object still exists."""
    with ws.db.read() as conn:
        row = conn.execute(_entry_query(), {"key": key}).first()
    if row is None or not ws.objects.has(row.oid):
        return None  # never seen, or its object was collected: run it again
    return row.label.split(" ", 1)[0], row.role.split(":", 1)[1], row.oid


def _finish(
    conn: Any, run_pk: int, tags: dict[str, str], entry: tuple[str, str, str, str] | None
) -> None:
    """A finished step's tags, and its cache entry (replacing one whose object was
    collected), in the caller's transaction."""
    from keel.store.db import object_refs, run_tags

    conn.execute(run_tags.insert(), [{"run_pk": run_pk, "key": k, "value": v} for k, v in tags.items()])
    if entry is None:
        return
    key, fmt, oid, label = entry
    conn.execute(
        object_refs.delete().where(
            (object_refs.c.owner_kind == CACHE) & (object_refs.c.owner_id == key)
        )
    )
    conn.execute(
        object_refs.insert(),
        {
            "owner_kind": CACHE,
            "owner_id": key,
            "role": f"output:{fmt}",
            "oid": oid,
            "shape": "blob",
            "label": label[:300],
        },
    )


def _step_params(s: Step, pipe: Pipeline, params: Mapping[str, Any]) -> dict[str, Any]:
    inputs = set(pipe.inputs(s))
    return {p.name: params[p.name] for p in s.arguments if p.name not in inputs}


def run_pipeline(
    pipe: Pipeline,
    *,
    params: Mapping[str, Any] | None = None,
    workspace: Workspace | None = None,
    explain: bool = False,
    executor: str = "local",
    scheduler: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> PipelineRun:
    """Run ``pipe``, reusing cached steps: in this process, one step at a time
    (``executor="local"``), or as tasks on a Dask cluster (``"dask"``: the scheduler at
    ``scheduler``, else a ``LocalCluster`` started for the run; see
    :mod:`keel.pipeline.cluster`).

    With ``explain``, nothing runs: each step says whether it would be reused, and if not,
    which part of its key changed since the newest run of that step. ``tags`` go on the
    pipeline's run (the loop names the attempt that started it)."""
    if executor not in EXECUTORS:
        raise InvalidInput(f"unknown executor {executor!r}: expected {' or '.join(EXECUTORS)}")
    if scheduler is not None and executor != "dask":
        raise InvalidInput("a scheduler is for the dask executor: add executor='dask'")
    if workspace is None:
        from keel.workspace import connect

        workspace = connect()
    ws = workspace
    values = pipe.resolve_params(params)
    if explain:
        return _explain(pipe, values, ws)
    dask = None
    if executor == "dask":
        from keel.pipeline.cluster import Connection

        dask = Connection(scheduler)  # a scheduler that does not answer: nothing recorded
    where = executor if scheduler is None else f"{executor} {scheduler}"
    try:
        return _run(ws, pipe, values, dask, where, dict(tags or {}))
    finally:
        if dask is not None:
            dask.close()


def _run(
    ws: Workspace,
    pipe: Pipeline,
    values: dict[str, Any],
    dask: Any,
    where: str,
    tags: dict[str, str],
) -> PipelineRun:
    from keel.track.run import start_run

    started = time.perf_counter()
    outputs: dict[str, tuple[str, str]] = {}  # step -> (format, digest)
    loaded: dict[str, Any] = {}
    results: list[StepResult] = []
    parent = start_run(
        f"pipeline {pipe.name}",
        params={k: v for k, v in values.items() if _scalar(v)},
        tags={**tags, "keel.pipeline": pipe.name, "keel.executor": where},
        workspace=ws,
    )
    failed: StepResult | None = None
    try:
        if dask is not None:
            from keel.pipeline.cluster import run_on_dask

            results = run_on_dask(ws, pipe, values, parent.id, dask)
            failed = next((r for r in results if r.status == "failed"), None)
            outputs.update(
                {r.name: (r.format, r.output) for r in results if r.format and r.output}
            )
        for s in pipe.order if dask is None else ():
            if failed is not None:
                results.append(StepResult(s.name, "skipped"))
                continue
            result = _run_step(ws, pipe, s, values, outputs, loaded, parent.id)
            results.append(result)
            if result.status == "failed":
                failed = result
            else:
                assert result.format is not None and result.output is not None
                outputs[s.name] = (result.format, result.output)
    except BaseException as exc:  # Ctrl-C, or keel itself failing: the run says so
        parent.end("killed" if isinstance(exc, KeyboardInterrupt) else "failed", repr(exc))
        raise
    done = PipelineRun(
        pipeline=pipe.name,
        run=parent.id,
        status="failed" if failed else "finished",
        params=values,
        steps=results,
        seconds=time.perf_counter() - started,
        error=f"step {failed.name} failed: {failed.error}" if failed else None,
        _ws=ws,
    )
    if failed is None and pipe.register:
        try:
            done.model = _register(ws, pipe, parent, results, outputs, loaded)
        except KeelError as exc:
            done.status, done.error = "failed", f"register={pipe.register}: {exc}"
    # each step's status and run (a cached step names the run that made its output)
    parent.set_tags({STEPS_TAG: format_steps([(r.name, r.status, r.run) for r in results])})
    parent.end(done.status, done.error)
    done.seconds = time.perf_counter() - started
    return done


def _value(ws: Workspace, name: str, outputs: Mapping[str, Any], loaded: dict[str, Any]) -> Any:
    if name not in loaded:
        fmt, oid = outputs[name]
        loaded[name] = decode(fmt, ws.objects.get(oid))
    return loaded[name]


def _frame_in(value: Any) -> Any:
    """The first DataFrame in ``value`` (itself, or an item of a tuple, list or dict)."""
    import sys

    pd = sys.modules.get("pandas")
    if pd is None:
        return None
    items = value.values() if isinstance(value, dict) else value
    for item in [value] + (list(items) if isinstance(value, tuple | list | dict) else []):
        if isinstance(item, pd.DataFrame):
            return item
    return None


def _register(
    ws: Workspace,
    pipe: Pipeline,
    parent: Any,
    results: list[StepResult],
    outputs: Mapping[str, Any],
    loaded: dict[str, Any],
) -> str:
    """Register the last model a step returned as a version of ``pipe.register`` (from the
    pipeline's run, with the newest metrics a step returned); a model output registered
    before names its version again instead."""
    from sqlalchemy import and_, select

    from keel.store.db import object_refs

    assert pipe.register is not None
    register = pipe.register
    model_step = next(
        (
            r
            for r in reversed(results)
            if r.format == "pickle" and callable(getattr(_value(ws, r.name, outputs, loaded), "predict", None))
        ),
        None,
    )
    if model_step is None or model_step.output is None:
        raise InvalidInput("no step returned a model (an object with a predict method)")
    metrics = next(
        (
            v
            for r in reversed(results)
            if r.format == "json"
            and isinstance(v := _value(ws, r.name, outputs, loaded), dict)
            and v
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v.values())
        ),
        None,
    )
    if metrics:
        parent.log_metrics({k: float(x) for k, x in metrics.items()})
    _inherit_inputs(ws, parent.pk, [r.run for r in results if r.run])
    with ws.db.read() as conn:
        known = conn.execute(
            select(object_refs.c.label).where(
                and_(
                    object_refs.c.owner_kind == "pipeline_model",
                    object_refs.c.owner_id == model_step.output,
                    object_refs.c.role == register[:32],
                )
            )
        ).scalar()
    if known is not None:
        return str(known)  # the same model bytes: its version already exists
    step = next(s for s in pipe.steps if s.name == model_step.name)
    example = None
    for name in pipe.inputs(step):
        frame = _frame_in(_value(ws, name, outputs, loaded))
        if frame is not None:
            drop = [c for c in (pipe.target,) if c is not None and c in frame.columns]
            example = frame.drop(columns=drop).head(5)
            break
    model = _value(ws, model_step.name, outputs, loaded)
    mv = parent.log_model(
        model, register, input_example=example, message=f"pipeline {pipe.name}, run {parent.id[:8]}"
    )
    ws.db.write(
        lambda conn: conn.execute(
            object_refs.insert().values(
                owner_kind="pipeline_model",
                owner_id=model_step.output,
                role=register[:32],
                oid=model_step.output,
                shape="blob",
                label=mv.ref,
            )
        )
    )
    return str(mv.ref)


def _inherit_inputs(ws: Workspace, parent_pk: int, step_runs: list[str]) -> None:
    """The dataset versions the steps used (``run.use``) become inputs of the pipeline's run
    too, the run that logs the model: its lineage, and the monitor's reference, say what
    it was trained on."""
    import time as clock

    from sqlalchemy import select

    from keel.store.db import run_inputs, runs

    def txn(conn: Any) -> None:
        pks = select(runs.c.pk).where(runs.c.id.in_(step_runs))
        used = set(
            conn.execute(
                select(run_inputs.c.dataset_version_id).where(run_inputs.c.run_pk.in_(pks))
            ).scalars()
        )
        have = set(
            conn.execute(
                select(run_inputs.c.dataset_version_id).where(run_inputs.c.run_pk == parent_pk)
            ).scalars()
        )
        rows = [
            {"run_pk": parent_pk, "dataset_version_id": vid, "used_at": clock.time()}
            for vid in sorted(used - have)
        ]
        if rows:
            conn.execute(run_inputs.insert(), rows)

    if step_runs:
        ws.db.write(txn)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _key(pipe: Pipeline, s: Step, values: Mapping[str, Any], outputs: Mapping[str, Any]) -> StepKey:
    inputs = {name: outputs[name][1] for name in pipe.inputs(s)}
    return step_key(s.fn, s.name, _step_params(s, pipe, values), inputs)


def _run_step(
    ws: Workspace,
    pipe: Pipeline,
    s: Step,
    values: Mapping[str, Any],
    outputs: dict[str, tuple[str, str]],
    loaded: dict[str, Any],
    parent: str,
) -> StepResult:
    return execute_step(
        ws,
        pipeline=pipe.name,
        step=s,
        key=_key(pipe, s, values, outputs),
        inputs={name: outputs[name] for name in pipe.inputs(s)},
        params=_step_params(s, pipe, values),
        parent=parent,
        loaded=loaded,
    )


def execute_step(
    ws: Workspace,
    *,
    pipeline: str,
    step: Step,
    key: StepKey,
    inputs: Mapping[str, tuple[str, str]],
    params: Mapping[str, Any],
    parent: str,
    loaded: dict[str, Any],
) -> StepResult:
    """One step, wherever it runs: reused when its key has a cache entry, else run as a keel
    run under ``parent`` on ``inputs`` (``(format, digest)`` by step name, read from the
    object store unless already in ``loaded``), its output stored and its entry written."""
    from keel.track.run import start_run

    s = step
    began = time.perf_counter()
    result = StepResult(s.name, "finished", key=key.digest, key_parts=key.parts)
    result.not_cacheable = key.reason if key.digest is None else None
    if not s.cache:
        result.not_cacheable = "cache=False"
    if key.digest is not None and s.cache:
        hit = _lookup(ws, key.digest)
        if hit is not None:
            result.run, result.format, result.output = hit
            result.status, result.cached = "cached", True
            result.seconds = time.perf_counter() - began
            return result
    arguments = {}
    for name, (fmt, oid) in inputs.items():
        if name not in loaded:
            loaded[name] = decode(fmt, ws.objects.get(oid))
        arguments[name] = loaded[name]
    own = dict(params)
    tags = {"keel.parent": parent, "keel.pipeline": pipeline, "keel.step": s.name}
    if key.digest is not None:
        tags["keel.step_key"] = key.digest
    run = start_run(
        f"{pipeline}.{s.name}",
        params={k: v for k, v in own.items() if _scalar(v)},
        tags=tags,
        workspace=ws,
        capture_code=False,  # the pipeline's run holds the code
        capture_environment=False,  # and the environment
        durable=False,  # the pipeline run's end makes it durable
    )
    result.run = run.id
    try:
        value = s.fn(**arguments, **own)
    except Exception:  # noqa: BLE001 - the step's own code: recorded; the pipeline stops here
        text = traceback.format_exc()
        result.status, result.error = "failed", text.strip().splitlines()[-1]
        run.end("failed", text)  # the run's error holds the whole traceback
        result.seconds = time.perf_counter() - began
        return result
    except BaseException:
        run.end("killed", "interrupted")
        raise
    try:
        fmt, data = encode(value)
    except Exception as exc:  # noqa: BLE001 - an output pickle cannot hold (a lambda, a lock)
        result.status = "failed"
        result.error = f"its output ({type(value).__name__}) cannot be stored: {type(exc).__name__}: {exc}"
        run.end("failed", result.error)
        result.seconds = time.perf_counter() - began
        return result
    # The output made durable; then the run's tags (with the key's parts, for --explain
    # to say later what changed: inline, or an object when long) and the cache entry in
    # one transaction.
    parts = json.dumps(key.parts, sort_keys=True, default=str)
    with ws.writing_objects():
        oid = ws.objects.put(data)
        if len(parts) > PARTS_INLINE:
            parts = ws.objects.put(parts.encode())
        ws.objects.commit()
        entry = None
        if key.digest is not None and s.cache:
            entry = (key.digest, fmt, oid, f"{run.id} {pipeline}.{s.name}")
        ended = {"keel.output": oid, "keel.output_format": fmt, "keel.step_parts": parts}
        run.end("finished", also=lambda conn: _finish(conn, run.pk, ended, entry))
    loaded[s.name] = value
    result.format, result.output = fmt, oid
    result.seconds = time.perf_counter() - began
    return result


def _explain(pipe: Pipeline, values: Mapping[str, Any], ws: Workspace) -> PipelineRun:
    """What a run would do, without running: cached steps, and why the others are not."""
    results: list[StepResult] = []
    outputs: dict[str, tuple[str, str]] = {}
    unknown: set[str] = set()  # steps whose output is not known without running them
    for s in pipe.order:
        upstream = [n for n in pipe.inputs(s) if n in unknown]
        if upstream:
            results.append(
                StepResult(s.name, "would run", error=f"its input {upstream[0]} would run")
            )
            unknown.add(s.name)
            continue
        key = _key(pipe, s, values, outputs)
        hit = _lookup(ws, key.digest) if key.digest is not None and s.cache else None
        if hit is not None:
            results.append(
                StepResult(s.name, "cached", run=hit[0], cached=True, output=hit[2], format=hit[1], key=key.digest)
            )
            outputs[s.name] = (hit[1], hit[2])
            continue
        why = key.reason or ("cache=False" if not s.cache else _changed(ws, pipe, s, key))
        results.append(StepResult(s.name, "would run", key=key.digest, error=why))
        unknown.add(s.name)
    return PipelineRun(pipe.name, "", "explained", dict(values), results, _ws=ws)


def _changed(ws: Workspace, pipe: Pipeline, s: Step, key: StepKey) -> str:
    """Which parts of ``key`` differ from the newest earlier run of this step."""
    from sqlalchemy import and_, select

    from keel.store.db import run_tags, runs

    with ws.db.read() as conn:
        row = conn.execute(
            select(run_tags.c.value)
            .join(runs, runs.c.pk == run_tags.c.run_pk)
            .where(
                and_(
                    runs.c.name == f"{pipe.name}.{s.name}",
                    run_tags.c.key == "keel.step_parts",
                    runs.c.status == "finished",
                )
            )
            .order_by(runs.c.created_at.desc())
            .limit(1)
        ).first()
    if row is None:
        return "never run"
    if row.value.startswith("{"):
        earlier = json.loads(row.value)
    elif ws.objects.has(row.value):
        earlier = json.loads(ws.objects.get(row.value))
    else:
        return "never run"  # its parts were collected
    changed = key.differences(earlier)
    return "changed: " + "; ".join(changed) if changed else "its output was collected"
