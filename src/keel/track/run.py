"""A run: one execution of training code, recorded so that it can be re-created.

>>> import keel, tempfile
>>> ws = keel.init(tempfile.mkdtemp())
>>> with keel.start_run(name="demo", params={"lr": 0.1}, workspace=ws, capture_code=False) as run:
...     for step in range(3):
...         run.log_metric("loss", 1.0 / (step + 1))
...     run.log_metrics({"auc": 0.91})
>>> record = keel.get_run(run.id, workspace=ws)
>>> record.status, record.params["lr"], record.metrics["auc"]["last"]
('finished', 0.1, 0.91)
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, NotFound
from keel.track.keys import _GOOD as _KNOWN_KEYS
from keel.track.keys import VOLATILE_TAG, check_key

if TYPE_CHECKING:
    from keel.data.version import DatasetVersion
    from keel.track.writer import MetricWriter
    from keel.workspace import Workspace

__all__ = ["END_STATES", "Run", "active_run", "start_run"]

END_STATES = ("finished", "failed", "killed")
# The registry attaches here when it is imported (it builds on tracking, not the other way).
MODEL_LOGGER: list[Any] = []
_now = time.time
_ACTIVE: list[Run] = []
_ACTIVE_LOCK = threading.Lock()
_HOOKS_INSTALLED = False
_TERMINATED = False  # SIGTERM arrived: runs still open at exit ended by it, so "killed"


def _float_env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise InvalidInput(f"{name} must be a number of seconds") from None


def _encode_param(value: Any) -> tuple[str, float | None]:
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=True)
    except TypeError:
        text = json.dumps(str(value))
    num = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    return text, num


class Run:
    """An active run. Use it as a context manager, or call :meth:`end`."""

    def __init__(
        self, workspace: Workspace, pk: int, run_id: str, name: str, writer: MetricWriter
    ) -> None:
        self.workspace = workspace
        self.pk = pk
        self.id = run_id
        self.name = name
        self._writer = writer
        self._extend = writer.points.extend  # the hot path: one atomic C call per point
        self._steps: dict[str, int] = {}
        self._params: dict[str, str] = {}
        self._environment: threading.Thread | None = None
        self._durable = True  # False: its start and end wait for a later durable write
        self.reproduction_of: str | None = None  # the run this one re-creates (keel reproduce)
        self._volatile: set[str] = set()  # metrics keel reproduce does not compare
        # a notebook run whose cells come from history: (its command record, the notebook)
        self._history: tuple[dict[str, Any], dict[str, Any]] | None = None
        self.status = "running"

    def __repr__(self) -> str:
        return f"Run(id={self.id[:8]!r}, name={self.name!r}, status={self.status!r})"

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.status != "running":
            return
        if exc_type is None:
            self.end("finished")
        elif issubclass(exc_type, KeyboardInterrupt | SystemExit) and not (
            isinstance(exc, SystemExit) and exc.code in (0, None)
        ):
            self.end("killed", error="".join(traceback.format_exception(exc_type, exc, tb)))
        elif issubclass(exc_type, SystemExit):
            self.end("finished")
        else:
            self.end("failed", error="".join(traceback.format_exception(exc_type, exc, tb)))

    # -- metrics: the hot path -----------------------------------------------
    def log_metric(
        self,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: float | None = None,
        *,
        volatile: bool = False,
    ) -> None:
        """Record one point. Costs about a microsecond: a background thread writes it.

        ``step`` defaults to one more than this metric's last step (0 first).
        ``volatile=True`` marks a metric that differs from run to run by nature (a wall-clock
        time): it is recorded, and ``keel reproduce`` does not compare it.
        """
        if key not in _KNOWN_KEYS:
            check_key(key)
        if volatile and key not in self._volatile:
            self._mark_volatile(key)
        if type(value) is not float:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise InvalidInput(f"metric {key!r} must be a number, not {value!r}") from None
        if step is None:
            step = self._steps.get(key, -1) + 1
        self._steps[key] = step
        self._extend((key, step, _now() if timestamp is None else timestamp, value))

    def log_metrics(
        self, values: Mapping[str, float], step: int | None = None, *, volatile: bool = False
    ) -> None:
        """Record several metrics at one step (``volatile``: see :meth:`log_metric`)."""
        now = time.time()
        for key, value in values.items():
            self.log_metric(key, value, step, now, volatile=volatile)

    def _mark_volatile(self, key: str) -> None:
        check_key(key)
        self._volatile.add(key)
        self.set_tags({VOLATILE_TAG: ",".join(sorted(self._volatile))})

    def flush(self) -> None:
        """Write buffered points now (they are written at least every second anyway)."""
        self._writer.flush()

    # -- params, tags, inputs, artifacts: rare, written at once --------------
    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record parameters. A parameter cannot change within a run."""
        from sqlalchemy import select

        from keel.store.db import run_params

        encoded = {check_key(k, "param key"): _encode_param(v) for k, v in params.items()}
        for key, (text, _) in encoded.items():
            if key in self._params and self._params[key] != text:
                raise InvalidInput(
                    f"param {key!r} is already {self._params[key]} in this run, not {text}; "
                    "params do not change within a run (log a metric, or start a new run)"
                )

        def txn(conn: Any) -> None:
            have = dict(
                conn.execute(
                    select(run_params.c.key, run_params.c.value).where(
                        run_params.c.run_pk == self.pk
                    )
                ).all()
            )
            new = []
            for key, (text, num) in encoded.items():
                if key in have:
                    if have[key] != text:
                        raise InvalidInput(
                            f"param {key!r} is already {have[key]} in this run, not {text}; "
                            "params do not change within a run (log a metric, or start a new run)"
                        )
                    continue
                new.append({"run_pk": self.pk, "key": key, "value": text, "value_num": num})
            if new:
                conn.execute(run_params.insert(), new)

        self.workspace.db.write(txn)
        self._params.update({k: t for k, (t, _) in encoded.items()})

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (labels that may change, unlike params)."""
        from keel.store.db import run_tags

        rows = {check_key(k, "tag key"): str(v) for k, v in tags.items()}

        def txn(conn: Any) -> None:
            conn.execute(
                run_tags.delete().where(
                    run_tags.c.run_pk == self.pk, run_tags.c.key.in_(list(rows))
                )
            )
            conn.execute(
                run_tags.insert(),
                [{"run_pk": self.pk, "key": k, "value": v} for k, v in rows.items()],
            )

        if rows:
            self.workspace.db.write(txn)

    def use(self, ref: str | DatasetVersion) -> DatasetVersion:
        """Declare a dataset version as an input (a lineage edge) and return it."""
        from sqlalchemy import select

        from keel.data.catalog import resolve, version_id
        from keel.data.version import DatasetVersion
        from keel.store.db import run_inputs

        version = ref if isinstance(ref, DatasetVersion) else resolve(self.workspace, ref)
        if version.deleted_at is not None:
            raise InvalidInput(f"{version.ref} was removed; it cannot be a run's input")

        def txn(conn: Any) -> None:
            vid = version_id(conn, version.name, version.number)
            exists = conn.execute(
                select(run_inputs.c.run_pk).where(
                    run_inputs.c.run_pk == self.pk, run_inputs.c.dataset_version_id == vid
                )
            ).first()
            if exists is None:
                conn.execute(
                    run_inputs.insert().values(
                        run_pk=self.pk, dataset_version_id=vid, used_at=time.time()
                    )
                )

        self.workspace.db.write(txn)
        return version

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> str:
        """Store a file (or every file of a folder) with the run; returns its name in the run."""
        from keel.data.scan import scan
        from keel.store.objects import check_relpath, store_file

        kind, _root, files = scan(path)
        base = name if name is not None else Path(path).name
        check_relpath(base)
        store = self.workspace.objects
        now = time.time()
        rows = []
        with self.workspace.writing_objects():
            for f in files:
                rel = base if kind == "file" else f"{base}/{f.rel}"
                stored = store_file(store, f.path)
                rows.append(
                    {
                        "run_pk": self.pk,
                        "path": rel,
                        "oid": stored.oid,
                        "size": stored.size,
                        "chunked": int(stored.chunked),
                        "logged_at": now,
                    }
                )
            store.commit()
            self._record_artifacts(rows)
        return base

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        input_example: Any | None = None,
        signature: Any | None = None,
        flavor: str | None = None,
        message: str = "",
    ) -> Any:
        """Register ``model`` as a new version of ``name``, linked to this run (keel.registry).

        In a reproduction (``keel reproduce``) the model is recorded with the run and no
        version is registered, unless the reproduction was started with ``--register``."""
        import importlib

        if not MODEL_LOGGER:
            importlib.import_module("keel.registry")  # the plugin that registers models
        return MODEL_LOGGER[0](
            self,
            model,
            name=name,
            input_example=input_example,
            signature=signature,
            flavor=flavor,
            message=message,
        )

    def _record_artifacts(self, rows: list[dict[str, Any]]) -> None:
        from keel.store.db import object_refs, run_artifacts

        def txn(conn: Any) -> None:
            paths = [r["path"] for r in rows]
            conn.execute(
                run_artifacts.delete().where(
                    run_artifacts.c.run_pk == self.pk, run_artifacts.c.path.in_(paths)
                )
            )
            conn.execute(
                object_refs.delete().where(
                    object_refs.c.owner_kind == "run_artifact",
                    object_refs.c.owner_id == str(self.pk),
                    object_refs.c.role.in_([_artifact_role(p) for p in paths]),
                )
            )
            if rows:
                conn.execute(run_artifacts.insert(), rows)
                conn.execute(
                    object_refs.insert(),
                    [
                        {
                            "owner_kind": "run_artifact",
                            "owner_id": str(self.pk),
                            "role": _artifact_role(r["path"]),
                            "oid": r["oid"],
                            "shape": "chunks" if r["chunked"] else "blob",
                            "label": f"run {self.id[:8]}: {r['path']}",
                        }
                        for r in rows
                    ],
                )

        self.workspace.db.write(txn)

    # -- the end -------------------------------------------------------------
    def end(
        self,
        status: str = "finished",
        error: str | None = None,
        *,
        also: Callable[[Any], None] | None = None,
    ) -> None:
        """Flush everything and record how the run ended: finished, failed or killed.

        ``also(conn)`` writes more in the same transaction (what the run made, recorded
        with its end)."""
        from sqlalchemy import update

        from keel.store.db import runs

        if status not in END_STATES:
            raise InvalidInput(
                f"invalid run status {status!r}: expected one of {', '.join(END_STATES)}"
            )
        if self.status != "running":
            return
        self.status = status
        with _ACTIVE_LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
        if self._environment is not None:
            self._environment.join(timeout=30)  # a short script must not end before it is recorded
        flush_error: BaseException | None = None
        try:
            self._writer.close()
        except BaseException as exc:  # noqa: BLE001 - recorded below, then raised
            flush_error = exc
            status, error = "failed", f"{error or ''}metrics could not be written: {exc}"
        grown = self._grown_history()

        def txn(conn: Any) -> None:
            now = time.time()
            conn.execute(
                update(runs).where(runs.c.pk == self.pk),
                {"status": status, "ended_at": now, "heartbeat_at": now, "error": error},
            )
            if grown is not None:
                self._record_history(conn, *grown)
            if also is not None and flush_error is None:
                also(conn)

        self.workspace.db.write(txn, durable=self._durable)
        if flush_error is not None:
            raise flush_error


    def _grown_history(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """A notebook run from history whose cells grew since it started (it ended in a later
        cell): the command record and notebook to record instead, stored. None otherwise."""
        if self._history is None:
            return None
        from keel.track.notebook import recapture

        command, notebook = self._history
        try:
            with self.workspace.writing_objects():
                again = recapture(self.workspace.objects, notebook)
                self.workspace.objects.commit()
        except Exception:  # noqa: BLE001 - the start's cells stay recorded
            return None
        return None if again is None else ({**command, "notebook": again}, again)

    def _record_history(self, conn: Any, command: dict[str, Any], notebook: dict[str, Any]) -> None:
        from sqlalchemy import update

        from keel.store.db import object_refs, runs

        conn.execute(update(runs).where(runs.c.pk == self.pk), {"command": json.dumps(command)})
        conn.execute(
            object_refs.delete().where(
                object_refs.c.owner_kind == "run",
                object_refs.c.owner_id == str(self.pk),
                object_refs.c.role == "notebook",
            )
        )
        conn.execute(
            object_refs.insert().values(
                owner_kind="run",
                owner_id=str(self.pk),
                role="notebook",
                oid=notebook["oid"],
                shape="blob",
                label=f"run {self.id[:8]} (notebook)",
            )
        )


def _artifact_role(path: str) -> str:
    """A reference role fits 32 characters; artifact paths do not, so name the role by a hash."""
    from keel.store.objects import hash_bytes

    return hash_bytes(path.encode())[:32]


def active_run() -> Run | None:
    """The innermost run started and not yet ended, or None."""
    with _ACTIVE_LOCK:
        return _ACTIVE[-1] if _ACTIVE else None


def start_run(
    name: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    experiment: str = "default",
    seeds: Mapping[str, int] | None = None,
    workspace: Workspace | None = None,
    capture_code: bool = True,
    capture_environment: bool = True,
    durable: bool = True,
    notebook: str | os.PathLike[str] | None = None,
) -> Run:
    """Start recording a run: code, environment, and whatever you log.

    The code: in a git repository its commit and uncommitted changes; outside one, the
    script and the local modules it imported; in Jupyter or IPython, the notebook as well
    (``notebook="train.ipynb"`` names it when the kernel cannot; else its cells as executed).

    The run, its params and its tags are written in one transaction; bad params or
    tags are refused before anything is recorded. ``capture_environment=False`` is
    for a run whose environment another run holds (a pipeline's step runs);
    ``durable=False`` for a run whose start and end a later durable write covers (a
    pipeline's step runs, covered by the pipeline run's end): they skip the wait for
    the disk, which costs more than the rest of a short step.

    ``KEEL_FLUSH_SECONDS`` (default 1) bounds what a kill -9 can lose;
    ``KEEL_HEARTBEAT_SECONDS`` (default 10) sets how fast a dead run is
    noticed (it shows as ``crashed`` after three missed beats).
    """
    from sqlalchemy import insert

    from keel.names import check_name
    from keel.store.db import object_refs, runs
    from keel.track.capture import capture_code as capture
    from keel.track.writer import MetricWriter

    if workspace is None:
        from keel.workspace import connect

        workspace = connect()
    check_name(experiment, "experiment name")
    run_id = uuid.uuid4().hex
    name = name or f"run-{run_id[:8]}"
    if len(name) > 250:
        raise InvalidInput(f"run name is {len(name)} characters; expected at most 250")
    flush = _float_env("KEEL_FLUSH_SECONDS", 1.0)
    beat = _float_env("KEEL_HEARTBEAT_SECONDS", 10.0)
    seeds = dict(seeds or {})
    for key, value in seeds.items():
        check_key(key, "seed name")
        if not isinstance(value, int):
            raise InvalidInput(f"seed {key!r} must be an integer, not {value!r}")
    encoded = {check_key(k, "param key"): _encode_param(v) for k, v in (params or {}).items()}
    labels = {check_key(k, "tag key"): str(v) for k, v in (tags or {}).items()}
    ws = workspace
    store = ws.objects
    with ws.writing_objects():
        code = capture(store, notebook=notebook) if capture_code else None
        store.commit()
        now = time.time()
        values: dict[str, Any] = {
            "id": run_id,
            "name": name,
            "experiment": experiment,
            "status": "running",
            "created_at": now,
            "heartbeat_at": now,
            "heartbeat_interval": beat,
            "user": _actor(),
            "host": socket.gethostname()[:255],
            "pid": os.getpid(),
            "command": json.dumps(
                {
                    "python": sys.executable,
                    "argv": list(sys.argv),
                    "ordinal": _ordinal(name),
                    **(code.record() if code else {}),
                }
            ),
            "cwd": code.cwd if code else os.getcwd(),
            "repo_root": code.repo_root if code else None,
            "git_commit": code.commit if code else None,
            "git_branch": code.branch if code else None,
            "git_remote": code.remote if code else None,
            "git_dirty": int(bool(code and code.dirty)),
            "patch_oid": code.patch_oid if code else None,
            "untracked_oid": code.untracked_oid if code else None,
            "seeds": json.dumps(seeds, sort_keys=True),
            "reproduction_of": os.environ.get("KEEL_REPRODUCTION_OF") or None,
        }

        def txn(conn: Any) -> int:
            from keel.store.db import run_params, run_tags

            # parameters apart from the statement: it compiles once per process, not per run
            pk = conn.execute(insert(runs), values).inserted_primary_key[0]
            if encoded:
                conn.execute(
                    run_params.insert(),
                    [
                        {"run_pk": pk, "key": k, "value": text, "value_num": num}
                        for k, (text, num) in encoded.items()
                    ],
                )
            if labels:
                conn.execute(
                    run_tags.insert(),
                    [{"run_pk": pk, "key": k, "value": v} for k, v in labels.items()],
                )
            refs = []
            if values["patch_oid"]:
                refs.append(("patch", values["patch_oid"], "blob"))
            if values["untracked_oid"]:
                refs.append(("untracked", values["untracked_oid"], "tree"))
            if code is not None and code.files_oid:
                refs.append(("code", code.files_oid, "tree"))
            if code is not None and code.notebook is not None:
                refs.append(("notebook", code.notebook["oid"], "blob"))
            if refs:
                conn.execute(
                    object_refs.insert(),
                    [
                        {
                            "owner_kind": "run",
                            "owner_id": str(pk),
                            "role": role,
                            "oid": oid,
                            "shape": shape,
                            "label": f"run {run_id[:8]} ({role})",
                        }
                        for role, oid, shape in refs
                    ],
                )
            return int(pk)

        pk = ws.db.write(txn, durable=durable)
    run = Run(
        ws, pk, run_id, name, MetricWriter(ws.db, pk, flush_interval=flush, heartbeat_interval=beat)
    )
    run._params.update({k: text for k, (text, _) in encoded.items()})
    run._durable = durable
    run.reproduction_of = values["reproduction_of"]
    if code is not None and code.notebook is not None and code.notebook["source"] == "history":
        run._history = (json.loads(values["command"]), code.notebook)
    if capture_environment:
        run._environment = threading.Thread(
            target=_record_environment, args=(ws, pk, run_id, code), name="keel-env", daemon=True
        )
        run._environment.start()
    with _ACTIVE_LOCK:
        _ACTIVE.append(run)
    _install_hooks()
    return run


_ORDINALS: dict[str, int] = {}


def _ordinal(name: str) -> int:
    """How many runs named ``name`` this process started before this one: a reproduction
    re-runs the whole script or notebook, and this tells which of its runs stands for
    the original."""
    with _ACTIVE_LOCK:
        n = _ORDINALS.get(name, 0)
        _ORDINALS[name] = n + 1
    return n


def _actor() -> str:
    from keel.store.db.moves import actor

    return actor()


def _record_environment(ws: Workspace, pk: int, run_id: str, code: Any) -> None:
    """Off the caller's path: reading every installed distribution takes tens of milliseconds."""
    from sqlalchemy import update

    from keel.store.db import object_refs, runs
    from keel.track.capture import capture_environment

    try:
        env = capture_environment()
        if code is not None and code.untracked_skipped:
            env["untracked_skipped"] = code.untracked_skipped
        with ws.writing_objects():
            oid = ws.objects.put(json.dumps(env, sort_keys=True).encode())
            ws.objects.commit()

            def txn(conn: Any) -> None:
                conn.execute(update(runs).where(runs.c.pk == pk).values(environment_oid=oid))
                conn.execute(
                    object_refs.insert().values(
                        owner_kind="run",
                        owner_id=str(pk),
                        role="environment",
                        oid=oid,
                        shape="blob",
                        label=f"run {run_id[:8]} (environment)",
                    )
                )

            ws.db.write(txn)
    except Exception:  # noqa: BLE001, S110 - the environment is best effort; the run goes on
        pass


def _end_all(status: str, error: str | None = None) -> None:
    with _ACTIVE_LOCK:
        running = list(reversed(_ACTIVE))
    for run in running:
        try:
            run.end(status, error)
        except Exception:  # noqa: BLE001, S110 - ending on the way out: nothing left to tell
            pass


def _install_hooks() -> None:
    """End runs left open: at exit (finished), on an uncaught exception (failed), on SIGTERM (killed)."""
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(
        lambda: _end_all(
            "killed" if _TERMINATED else "finished",
            "terminated by SIGTERM" if _TERMINATED else None,
        )
    )
    previous_hook = sys.excepthook

    def excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        status = "killed" if issubclass(exc_type, KeyboardInterrupt) else "failed"
        _end_all(status, "".join(traceback.format_exception(exc_type, exc, tb)))
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook
    if threading.current_thread() is threading.main_thread() and signal.getsignal(
        signal.SIGTERM
    ) in (
        signal.SIG_DFL,
        None,
    ):

        def on_term(signum: int, frame: Any) -> None:
            # Unwind instead of ending runs here: the handler may have interrupted a flush that
            # holds the writer's lock. `with` blocks end their runs as killed; atexit the rest.
            global _TERMINATED
            _TERMINATED = True
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, on_term)


def require_active() -> Run:
    run = active_run()
    if run is None:
        raise NotFound("no active run: start one with keel.start_run()")
    return run
