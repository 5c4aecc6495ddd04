"""The Dask executor: a pipeline's steps as tasks on a ``dask.distributed`` cluster.

The driver (the process that called :func:`run_on_dask`) reuses what it can before
anything is submitted: every step whose inputs are known and whose key has a cache
entry. It then submits the rest as one graph, so a step starts on a worker the moment
its inputs are done, with no round trip through the driver, and independent steps run
side by side.

- A task's key is ``<step>-<cache key>`` when the driver knows the step's whole key.
  A step after a step still to run has a key that waits on its inputs' digests; its
  task key is the digest of the rest of its key and its inputs' task keys, which fix
  the cache key as long as the steps before it are deterministic. ``cache=False`` (or
  a step that cannot be cached) is submitted impure, under a fresh key, and so is
  every step after it.
- A task carries the step's function (cloudpickled by value, so a pipeline file the
  workers cannot import still runs), its parameters and the *digests* of its inputs.
  The worker reads inputs from the object store, finishes the key, looks it up, runs
  the step as a keel run under the pipeline's run, writes the output object and the
  cache entry, and returns a :class:`~keel.pipeline.execute.StepResult`: data never
  travels through the scheduler, only digests.
- Workers open the same workspace by its metadata URL and object store URL, so a
  cluster on other machines needs a store they can all reach (S3, a shared folder) and
  PostgreSQL; a ``LocalCluster`` on this machine works with the embedded default.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError
from keel.pipeline.execute import StepResult, _key, _lookup, _step_params, execute_step
from keel.pipeline.key import StepKey
from keel.pipeline.steps import Pipeline, Step

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["Connection", "DaskUnavailable", "run_on_dask"]

_PICKLING = threading.Lock()


class DaskUnavailable(KeelError):
    """The Dask executor needs ``dask.distributed`` (the ``dask`` extra), or a scheduler
    that answers."""

    exit_code = 2


@dataclass(frozen=True)
class _Task:
    """What a worker needs to run one step: small, whatever the data."""

    pipeline: str
    step: str
    cache: bool
    fn: bytes  # the step's function, cloudpickled by value
    file: str | None  # the step's module file, named in tracebacks
    folder: str | None  # its folder, put on the worker's path
    params: dict[str, Any]
    key: StepKey  # every part but the inputs' digests
    inputs: tuple[str, ...]  # the steps it takes, in the order their results are passed
    parent: str  # the pipeline's run
    root: str
    db_url: str
    store_url: str


_WORKSPACES: dict[tuple[str, str, str], Any] = {}
_FUNCTIONS: dict[bytes, Any] = {}


def _workspace(task: _Task) -> Workspace:
    """The driver's workspace, opened once per worker process."""
    from keel.config import Settings
    from keel.workspace import Workspace

    ident = (task.root, task.db_url, task.store_url)
    ws = _WORKSPACES.get(ident)
    if ws is None:
        ws = _WORKSPACES[ident] = Workspace(
            Settings(root=Path(task.root), db_url=task.db_url, store_url=task.store_url)
        )
    return ws


def _function(task: _Task) -> Any:
    import cloudpickle

    fn = _FUNCTIONS.get(task.fn)
    if fn is None:
        if task.folder and task.folder not in sys.path and os.path.isdir(task.folder):
            sys.path.insert(0, task.folder)  # the pipeline file's own modules
        fn = _FUNCTIONS[task.fn] = cloudpickle.loads(task.fn)
        if task.file:
            _named_file(fn, task.file)
    return fn


def _named_file(fn: Any, file: str) -> None:
    """Give the functions of ``fn``'s module that came by value their file again (cloudpickle
    names it ``<dynamic-code>``), so a failed step's traceback shows its lines."""
    for value in [fn, *fn.__globals__.values()]:
        if isinstance(value, types.FunctionType) and value.__code__.co_filename == "<dynamic-code>":
            value.__code__ = _in_file(value.__code__, file)


