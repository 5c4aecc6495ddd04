#!/usr/bin/env python3
"""Experiment tracking benchmark: keel vs MLflow 3.x, side by side, in one run.

    .venv/bin/python bench/tracking.py [--quick] [--runs N] [--keep] [--workdir DIR]
                                       [--mlflow-points N] [--mlflow-search-runs N]
                                       [--mlflow-search-budget S] [--no-mlflow]

Both tools on SQLite, same machine. Every measurement runs in a fresh
subprocess of the tool's own virtualenv (keel: /work/main/.venv; MLflow:
bench/.venvs/mlflow, created if missing) and prints one JSON line of timings.

  1. 100,000 `run.log_metric` calls, one point each, until `run.flush()`
     returns. MLflow's `mlflow.log_metric` (one commit per call) is measured
     on 2,000 calls and reported in points/s. Target: keel >= 1,000x MLflow.
  2. Floor: python `sqlite3` `executemany` of the same number of rows
     (run_pk, key_id, step, ts, value) in one WAL transaction into a fresh
     db (no index, synchronous=FULL like keel). Target: keel (1) >= 0.5x it.
  3. 100,000 points in batches of 1,000: keel 100 x (1,000 log_metric then
     flush); MLflow 100 x `MlflowClient().log_batch(1,000 Metric)`.
     Target: keel within 2x of the floor's rate.
  4. Fresh process: `import keel; keel.start_run()` vs `import mlflow;
     mlflow.start_run()`, on an existing store, timed from process start: the
     parent passes time.time() in argv just before spawning; the child
     reports time.time() minus it right after start_run returns (interpreter
     start-up included, exit excluded). Target: keel < 0.3 s.
  5. `keel.search_runs("metrics.auc > 0.9 and params.depth = 6",
     sort="-metrics.auc", limit=100)` over 50,000 runs (inserted in bulk
     into keel's own tables with SQLAlchemy Core, as keel writes them) vs
     `mlflow.search_runs(... "params.depth = '6'", order_by=["metrics.auc
     DESC"], max_results=100)` over as many runs as MLflow's API creates in a
     time budget (default 5,000; keel is also timed at that count). Median of
     5 warm queries per process. Target: keel < 0.2 s at 50,000 runs.
  6. Reading back the 100,000-point history logged in (3):
     `keel.get_run(id).history("loss")` vs
     `MlflowClient().get_metric_history(run_id, "loss")`. Target: < 0.1 s.

Figures are medians of N runs (default 3); ratios are ratios of medians.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_DIR,
    WORKER_PRELUDE,
    CommandFailed,
    base_env,
    drop_tree,
    ensure_venv,
    fmt_s,
    fmt_x,
    keel_env,
    log,
    markdown_table,
    median,
    mlflow_env,
    parse_result,
    ratio,
)

MLFLOW_REQUIREMENTS = ["mlflow>=3,<4"]
KEEL_PY = REPO_DIR / ".venv" / "bin" / "python"
FILTER_KEEL = "metrics.auc > 0.9 and params.depth = 6"
FILTER_MLFLOW = "metrics.auc > 0.9 and params.depth = '6'"
SORT_KEEL = "-metrics.auc"

# --------------------------------------------------------------------------
# Worker code (run with `python -c CODE JSON_ARGS` in each tool's venv)
# --------------------------------------------------------------------------

PRELUDE = (
    WORKER_PRELUDE
    + r'''

def gen_runs(n, seed=42):
    """(i, depth, lr, auc, loss) for n runs; the first k rows do not depend on n."""
    import random
    rng = random.Random(seed)
    return [(i, rng.randint(1, 10), round(10 ** rng.uniform(-4, -1), 6),
             rng.uniform(0.5, 1.0), rng.uniform(0.0, 1.0)) for i in range(n)]

def expected_top(data, limit=100):
    hits = sorted((r for r in data if r[3] > 0.9 and r[1] == 6), key=lambda r: -r[3])
    return [f"r{r[0]}" for r in hits[:limit]], len(hits)
'''
)

FLOOR_WORKER = (
    PRELUDE
    + r"""
