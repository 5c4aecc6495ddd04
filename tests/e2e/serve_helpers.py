"""Helpers for the serving end-to-end tests: a tiny churn world, real servers, plain HTTP.

A template workspace is trained once per test session (three versions of
``churn``: two scikit-learn pipelines and a ``keel.PythonModel`` that raises)
and copied for every test that changes state, so each test starts from the
same store. Servers are the real ``keel serve`` executable on 127.0.0.1 and a
free port; every one is stopped by the fixture or context manager that
started it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keel
from tests.conftest import KEEL
from tests.registry.helpers import one_error_line as one_error_line
from tests.registry.helpers import wait_for as wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "churn"
PLANS = ("basic", "pro", "team")


class Broken(keel.PythonModel):
    """A model whose every prediction raises (it must live in a module the server can import)."""

    def predict(self, inputs: Any) -> Any:
        raise RuntimeError("the broken model refuses to predict")


class Degrading(keel.PythonModel):
    """A model that answers as ``inner`` does, and 40 ms later once the file ``flag`` exists
    (a challenger that turns slow while it meets traffic: a latency guardrail's prey)."""

    def __init__(self, inner: Any, flag: str) -> None:
        self.inner, self.flag = inner, flag

    def predict(self, inputs: Any) -> Any:
        if os.path.exists(self.flag):
            time.sleep(0.04)
        return self.inner.predict(inputs)


def training_frame(n: int = 400, seed: int = 0) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n)
    charges = rng.normal(60.0, 20.0, n).round(2)
    plan = rng.choice(PLANS, n)
    logit = 1.5 - 0.06 * tenure + 0.02 * (charges - 60) + (plan == "basic") * 0.8
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(n)],
            "tenure": tenure.astype("int64"),
            "charges": charges.astype("float64"),
            "plan": pd.Series(plan, dtype=object),
        }
    )
    return X, churned


def _pipeline(estimator: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            ("num", StandardScaler(), ["tenure", "charges"]),
            ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ],
        remainder="drop",  # customer_id rides along (the sticky key) but is no feature
    )
    return Pipeline([("features", features), ("model", estimator)])