def _in_file(code: types.CodeType, file: str) -> types.CodeType:
    consts = tuple(_in_file(c, file) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=file, co_consts=consts)


def _work(task: _Task, *upstream: StepResult) -> StepResult:
    """Run one step on a worker (see the module's docstring); a step whose input did not
    finish is skipped."""
    if any(r.status not in ("finished", "cached") for r in upstream):
        return StepResult(task.step, "skipped")
    inputs = {}
    for name, r in zip(task.inputs, upstream, strict=True):
        assert r.format is not None and r.output is not None
        inputs[name] = (r.format, r.output)
    key = task.key.with_inputs({n: oid for n, (_, oid) in inputs.items()})
    return execute_step(
        _workspace(task),
        pipeline=task.pipeline,
        step=Step(fn=_function(task), name=task.step, cache=task.cache),
        key=key,
        inputs=inputs,
        params=task.params,
        parent=task.parent,
        loaded={},
    )


def _pickled(fn: Any) -> bytes:
    """``fn`` cloudpickled by value (its module's functions and constants with it), so a
    worker needs keel and the libraries it imports, not the pipeline's file."""
    import cloudpickle

    module = sys.modules.get(fn.__module__)
    with _PICKLING:
        by_value = module is not None and fn.__module__ != "__main__"
        if by_value:
            registered = fn.__module__ in cloudpickle.list_registry_pickle_by_value()
            if not registered:
                cloudpickle.register_pickle_by_value(module)
        try:
            return bytes(cloudpickle.dumps(fn))
        finally:
            if by_value and not registered:
                cloudpickle.unregister_pickle_by_value(module)


def _file(fn: Any) -> str | None:
    path = getattr(sys.modules.get(fn.__module__), "__file__", None)
    return str(Path(path).resolve()) if path else None