import sqlite3
n = ARGS["n"]
now = time.time()
rows = [(1, 1, i, now + i * 1e-3, i * 1e-5) for i in range(n)]
conn = sqlite3.connect(ARGS["db"], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=FULL")
conn.execute("CREATE TABLE points (run_pk INTEGER, key_id INTEGER, step INTEGER, ts REAL, value REAL)")
t0 = time.perf_counter()
conn.execute("BEGIN")
conn.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?)", rows)
conn.execute("COMMIT")
t1 = time.perf_counter()
assert conn.execute("SELECT count(*) FROM points").fetchone()[0] == n
conn.close()
out(seconds=t1 - t0, n=n, sqlite=sqlite3.sqlite_version)
"""
)

KEEL_WORKER = (
    PRELUDE
    + r"""
import os
import keel

if MODE == "init":
    keel.init(ARGS["ws"])
    out(version=keel.__version__)

elif MODE == "log":
    ws = keel.init(ARGS["ws"])
    run = keel.start_run(name="bench", workspace=ws, capture_code=False)
    log_metric = run.log_metric
    log_metric("warmup", 0.0)  # untimed: first key, first flush
    run.flush()
    # 1: n single points, until flushed
    n1 = ARGS["n_single"]
    t0 = time.perf_counter()
    for i in range(n1):
        log_metric("loss_single", i * 1e-5)
    t1 = time.perf_counter()
    run.flush()
    t2 = time.perf_counter()
    # 3: batches of `batch` points, flushed after each
    nb, bs = ARGS["n_batches"], ARGS["batch"]
    t3 = time.perf_counter()
    for b in range(nb):
        base = b * bs
        for i in range(bs):
            log_metric("loss", (base + i) * 1e-5)
        run.flush()
    t4 = time.perf_counter()
    run.end()
    rid = run.id
    # 6: history of nb * bs points, as a user writes it (KEEL_HOME is the workspace)
    def read():
        return keel.get_run(rid).history("loss")
    def read_ws():
        return keel.get_run(rid, workspace=ws).history("loss")
    first, h = timeit(read)
    assert len(h) == nb * bs, len(h)
    assert h.steps[:3] == [0, 1, 2] and h.values[-1] == (nb * bs - 1) * 1e-5
    reads = [timeit(read)[0] for _ in range(ARGS["reads"])]
    reads_ws = [timeit(read_ws)[0] for _ in range(ARGS["reads"])]
    out(version=keel.__version__,
        s1=t2 - t0, s1_loop=t1 - t0, s1_flush=t2 - t1, n1=n1,
        s3=t4 - t3, n3=nb * bs,
        s6=med(reads), s6_first=first, s6_ws=med(reads_ws), n6=len(h))