def build_template(root: Path) -> Path:
    """A workspace with churn v1 (logistic regression, champion), v2 (gradient boosting) and
    v3 (a PythonModel that raises), all with the same signature."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    ws = keel.init(root)
    try:
        X, y = training_frame()
        v1 = _pipeline(LogisticRegression(max_iter=500)).fit(X, y)
        v2 = _pipeline(HistGradientBoostingClassifier(max_iter=20, max_depth=3)).fit(X, y)
        example = X.head(5)
        with keel.start_run(workspace=ws, capture_code=False) as run:
            run.log_model(v1, MODEL, input_example=example)
            run.log_model(v2, MODEL, input_example=example)
            run.log_model(Broken(), MODEL, input_example=example)
    finally:
        ws.close()
    return root


_TEMPLATE: dict[str, Path] = {}


def template(factory: Any) -> Path:
    """The trained template (built once per test process; ``factory`` is tmp_path_factory),
    with churn@champion at v1, moved by the real ``keel models promote``."""
    if "root" not in _TEMPLATE:
        root = build_template(factory.mktemp("serve-template") / "ws")
        keel_ok(root, "models", "promote", MODEL, "1")
        _TEMPLATE["root"] = root
    return _TEMPLATE["root"]


def copy_workspace(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    return dest


# -- the keel executable ----------------------------------------------------------


def keel_env(root: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "KEEL_HOME": str(root), "PYTHONPATH": str(REPO_ROOT)}
    for var in ("KEEL_DEBUG", "KEEL_SERVE_TOKEN"):
        env.pop(var, None)
    env.update(extra)
    return env


def keel_run(
    root: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEEL, *args],
        cwd=root,
        env=keel_env(root, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def keel_ok(root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = keel_run(root, *args, timeout=timeout)
    assert proc.returncode == 0, (
        f"keel {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


def keel_json(root: Path, *args: str) -> Any:
    return json.loads(keel_ok(root, *args, "--json").stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- HTTP -------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
    conn: http.client.HTTPConnection | None = None,
) -> Reply:
    """One request to 127.0.0.1:port (a JSON body from ``body``, or ``raw`` bytes as they are)."""
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        hdrs.update(headers or {})
        c.request(method, path, body=data, headers=hdrs)
        r = c.getresponse()
        return Reply(r.status, r.read(), {k.lower(): v for k, v in r.getheaders()})
    finally:
        if own:
            c.close()


def predict(port: int, inputs: Any, **kw: Any) -> Reply:
    return request(port, "POST", "/predict", {"inputs": inputs}, **kw)


def feedback(port: int, doc: Any, **kw: Any) -> Reply:
    return request(port, "POST", "/feedback", doc, **kw)


def record(i: int, customer: str | None = None) -> dict[str, Any]:
    """One valid input row (deterministic in ``i``)."""
    return {
        "customer_id": customer or f"c{i:05d}",
        "tenure": i % 72,
        "charges": 20.0 + (i * 7) % 90,
        "plan": PLANS[i % 3],
    }


# -- servers ----------------------------------------------------------------------


@dataclass
class Server:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]
    stderr_path: Path
    args: tuple[str, ...] = field(default=())

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def get(self, path: str, **kw: Any) -> Reply:
        return request(self.port, "GET", path, **kw)

    def predict(self, inputs: Any, **kw: Any) -> Reply:
        return predict(self.port, inputs, **kw)

    def feedback(self, doc: Any, **kw: Any) -> Reply:
        return feedback(self.port, doc, **kw)

    def model(self) -> str:
        r = self.predict([record(0)])
        assert r.status == 200, r.text
        return str(r.json["model"])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Stop the server (its whole process group) and return its exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # workers of a multi-process server are in the same group: make sure none is left
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return int(self.proc.returncode)


def start_server(
    root: Path,
    *args: str,
    port: int | None = None,
    env: dict[str, str] | None = None,
    ready_timeout: float = 60,
) -> Server:
    """``keel serve churn ARGS --port P`` in its own process group; returns once /healthz answers."""
    port = port or free_port()
    log = root / f"serve-{port}-{time.monotonic_ns()}.stderr"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [KEEL, "serve", MODEL, "--port", str(port), *args],
            cwd=root,
            env=keel_env(root, **(env or {})),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    server = Server(root, port, proc, log, args)
    deadline = time.monotonic() + ready_timeout
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"keel serve exited {proc.returncode}:\n{server.stderr()}")
            try:
                if request(port, "GET", "/healthz", timeout=2).status == 200:
                    return server
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"keel serve did not answer within {ready_timeout} s:\n{server.stderr()}"
                )
            time.sleep(0.05)
    except BaseException:
        server.stop(signal.SIGKILL)
        raise


@contextlib.contextmanager
def serving(root: Path, *args: str, **kw: Any) -> Iterator[Server]:
    server = start_server(root, *args, **kw)
    try:
        yield server
    finally:
        server.stop()


# -- load -------------------------------------------------------------------------


@dataclass
class Load:
    """A few threads sending single-row predictions until stopped; every answer is kept.

    ``fresh`` opens a new connection per request (so the kernel spreads them over the
    workers of a multi-process server); otherwise each thread keeps one connection.
    """

    port: int
    threads: int = 3
    fresh: bool = False
    results: list[tuple[float, float, int, str]] = field(
        default_factory=list
    )  # start, end, status, model
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        i = n
        while not self._stop.is_set():
            i += self.threads
            start = time.time()  # wall clock, to set beside the store's event times
            try:
                if self.fresh:
                    conn.close()
                r = predict(self.port, [record(i)], conn=conn)
                model = r.json.get("model", "") if r.status == 200 else ""
                with self._lock:
                    self.results.append((start, time.time(), r.status, str(model)))
                    if r.status != 200:
                        self.failures.append(f"{r.status}: {r.text[:300]}")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                with self._lock:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                conn.close()
        conn.close()

    def __enter__(self) -> Load:
        for n in range(self.threads):
            t = threading.Thread(target=self._run, args=(n,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(timeout=60)

    def snapshot(self) -> list[tuple[float, float, int, str]]:
        with self._lock:
            return sorted(self.results)

    def followed(self, model: str, since: float, streak: int = 8) -> float | None:
        """The start time after which every answer (at least ``streak`` of them) came from
        ``model``, looking only at requests started after ``since``; None if not yet."""
        after = [r for r in self.snapshot() if r[0] >= since and r[2] == 200]
        other = [k for k, r in enumerate(after) if r[3] != model]
        rest = after[other[-1] + 1 :] if other else after
        return rest[0][0] if len(rest) >= streak else None


# -- the log lake, read without keel's reader ---------------------------------------


def log_rows(root: Path, stream: str = "predictions", where: str = "true") -> list[dict[str, Any]]:
    """Rows of one stream of churn's log lake, read straight from the Parquet segments."""
    import duckdb

    folder = root / ".keel" / "logs" / stream / f"model={MODEL}"
    if not any(folder.glob("hour=*/*.parquet")):
        return []
    con = duckdb.connect()
    try:
        rel = con.sql(
            f"SELECT * FROM read_parquet('{folder}/hour=*/*.parquet', union_by_name=true, "
            f"hive_partitioning=false) WHERE {where}"
        )
        names = rel.columns
        return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]
    finally:
        con.close()


def wait_for_log(
    root: Path,
    expected: int,
    stream: str = "predictions",
    where: str = "true",
    timeout: float = 15.0,
) -> list[dict[str, Any]]:
    """Poll the log until it holds at least ``expected`` rows matching ``where``."""
    found: list[dict[str, Any]] = []

    def enough() -> bool:
        nonlocal found
        found = log_rows(root, stream, where)
        return len(found) >= expected

    try:
        wait_for(enough, timeout=timeout, interval=0.1)
    except AssertionError:
        raise AssertionError(
            f"the {stream} log holds {len(found)} rows ({where}), expected {expected}"
        ) from None
    return found