class Connection:
    """A client of a Dask scheduler, and the ``LocalCluster`` keel started, if it did."""

    def __init__(self, scheduler: str | None) -> None:
        self.client, self.cluster = _client(scheduler)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _client(scheduler: str | None) -> tuple[Any, Any]:
    """A client of the scheduler at ``scheduler`` (``KEEL_DASK_CONNECT_SECONDS``, default
    10, to answer), or of a ``LocalCluster`` started here (one single-threaded worker
    process per core); and the cluster to close after."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise DaskUnavailable(
            "the dask executor needs dask.distributed: pip install 'keel-mlops[dask]'"
        ) from None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: no warning when 8787 is taken
            silence_logs=logging.ERROR,
        )
        return Client(cluster), cluster
    if "://" not in scheduler:
        raise InvalidInput(f"invalid --scheduler {scheduler!r}: expected an address like tcp://host:8786")
    try:
        seconds = float(os.environ.get("KEEL_DASK_CONNECT_SECONDS", "10"))
    except ValueError:
        raise InvalidInput("KEEL_DASK_CONNECT_SECONDS must be a number of seconds") from None
    try:
        return Client(scheduler, timeout=seconds), None
    except (OSError, TimeoutError) as exc:
        raise DaskUnavailable(
            f"no Dask scheduler answers at {scheduler} ({type(exc).__name__}): "
            "start one (dask scheduler) or leave out --scheduler for a local cluster"
        ) from None


def run_on_dask(
    ws: Workspace,
    pipe: Pipeline,
    values: Mapping[str, Any],
    parent: str,
    dask: Connection,
) -> list[StepResult]:
    """Run ``pipe``'s steps on Dask under the pipeline run ``parent``; each step's result,
    in the pipeline's order."""
    from distributed import wait

    client = dask.client
    store_url = ws.settings.store_url
    if "://" not in store_url:
        store_url = os.path.abspath(store_url)  # workers may start elsewhere
    results: dict[str, StepResult] = {}
    futures: dict[str, Any] = {}
    task_keys: dict[str, str | None] = {}  # None: impure, and so is what follows it
    place = _Placement(pipe, sorted(client.scheduler_info()["workers"]))
    try:
        # The driver holds off garbage collection until every worker's output is recorded.
        with ws.writing_objects():
            for s in pipe.order:
                names = pipe.inputs(s)
                own = _step_params(s, pipe, values)
                known = {n: (r.format, r.output) for n in names if (r := results.get(n))}
                if len(known) == len(names):
                    key = _key(pipe, s, values, known)
                    hit = _lookup(ws, key.digest) if key.digest and s.cache else None
                    if hit is not None:
                        run, fmt, oid = hit
                        results[s.name] = StepResult(
                            s.name, "cached", run=run, cached=True, output=oid, format=fmt,
                            key=key.digest, key_parts=key.parts,
                        )
                        continue
                    task_key = f"{s.name}-{key.digest}" if key.digest and s.cache else None
                else:
                    key = _key(pipe, s, values, {n: ("", "") for n in names})
                    # an input made earlier is named by its output, one to be made by its task
                    upstream = [task_keys[n] if n in futures else results[n].output for n in names]
                    task_key = (
                        f"{s.name}-{_combined(key, names, upstream)}"
                        if key.digest and s.cache and None not in upstream
                        else None
                    )
                task = _Task(
                    pipeline=pipe.name,
                    step=s.name,
                    cache=s.cache,
                    fn=_pickled(s.fn),
                    file=(file := _file(s.fn)),
                    folder=os.path.dirname(file) if file else None,
                    params=own,
                    key=key,
                    inputs=tuple(names),
                    parent=parent,
                    root=str(ws.root),
                    db_url=ws.settings.db_url,
                    store_url=store_url,
                )
                args = [futures.get(n, results.get(n)) for n in names]
                futures[s.name] = client.submit(
                    _work, task, *args, key=task_key, pure=False, retries=0,
                    workers=place(s), allow_other_workers=True,
                )
                task_keys[s.name] = task_key
            wait(list(futures.values()))
            done = {n: f for n, f in futures.items() if f.status == "finished"}
            # one round trip for every result (future.result() is one each, ~2 ms here)
            results.update(zip(done, client.gather(list(done.values())), strict=True))
            for name, future in futures.items():
                if name not in done:  # the task itself failed: a worker lost, keel failing
                    exc = future.exception()
                    results[name] = StepResult(
                        name, "failed", error=f"its task failed on Dask: {type(exc).__name__}: {exc}"
                    )
    finally:
        for future in futures.values():
            future.release()
    return [results[s.name] for s in pipe.order]


class _Placement:
    """Which worker a step should start on. Dask places a task beside its inputs' results,
    which here are a few digests: every step after one step would queue on the worker
    that ran it. Steps at the same depth go to different workers instead; the restriction
    is loose, so Dask still moves a task when its worker is busy or gone."""

    def __init__(self, pipe: Pipeline, workers: list[str]) -> None:
        self.workers = workers
        self.depth: dict[str, int] = {}
        for s in pipe.order:  # each step after the steps it takes
            self.depth[s.name] = 1 + max((self.depth[n] for n in pipe.inputs(s)), default=-1)
        self.placed: dict[int, int] = {}

    def __call__(self, s: Step) -> list[str] | None:
        if not self.workers:
            return None
        depth = self.depth[s.name]
        index = self.placed[depth] = self.placed.get(depth, -1) + 1
        return [self.workers[index % len(self.workers)]]


def _combined(key: StepKey, names: list[str], upstream: list[str | None]) -> str:
    """A task key for a step whose inputs are still to be made: its key without inputs, and
    the task keys of what it takes."""
    from keel.store.objects.digest import hash_bytes

    parts = key.with_inputs({n: str(u) for n, u in zip(names, upstream, strict=True)})
    assert parts.digest is not None
    return hash_bytes(f"after:{parts.digest}".encode())