elif MODE == "populate":
    import socket, uuid
    from sqlalchemy import select
    from keel.store.db import metric_chunks, metric_keys, run_metrics, run_params, runs
    from keel.store.db.moves import actor
    from keel.track.chunks import pack
    from keel.track.run import _encode_param
    n = ARGS["n"]
    t0 = time.perf_counter()
    ws = keel.init(ARGS["ws"])
    data = gen_runs(n)
    start = time.time() - n - 3600
    user, host = actor(), socket.gethostname()[:255]
    command = json.dumps({"python": sys.executable, "argv": ["train.py"]})

    def txn(conn):
        conn.execute(metric_keys.insert(), [{"key": "auc"}, {"key": "loss"}])
        kid = dict(conn.execute(select(metric_keys.c.key, metric_keys.c.id)).all())
        for lo in range(0, n, 10_000):
            run_rows, param_rows, metric_rows, chunk_rows = [], [], [], []
            for i, depth, lr, auc, loss in data[lo:lo + 10_000]:
                pk, created = i + 1, start + i
                ts = created + 30.0
                run_rows.append({
                    "pk": pk, "id": uuid.uuid4().hex, "name": f"r{i}",
                    "experiment": "default", "status": "finished",
                    "created_at": created, "ended_at": created + 60.0,
                    "heartbeat_at": created + 60.0, "heartbeat_interval": 10.0,
                    "user": user, "host": host, "pid": 4242, "command": command,
                    "cwd": ".", "repo_root": None, "git_commit": None, "git_branch": None,
                    "git_remote": None, "git_dirty": 0, "patch_oid": None,
                    "untracked_oid": None, "environment_oid": None, "seeds": "{}",
                    "error": None, "reproduction_of": None,
                })
                for key, value in (("depth", depth), ("lr", lr)):
                    text, num = _encode_param(value)
                    param_rows.append({"run_pk": pk, "key": key, "value": text, "value_num": num})
                for key, value in (("auc", auc), ("loss", loss)):
                    metric_rows.append({
                        "run_pk": pk, "key_id": kid[key], "value": value, "step": 0, "ts": ts,
                        "min_value": value, "max_value": value, "count": 1,
                    })
                    s_blob, t_blob, v_blob = pack([0], [ts], [value])
                    chunk_rows.append({
                        "run_pk": pk, "key_id": kid[key], "seq": 0, "count": 1,
                        "steps": s_blob, "timestamps": t_blob, "values": v_blob,
                    })
            conn.execute(runs.insert(), run_rows)
            conn.execute(run_params.insert(), param_rows)
            conn.execute(run_metrics.insert(), metric_rows)
            conn.execute(metric_chunks.insert(), chunk_rows)

    ws.db.write(txn)
    # sanity: keel reads a bulk-inserted run back like any other
    i, depth, lr, auc, loss = data[n // 2]
    rec = keel.get_run(f"r{i}", workspace=ws)
    assert rec.params == {"depth": depth, "lr": lr}, rec.params
    assert rec.metrics["auc"]["last"] == auc and rec.status == "finished"
    seconds = time.perf_counter() - t0
    # what the API costs per run (why the runs above were bulk-inserted), in a side workspace
    api_ws = keel.init(ARGS["ws"] + "-api")
    k = ARGS["api_runs"]
    t0 = time.perf_counter()
    for i, depth, lr, auc, loss in data[:k]:
        with keel.start_run(name=f"r{i}", params={"depth": depth, "lr": lr},
                            workspace=api_ws, capture_code=False) as run:
            run.log_metrics({"auc": auc, "loss": loss})
    out(n=n, seconds=seconds, api_per_run=(time.perf_counter() - t0) / k)

elif MODE == "search":
    n, q = ARGS["n"], ARGS["queries"]
    want, hits = expected_top(gen_runs(n))
    ws = keel.connect(ARGS["ws"])
    def query():  # as a user writes it (KEEL_HOME is the workspace)
        return keel.search_runs(ARGS["filter"], sort=ARGS["sort"], limit=100)
    def query_ws():
        return keel.search_runs(ARGS["filter"], sort=ARGS["sort"], limit=100, workspace=ws)
    first, page = timeit(query)
    got = [r.name for r in page.runs]
    assert got == want, (got[:5], want[:5])
    times = [timeit(query)[0] for _ in range(q)]
    times_ws = [timeit(query_ws)[0] for _ in range(q)]
    out(n=n, hits=hits, returned=len(got), seconds=med(times), first=first,
        seconds_ws=med(times_ws))
"""
)

MLFLOW_WORKER = (
    PRELUDE
    + r"""
import os
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

if MODE == "setup":
    exp = MlflowClient().create_experiment(ARGS["experiment"], artifact_location=ARGS["art"])
    out(version=mlflow.__version__, experiment_id=exp)

elif MODE == "log":
    client = MlflowClient()
    exp = client.create_experiment("bench", artifact_location=ARGS["art"])  # creates the db
    active = mlflow.start_run(experiment_id=exp)
    rid = active.info.run_id
    mlflow.log_metric("warmup", 0.0, step=0)  # untimed
    # 1: single points (each call commits)
    n1 = ARGS["n_single"]
    t0 = time.perf_counter()
    for i in range(n1):
        mlflow.log_metric("loss_single", i * 1e-5, step=i)
    t1 = time.perf_counter()
    # 3: log_batch of `batch` Metric objects
    nb, bs = ARGS["n_batches"], ARGS["batch"]
    t2 = time.perf_counter()
    for b in range(nb):
        base = b * bs
        ts = int(time.time() * 1000)
        client.log_batch(rid, metrics=[Metric("loss", (base + i) * 1e-5, ts, base + i)
                                       for i in range(bs)])
    t3 = time.perf_counter()
    mlflow.end_run()
    # 6: history
    def read():
        return MlflowClient().get_metric_history(rid, "loss")
    first, h = timeit(read)
    assert len(h) == nb * bs, len(h)
    reads = [timeit(read)[0] for _ in range(ARGS["reads"])]
    out(version=mlflow.__version__, s1=t1 - t0, n1=n1, s3=t3 - t2, n3=nb * bs,
        s6=med(reads), s6_first=first, n6=len(h))

elif MODE == "populate":
    client = MlflowClient()
    exp = client.create_experiment("search", artifact_location=ARGS["art"])
    data = gen_runs(ARGS["n"])
    t0 = time.perf_counter()
    deadline = t0 + ARGS["budget"]
    done = 0
    for i, depth, lr, auc, loss in data:
        if time.perf_counter() > deadline:
            break
        ts = int(time.time() * 1000)
        rid = client.create_run(exp, run_name=f"r{i}", start_time=ts).info.run_id
        client.log_batch(rid, metrics=[Metric("auc", auc, ts, 0), Metric("loss", loss, ts, 0)],
                         params=[Param("depth", str(depth)), Param("lr", str(lr))])
        client.set_terminated(rid)
        done += 1
    out(n=done, seconds=time.perf_counter() - t0, experiment_id=exp)

elif MODE == "search":
    n, q = ARGS["n"], ARGS["queries"]
    want, hits = expected_top(gen_runs(n))
    def query():
        return mlflow.search_runs(experiment_ids=[ARGS["experiment_id"]],
                                  filter_string=ARGS["filter"],
                                  order_by=["metrics.auc DESC"], max_results=100)
    first, df = timeit(query)
    got = df["tags.mlflow.runName"].tolist()
    assert got == want, (got[:5], want[:5])
    times = [timeit(query)[0] for _ in range(q)]
    out(n=n, hits=hits, returned=len(got), seconds=med(times), first=first)
"""
)

# Start-up: nothing before the imports but sys/time; t0 is the parent's clock at spawn.
KEEL_STARTUP = (
    "import sys, time\n"
    "t_in = time.perf_counter()\n"
    "import keel\n"
    "run = keel.start_run()\n"
    "t = time.time()\n"
    'print(\'@@RESULT {"from_start": %r, "in_process": %r}\''
    " % (t - float(sys.argv[1]), time.perf_counter() - t_in), flush=True)\n"
)
MLFLOW_STARTUP = (
    "import sys, time\n"
    "t_in = time.perf_counter()\n"
    "import mlflow\n"
    "run = mlflow.start_run()\n"
    "t = time.time()\n"
    'print(\'@@RESULT {"from_start": %r, "in_process": %r}\''
    " % (t - float(sys.argv[1]), time.perf_counter() - t_in), flush=True)\n"
)


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def call(
    py: Path, code: str, args: dict | str, cwd: Path, env: dict[str, str], timeout: float = 3600
) -> tuple[dict, float]:
    """Run a worker; return (its JSON result, the wall seconds of the whole process)."""
    argv = args if isinstance(args, str) else json.dumps(args)
    t0 = time.perf_counter()
    p = subprocess.run(
        [str(py), "-c", code, argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise CommandFailed(
            f"worker failed (rc={p.returncode}): {py} mode={args if isinstance(args, str) else args.get('mode')}\n"
            f"stdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
        )
    try:
        return parse_result(p.stdout), wall
    except ValueError as exc:
        raise CommandFailed(f"{exc}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}")


def fmt_rate(x: float | None) -> str:
    if x is None or x != x:
        return "n/a"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M/s"
    if x >= 1e4:
        return f"{x / 1e3:.0f}k/s"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k/s"
    return f"{x:.0f}/s"


class Bench:
    def __init__(self, args, scratch: Path, mlflow_py: Path | None):
        self.a = args
        self.scratch = scratch
        self.mlflow_py = mlflow_py
        self.s: dict[str, list[float]] = defaultdict(list)
        self.info: dict[str, object] = {}
        self.errors: list[str] = []

    def add(self, key: str, value: float) -> None:
        self.s[key].append(value)
        log(f"    {key:<22} {value:.4f}")

    def med(self, key: str) -> float | None:
        return median(self.s[key]) if self.s.get(key) else None

    def guarded(self, what: str, fn, *a) -> None:
        try:
            fn(*a)
        except (CommandFailed, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as e:
            msg = f"{what}: {type(e).__name__}: {e}"
            self.errors.append(msg)
            log(f"  ERROR {msg}")
            if self.a.verbose:
                traceback.print_exc()

    # ---- 1, 2, 3, 6 ---------------------------------------------------------

    def logging(self) -> None:
        a = self.a
        for i in range(a.runs):
            log(f"[1,2,3,6] run {i + 1}/{a.runs}")
            self.guarded("floor", self.floor, i)
            self.guarded("keel log", self.keel_log, i)
            if self.mlflow_py:
                self.guarded("mlflow log", self.mlflow_log, i)

    def floor(self, i: int) -> None:
        d = self.scratch / f"floor-{i}"
        d.mkdir()
        r, _ = call(
            KEEL_PY,
            FLOOR_WORKER,
            {"mode": "floor", "n": self.a.points, "db": str(d / "f.db")},
            d,
            base_env(),
        )
        self.info["sqlite"] = r["sqlite"]
        self.add("floor.s", r["seconds"])
        drop_tree(d)

    def keel_log(self, i: int) -> None:
        ws = self.scratch / f"keel-log-{i}"
        ws.mkdir()
        args = {
            "mode": "log",
            "ws": str(ws),
            "n_single": self.a.points,
            "n_batches": self.a.batches,
            "batch": 1000,
            "reads": 5,
        }
        r, _ = call(KEEL_PY, KEEL_WORKER, args, ws, keel_env(ws))
        self.info["keel"] = r["version"]
        for k in ("s1", "s1_loop", "s1_flush", "s3", "s6", "s6_first", "s6_ws"):
            self.add(f"keel.{k}", r[k])
        self.info["keel.n6"] = r["n6"]
        drop_tree(ws)

    def mlflow_log(self, i: int) -> None:
        d = self.scratch / f"mlflow-log-{i}"
        d.mkdir()
        args = {
            "mode": "log",
            "art": (d / "artifacts").as_uri(),
            "n_single": self.a.mlflow_points,
            "n_batches": self.a.mlflow_batches,
            "batch": 1000,
            "reads": 3,
        }
        r, _ = call(self.mlflow_py, MLFLOW_WORKER, args, d, mlflow_env(d))
        self.info["mlflow"] = r["version"]
        for k in ("s1", "s3", "s6", "s6_first"):
            self.add(f"mlflow.{k}", r[k])
        self.info["mlflow.n6"] = r["n6"]
        drop_tree(d)

    # ---- 4 -----------------------------------------------------------------

    def startup(self) -> None:
        n = self.a.startup_runs
        log(f"[4] start-up, {n} runs each")
        kws = self.scratch / "keel-startup"
        kws.mkdir()
        call(KEEL_PY, KEEL_WORKER, {"mode": "init", "ws": str(kws)}, kws, keel_env(kws))
        tools = [("keel", KEEL_PY, KEEL_STARTUP, kws, keel_env(kws))]
        if self.mlflow_py:
            md = self.scratch / "mlflow-startup"
            md.mkdir()
            menv = mlflow_env(md, "bench")
            call(
                self.mlflow_py,
                MLFLOW_WORKER,
                {"mode": "setup", "experiment": "bench", "art": (md / "artifacts").as_uri()},
                md,
                menv,
            )
            tools.append(("mlflow", self.mlflow_py, MLFLOW_STARTUP, md, menv))
        for _name, py, code, cwd, env in tools:  # untimed warm-up (page cache, .pyc)
            call(py, code, repr(time.time()), cwd, env)
        for _ in range(n):
            for name, py, code, cwd, env in tools:
                t0 = time.perf_counter()
                subprocess.run([str(py), "-c", "pass"], cwd=cwd, env=env, check=True)
                self.add(f"{name}.s4_base", time.perf_counter() - t0)
                r, wall = call(py, code, repr(time.time()), cwd, env)
                self.add(f"{name}.s4", r["from_start"])
                self.add(f"{name}.s4_inproc", r["in_process"])
                self.add(f"{name}.s4_wall", wall)

    # ---- 5 -----------------------------------------------------------------

    def search(self) -> None:
        a = self.a
        n_ml = 0
        if self.mlflow_py:
            md = self.scratch / "mlflow-search"
            md.mkdir()
            menv = mlflow_env(md)
            log(
                f"[5] MLflow: creating up to {a.mlflow_search_runs:,} runs "
                f"(budget {a.mlflow_search_budget:.0f}s) ..."
            )
            r, _ = call(
                self.mlflow_py,
                MLFLOW_WORKER,
                {
                    "mode": "populate",
                    "n": a.mlflow_search_runs,
                    "budget": a.mlflow_search_budget,
                    "art": (md / "artifacts").as_uri(),
                },
                md,
                menv,
            )
            n_ml, exp_id = r["n"], r["experiment_id"]
            self.info["mlflow.populate"] = f"{n_ml:,} runs in {r['seconds']:.0f}s"
            log(f"    MLflow: {self.info['mlflow.populate']}")
        sizes = [("big", a.search_runs)]
        if n_ml and n_ml != a.search_runs:
            sizes.append(("small", n_ml))
        for label, n in sizes:
            ws = self.scratch / f"keel-search-{label}"
            ws.mkdir()
            log(f"[5] keel: bulk-inserting {n:,} runs ...")
            r, _ = call(
                KEEL_PY,
                KEEL_WORKER,
                {"mode": "populate", "ws": str(ws), "n": n, "api_runs": 20},
                ws,
                keel_env(ws),
            )
            self.info[f"keel.populate.{label}"] = f"{n:,} runs in {r['seconds']:.1f}s"
            self.info["keel.api_per_run"] = r["api_per_run"]
        self.info["search.n.big"] = a.search_runs
        self.info["search.n.small"] = n_ml
        for i in range(a.runs):
            log(f"[5] run {i + 1}/{a.runs}")
            for label, n in sizes:
                ws = self.scratch / f"keel-search-{label}"
                self.guarded(f"keel search {label}", self.keel_search, label, ws, n)
            if n_ml:
                self.guarded("mlflow search", self.mlflow_search, md, menv, n_ml, exp_id)

    def keel_search(self, label: str, ws: Path, n: int) -> None:
        args = {
            "mode": "search",
            "ws": str(ws),
            "n": n,
            "queries": 5,
            "filter": FILTER_KEEL,
            "sort": SORT_KEEL,
        }
        r, _ = call(KEEL_PY, KEEL_WORKER, args, ws, keel_env(ws))
        self.info[f"keel.search.hits.{label}"] = r["hits"]
        self.add(f"keel.s5.{label}", r["seconds"])
        self.add(f"keel.s5.{label}.ws", r["seconds_ws"])
        self.add(f"keel.s5.{label}.first", r["first"])

    def mlflow_search(self, md: Path, env: dict, n: int, exp_id: str) -> None:
        args = {
            "mode": "search",
            "n": n,
            "queries": 5,
            "filter": FILTER_MLFLOW,
            "experiment_id": exp_id,
        }
        r, _ = call(self.mlflow_py, MLFLOW_WORKER, args, md, env)
        self.info["mlflow.search.hits"] = r["hits"]
        self.add("mlflow.s5", r["seconds"])
        self.add("mlflow.s5.first", r["first"])

    # ---- report --------------------------------------------------------------

    def report(self) -> list[list[str]]:
        """One line per scenario on stdout; returns the Markdown rows."""
        a, m = self.a, self.med
        rows: list[list[str]] = []

        def verdict(ok: bool | None) -> str:
            return "n/a" if ok is None else ("PASS" if ok else "MISS")

        def emit(name, keel, mlflow, floor, ratios, target, ok):
            v = verdict(ok)
            print(
                f"{name}\n    keel {keel} | MLflow {mlflow}"
                + (f" | floor {floor}" if floor else "")
                + f" | {ratios} | target {target}: {v}"
            )
            rows.append([name, keel, mlflow, floor or "", ratios, target, v])

        n = a.points
        k1 = n / m("keel.s1") if m("keel.s1") else None
        m1 = a.mlflow_points / m("mlflow.s1") if m("mlflow.s1") else None
        fl = n / m("floor.s") if m("floor.s") else None
        k3 = a.batches * 1000 / m("keel.s3") if m("keel.s3") else None
        m3 = a.mlflow_batches * 1000 / m("mlflow.s3") if m("mlflow.s3") else None
        r1 = ratio(k1, m1)
        emit(
            f"1. {n:,} log_metric calls until flushed (points/s)",
            f"{fmt_rate(k1)} ({fmt_s(m('keel.s1'))}: loop {fmt_s(m('keel.s1_loop'))}"
            f" + flush {fmt_s(m('keel.s1_flush'))})",
            f"{fmt_rate(m1)} (measured on {a.mlflow_points:,} calls: {fmt_s(m('mlflow.s1'))})",
            "",
            f"keel/MLflow {fmt_x(r1)}",
            ">= 1,000x MLflow",
            None if r1 is None else r1 >= 1000,
        )
        rf = ratio(k1, fl)
        emit(
            f"2. floor: sqlite3 executemany {n:,} rows, 1 WAL txn (rows/s)",
            f"{fmt_rate(k1)} (scenario 1)",
            "-",
            f"{fmt_rate(fl)} ({fmt_s(m('floor.s'))})",
            f"keel/floor {fmt_x(rf)}",
            ">= 0.5x floor",
            None if rf is None else rf >= 0.5,
        )
        r3f, r3m = ratio(k3, fl), ratio(k3, m3)
        emit(
            f"3. {a.batches * 1000:,} points in batches of 1,000 (points/s)",
            f"{fmt_rate(k3)} ({a.batches} x (1,000 log_metric + flush): {fmt_s(m('keel.s3'))})",
            f"{fmt_rate(m3)} ({a.mlflow_batches} x log_batch(1,000): {fmt_s(m('mlflow.s3'))})",
            fmt_rate(fl),
            f"keel/floor {fmt_x(r3f)}; keel/MLflow {fmt_x(r3m)}",
            "within 2x of floor (>= 0.5x)",
            None if r3f is None else r3f >= 0.5,
        )
        k4, m4 = m("keel.s4"), m("mlflow.s4")
        emit(
            "4. fresh process: import + start_run (from process start)",
            f"{fmt_s(k4)} (in-process {fmt_s(m('keel.s4_inproc'))};"
            f" whole process {fmt_s(m('keel.s4_wall'))} vs `python -c pass`"
            f" {fmt_s(m('keel.s4_base'))})",
            f"{fmt_s(m4)} (in-process {fmt_s(m('mlflow.s4_inproc'))};"
            f" whole process {fmt_s(m('mlflow.s4_wall'))} vs `python -c pass`"
            f" {fmt_s(m('mlflow.s4_base'))})",
            "",
            f"MLflow/keel {fmt_x(ratio(m4, k4))}",
            "keel < 0.3 s",
            None if k4 is None else k4 < 0.3,
        )
        nb, ns = self.info.get("search.n.big", 0), self.info.get("search.n.small", 0)
        k5, k5s, m5 = m("keel.s5.big"), m("keel.s5.small"), m("mlflow.s5")
        same = ratio(m5, k5s if ns and ns != nb else k5)
        emit(
            "5. search: auc > 0.9 and depth = 6, sort -auc, limit 100",
            f"{fmt_s(k5)} @ {nb:,} runs"
            + (f"; {fmt_s(k5s)} @ {ns:,} runs" if ns and ns != nb else ""),
            f"{fmt_s(m5)} @ {ns:,} runs" if ns else "n/a",
            "",
            f"MLflow/keel at {ns:,} runs {fmt_x(same)}" if ns else "",
            f"keel < 0.2 s @ {nb:,} runs",
            None if k5 is None else k5 < 0.2,
        )
        k6, m6 = m("keel.s6"), m("mlflow.s6")
        emit(
            f"6. read back a {self.info.get('keel.n6', a.batches * 1000):,}-point history",
            f"{fmt_s(k6)} (get_run(id).history; with an open workspace"
            f" {fmt_s(m('keel.s6_ws'))}; first call {fmt_s(m('keel.s6_first'))})",
            f"{fmt_s(m6)} ({self.info.get('mlflow.n6', 0):,} points; first call"
            f" {fmt_s(m('mlflow.s6_first'))})",
            "",
            f"MLflow/keel {fmt_x(ratio(m6, k6))}",
            "keel < 0.1 s",
            None if k6 is None else k6 < 0.1,
        )
        return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, 1 run")
    ap.add_argument("--runs", type=int, default=None, help="runs (default 3; 1 with --quick)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir")
    ap.add_argument("--workdir", type=Path, default=None, help="parent of the scratch dir (/tmp)")
    ap.add_argument(
        "--mlflow-points",
        type=int,
        default=None,
        help="MLflow log_metric calls in scenario 1 (default 2,000; quick 300)",
    )
    ap.add_argument(
        "--mlflow-search-runs",
        type=int,
        default=None,
        help="MLflow runs to create for scenario 5 (default 5,000; quick 300)",
    )
    ap.add_argument(
        "--mlflow-search-budget",
        type=float,
        default=None,
        help="seconds allowed for creating them (default 300; quick 60)",
    )
    ap.add_argument("--no-mlflow", action="store_true", help="keel and the floor only")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    q = args.quick
    args.runs = args.runs or (1 if q else 3)
    args.points = 20_000 if q else 100_000  # scenarios 1 and 2
    args.batches = 20 if q else 100  # scenarios 3 and 6 (x 1,000 points)
    args.mlflow_batches = args.batches
    args.mlflow_points = args.mlflow_points or (300 if q else 2_000)
    args.search_runs = 5_000 if q else 50_000
    args.mlflow_search_runs = args.mlflow_search_runs or (300 if q else 5_000)
    args.mlflow_search_budget = args.mlflow_search_budget or (60.0 if q else 300.0)
    args.startup_runs = 3 if q else 3 * args.runs

    if not KEEL_PY.exists():
        log(f"keel's venv not found: {KEEL_PY}")
        return 2
    mlflow_py = None if args.no_mlflow else ensure_venv("mlflow", MLFLOW_REQUIREMENTS)

    parent = args.workdir or Path("/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="keel-bench-tracking-", dir=parent))
    log(f"scratch dir: {scratch}")
    load0 = os.getloadavg()
    t_start = time.perf_counter()
    bench = Bench(args, scratch, mlflow_py)
    try:
        bench.logging()
        bench.guarded("start-up", bench.startup)
        bench.guarded("search", bench.search)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if args.keep:
            log(f"kept scratch dir {scratch}")
        else:
            drop_tree(scratch)
    load1 = os.getloadavg()

    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    mode = "quick" if q else "full"
    header = (
        f"tracking benchmark ({mode}), {when}; {os.cpu_count()} cores, load avg "
        f"{load0[0]:.1f} -> {load1[0]:.1f}; Python {platform.python_version()}, "
        f"SQLite {bench.info.get('sqlite', '?')}; keel {bench.info.get('keel', '?')}; "
        f"MLflow {bench.info.get('mlflow', 'skipped' if args.no_mlflow else '?')}; "
        f"median of {args.runs} run(s) (start-up: {args.startup_runs}); "
        f"took {time.perf_counter() - t_start:.0f}s"
    )
    print(f"\n{header}\n")
    rows = bench.report()
    notes = [
        "Both tools on SQLite files in the same scratch dir; each measurement in a fresh "
        "subprocess of the tool's own venv.",
        f"1: MLflow `mlflow.log_metric` commits each point, so it is measured on "
        f"{args.mlflow_points:,} calls, not {args.points:,}; points/s compared.",
        "2: the floor is python `sqlite3` executemany of pre-built (run_pk, key_id, step, ts, "
        "value) tuples, BEGIN..COMMIT, journal WAL, synchronous=FULL, no index, fresh db.",
        "4: time from just before the parent spawns the process (time.time() in argv) to "
        "start_run returning: interpreter start-up included, exit (ending the run) excluded. "
        "keel: `keel.start_run()` (code capture on, cwd not a git repo); MLflow: "
        "`mlflow.start_run()`; both on an existing store.",
        f"5: keel's {bench.info.get('search.n.big', 0):,} runs were bulk-inserted with "
        "SQLAlchemy Core into keel's runs/run_params/run_metrics/metric_chunks/metric_keys, "
        "as keel writes them (in the same run, keel.start_run(params=...) + log_metrics + end "
        f"took {fmt_s(bench.info.get('keel.api_per_run'))} per run: "
        f"{bench.info.get('keel.api_per_run', 0) * args.search_runs / 60:.0f} min for "
        f"{args.search_runs:,}); MLflow's runs came "
        f"from its API (create_run + log_batch + set_terminated): "
        f"{bench.info.get('mlflow.populate', 'n/a')}. keel via KEEL_HOME "
        "(`keel.search_runs` opens the workspace each call); results checked against the "
        "expected top 100.",
        f"6: the history logged in scenario 3 (keel: {args.batches} chunks of 1,000 points); "
        "keel timed as `keel.get_run(id).history('loss')` via KEEL_HOME, MLflow as "
        "`MlflowClient().get_metric_history(run_id, 'loss')`; median of 5 (keel) / 3 (MLflow) "
        "after one untimed call.",
    ]
    print("\nNotes:\n" + "\n".join(f"- {x}" for x in notes))
    print(f"\n### {header}\n")
    print(
        markdown_table(["scenario", "keel", "MLflow", "floor", "ratio", "target", "result"], rows)
    )
    if bench.errors:
        print("\nErrors:")
        for e in bench.errors:
            print(f"- {e[:2000]}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
