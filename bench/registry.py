#!/usr/bin/env python3
"""Model registry benchmark: keel vs MLflow 3.x, side by side, in one run.

    .venv/bin/python bench/registry.py [--quick] [--runs N] [--keep] [--workdir DIR]
                                       [--moves N] [--mlflow-versions N]
                                       [--mlflow-versions-budget S] [--no-mlflow] [-v]

Both tools on SQLite, same machine, same models (built once, in keel's venv,
and joblib-dumped; scikit-learn is the same version in both venvs). Every
measurement runs in a fresh subprocess of the tool's own virtualenv (keel:
/work/main/.venv; MLflow: bench/.venvs/mlflow, created if missing) and prints
one JSON line of timings. MLflow runs with MLFLOW_DISABLE_TELEMETRY=true,
a `sqlite:///` tracking URI in the scratch dir and an explicit
artifact_location.

  1. log_model of a small LogisticRegression (200 x 10, input_example=X[:5]),
     warm process: median of calls 2..N (the first call reported apart).
     keel `run.log_model(model, "churn", input_example=...)`; MLflow
     `mlflow.sklearn.log_model(model, name=..., registered_model_name="churn",
     input_example=...)`. Target: keel < 0.1 s.
  2. Alias move, command to visible in another process. Process B polls in a
     tight loop (keel `resolve_model(ws, "churn@champion").number`; MLflow
     `get_model_version_by_alias`) and logs each change with the monotonic
     clock (CLOCK_MONOTONIC is system-wide, so both processes share it).
     Process A, warm, moves the alias N times with a pause between moves
     (keel: `promote(ws, "churn", 2)` and `rollback(ws, "churn")`
     alternately; MLflow: `set_registered_model_alias` to 2 and 1
     alternately). Reported: median move call, median move start -> first
     read in B that returned the new version (ends of reads; so it includes
     up to one read of B), and B's median read. Target: keel < 5 ms median
     and >= 3x faster than MLflow.
  3. load_model by alias, warm. Small: keel
     `keel.load_model("churn@champion", workspace=ws)` minus a bare
     deserialization of the same stored bytes (skops.io.loads or
     pickle.loads, whichever keel chose), medians of 50. Large (~50 MB: an
     ExtraTreesClassifier grown until its pickle reaches the size): keel load
     vs a bare `joblib.load` of the same model from a file. MLflow:
     `mlflow.sklearn.load_model("models:/name@champion")` (and pyfunc).
     Targets: < 2 ms overhead small; <= 1.5x joblib.load for 50 MB.
  4. `keel models show churn --json` in a fresh process (wall, interpreter
     start and exit included) with 1,000 versions (logged through
     `run.log_model`) and 10,000 alias events (inserted with SQLAlchemy Core
     into keel's `events` and `pointers` tables as `promote` writes them: a
     champion move and a previous move per promotion). MLflow: a fresh
     process doing `get_registered_model` + `search_model_versions("name=...")`
     over as many versions as `create_model_version` makes in a time budget
     (MLflow keeps no alias history). Target: keel < 0.3 s. Also reported:
     promote and rollback at 10,000 events (rollback replays the alias's
     history).

Figures are medians over N runs (default 3) of per-process medians; ratios
are ratios of medians.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
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
    fmt_bytes,
    fmt_ms,
    fmt_x,
    keel_env,
    log,
    markdown_table,
    median,
    mlflow_env,
    parse_result,
    ratio,
    timed_run,
)

MLFLOW_REQUIREMENTS = ["mlflow>=3,<4"]  # the same list as bench/tracking.py: one shared venv
KEEL_PY = REPO_DIR / ".venv" / "bin" / "python"
KEEL_BIN = REPO_DIR / ".venv" / "bin" / "keel"
TREE_TYPE = "sklearn.tree._tree.Tree"

# --------------------------------------------------------------------------
# Worker code (run with `python -c CODE JSON_ARGS` in each tool's venv)
# --------------------------------------------------------------------------

PRELUDE = (
    WORKER_PRELUDE
    + r'''

def mono():
    return time.clock_gettime(time.CLOCK_MONOTONIC)  # system-wide: comparable across processes

def models():
    import joblib, numpy as np
    d = ARGS["models"]
    ex = np.load(os.path.join(d, "examples.npz"))
    return (joblib.load(os.path.join(d, "small.joblib")), ex["small"],
            joblib.load(os.path.join(d, "large.joblib")), ex["large"])

def wait_for(path, timeout=300.0):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {path}")
        time.sleep(0.005)

def poll(read, stop, ready):
    """Read in a tight loop until `stop` exists; log (start, end, value) at each change."""
    for _ in range(20):
        last = read()
    open(ready, "w").close()
    changes, durations = [], []
    check = os.path.exists
    while not check(stop):
        t0 = mono()
        value = read()
        t1 = mono()
        durations.append(t1 - t0)
        if value != last:
            changes.append((t0, t1, value))
            last = value
    out(changes=changes, read=med(durations), reads=len(durations))

def move_loop(moves, ready, n, gap):
    """Run the warm-up moves, wait for the poller, then n timed moves with a pause between."""
    for i in range(4):
        moves[i % 2]()
    wait_for(ready)
    time.sleep(0.2)
    done = []
    for i in range(n):
        fn = moves[i % 2]
        t0 = mono()
        target = fn()
        t1 = mono()
        done.append((t0, t1, target))
        time.sleep(gap)
    out(moves=done)
'''
)

MAKE_MODELS = (
    PRELUDE
    + r"""
import pickle
import joblib, numpy as np
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression
d = ARGS["models"]
rs = np.random.RandomState(0)
Xs = rs.rand(200, 10)
ys = (Xs[:, 0] + 0.3 * rs.rand(200) > 0.6).astype(int)
small = LogisticRegression().fit(Xs, ys)
Xl = rs.rand(20_000, 10)
yl = rs.randint(0, 2, 20_000)  # noise: fully grown trees, big ones
large = ExtraTreesClassifier(n_estimators=0, max_features=1, random_state=0, warm_start=True)
target = ARGS["large_mb"] * 1e6
size = 0
while size < target:
    large.n_estimators += 2
    large.fit(Xl, yl)
    size = len(pickle.dumps(large, protocol=5))
joblib.dump(small, os.path.join(d, "small.joblib"))
joblib.dump(large, os.path.join(d, "large.joblib"))
np.savez(os.path.join(d, "examples.npz"), small=Xs[:5], large=Xl[:5])
out(small_pickle=len(pickle.dumps(small, protocol=5)), large_pickle=size,
    large_trees=large.n_estimators,
    large_joblib=os.path.getsize(os.path.join(d, "large.joblib")))
"""
)

KEEL_WORKER = (
    PRELUDE
    + r"""
import pickle
import keel

def stored_files(ws, mv):
    from keel.store.objects import Tree, iter_content
    tree = Tree.decode(ws.objects.get(mv.oid))
    return {e.path: b"".join(iter_content(ws.objects, e.oid, e.chunked)) for e in tree}

def bare_loader(mv, files):
    if mv.format == "skops":
        import skops.io as sio
        data, trusted = files["model.skops"], mv.details.get("trusted", [])
        return lambda: sio.loads(data, trusted=trusted)
    data = files["model.pkl"]
    return lambda: pickle.loads(data)

if MODE == "models":
    import joblib
    from keel.registry.versions import promote, resolve_model
    small, xs, large, xl = models()
    ws = keel.init(ARGS["ws"])
    run = keel.start_run(name="bench", workspace=ws, capture_code=False)
    # 1: log_model, first call and warm calls
    logs = [timeit(lambda: run.log_model(small, "churn", input_example=xs))[0]
            for _ in range(ARGS["logs"])]
    promote(ws, "churn", 1)
    # 3 small: keel load by alias vs a bare deserialization of the same stored bytes
    ref, n = "churn@champion", ARGS["loads"]
    for _ in range(3):
        lm = keel.load_model(ref, workspace=ws)
    assert lm.version.number == 1 and type(lm.model).__name__ == "LogisticRegression"
    mv = lm.version
    files = stored_files(ws, mv)
    bare = bare_loader(mv, files)
    raw = pickle.dumps(small, protocol=5)
    keel_t, home_t, bare_t, pick_t, resolve_t, read_t = [], [], [], [], [], []
    for _ in range(n):  # interleaved, so drift hits all alike
        keel_t.append(timeit(lambda: keel.load_model(ref, workspace=ws))[0])
        home_t.append(timeit(lambda: keel.load_model(ref))[0])  # KEEL_HOME, as a user writes it
        bare_t.append(timeit(bare)[0])
        pick_t.append(timeit(lambda: pickle.loads(raw))[0])
        resolve_t.append(timeit(lambda: resolve_model(ws, ref))[0])
        read_t.append(timeit(lambda: stored_files(ws, mv))[0])
    # 3 large: keel load vs joblib.load of the same model from a file
    t_large, mvl = timeit(lambda: run.log_model(large, "big", input_example=xl))
    promote(ws, "big", 1)
    lml = keel.load_model("big@champion", workspace=ws)
    assert type(lml.model).__name__ == "ExtraTreesClassifier"
    path = os.path.join(ARGS["models"], "large.joblib")
    bare_l = bare_loader(mvl, stored_files(ws, mvl))
    jl = joblib.load(path)
    assert (jl.predict(xl) == lml.predict(xl)).all()
    del lml, jl
    kl_t, jl_t, bl_t, rl_t = [], [], [], []
    for _ in range(ARGS["large_loads"]):
        kl_t.append(timeit(lambda: keel.load_model("big@champion", workspace=ws))[0])
        jl_t.append(timeit(lambda: joblib.load(path))[0])
        bl_t.append(timeit(bare_l)[0])
        rl_t.append(timeit(lambda: stored_files(ws, mvl))[0])
    run.end()
    out(version=keel.__version__, log_first=logs[0], log_warm=med(logs[1:]), n_logs=len(logs),
        format=mv.format, size=mv.size,
        load=med(keel_t), load_home=med(home_t), bare=med(bare_t), pickle=med(pick_t),
        resolve=med(resolve_t), read=med(read_t),
        log_large=t_large, format_large=mvl.format, size_large=mvl.size,
        load_large=med(kl_t), joblib_large=med(jl_t), bare_large=med(bl_t),
        read_large=med(rl_t))

elif MODE == "alias_setup":
    from keel.registry.versions import promote
    small, xs, _, _ = models()
    ws = keel.init(ARGS["ws"])
    with keel.start_run(name="setup", workspace=ws, capture_code=False) as run:
        for _ in range(2):
            run.log_model(small, "churn", input_example=xs)
    promote(ws, "churn", 1)
    out(ok=True)

elif MODE == "poller":
    from keel.registry.versions import resolve_model
    ws = keel.connect(ARGS["ws"])
    poll(lambda: resolve_model(ws, "churn@champion").number, ARGS["stop"], ARGS["ready"])

elif MODE == "mover":
    from keel.registry.versions import promote, rollback
    ws = keel.connect(ARGS["ws"])
    def up():
        promote(ws, "churn", 2)
        return 2
    def back():
        return int(rollback(ws, "churn").to_target)
    move_loop([up, back], ARGS["ready"], ARGS["n"], ARGS["gap"])

elif MODE == "populate":
    import random
    from keel.registry.versions import ALIAS, resolve_model
    from keel.store.db import actor, events, pointers
    small, xs, _, _ = models()
    nv, ne = ARGS["versions"], ARGS["events"]
    ws = keel.init(ARGS["ws"])
    t0 = time.perf_counter()
    with keel.start_run(name="populate", workspace=ws, capture_code=False) as run:
        for _ in range(nv):
            run.log_model(small, "churn", input_example=xs)
    t_versions = time.perf_counter() - t0
    # alias events as promote() writes them: champion a -> b, then previous ? -> a
    rng = random.Random(7)
    who, at = actor(), time.time() - ne
    rows, state, champions = [], {}, []
    def move(alias, to, message):
        key = f"churn@{alias}"
        rows.append({"at": at + len(rows), "actor": who, "kind": ALIAS, "name": key,
                     "from_target": state.get(key), "to_target": to, "message": message,
                     "action": "promote"})
        state[key] = to
    while len(rows) < ne:
        before = state.get("churn@champion")
        to = str(rng.randint(1, nv))
        if to == before:
            continue
        move("champion", to, f"promote v{to}")
        champions.append(to)
        if before is not None and len(rows) < ne:
            move("previous", before, f"champion moved to v{to}")
    def txn(conn):
        conn.execute(events.insert(), rows)
        conn.execute(pointers.insert(), [
            {"kind": ALIAS, "name": k, "target": v, "updated_at": at + len(rows)}
            for k, v in state.items()])
    t1 = time.perf_counter()
    ws.db.write(txn)
    t_events = time.perf_counter() - t1
    assert resolve_model(ws, "churn@champion").number == int(champions[-1])
    out(versions=nv, events=len(rows), seconds_versions=t_versions, seconds_events=t_events,
        champions=champions[-2:])

elif MODE == "show_inproc":  # the parts of `keel models show --json`, warm
    from keel.cli.models import _event
    from keel.registry.versions import alias_history, model_versions_of
    ws = keel.connect(ARGS["ws"])
    v_t, e_t, j_t = [], [], []
    for _ in range(ARGS["reps"] + 1):
        tv, versions = timeit(lambda: model_versions_of(ws, "churn"))
        te, moves = timeit(lambda: alias_history(ws, "churn"))
        def dump():  # as keel.cli.output.emit_json does it
            doc = {"name": "churn", "aliases": {a: v.number for v in versions for a in v.aliases},
                   "versions": [v.to_dict() for v in versions],
                   "events": [_event(e) for e in moves]}
            return json.dumps(doc, indent=2, default=str, allow_nan=True)
        tj, _ = timeit(dump)
        v_t.append(tv); e_t.append(te); j_t.append(tj)
    out(versions=med(v_t[1:]), events=med(e_t[1:]), json=med(j_t[1:]),
        n_versions=len(versions), n_events=len(moves))

elif MODE == "big_moves":
    from keel.registry.versions import promote, rollback
    ws = keel.connect(ARGS["ws"])
    first = rollback(ws, "churn")
    assert first.to_target == ARGS["champions"][0], (first, ARGS["champions"])
    p_t, r_t = [], []
    for i in range(ARGS["n"]):
        p_t.append(timeit(lambda: promote(ws, "churn", ARGS["champions"][1]))[0])
        r_t.append(timeit(lambda: rollback(ws, "churn"))[0])
    out(promote=med(p_t), rollback=med(r_t))
"""
)

MLFLOW_WORKER = (
    PRELUDE
    + r"""
import logging, warnings
warnings.filterwarnings("ignore")
logging.getLogger("mlflow").setLevel(logging.ERROR)
import mlflow
from mlflow import MlflowClient

if MODE == "models":
    small, xs, large, xl = models()
    client = MlflowClient()
    exp = client.create_experiment("bench", artifact_location=ARGS["art"])
    mlflow.set_experiment(experiment_id=exp)
    with mlflow.start_run():
        logs = [timeit(lambda: mlflow.sklearn.log_model(
                    small, name="model", registered_model_name="churn", input_example=xs))[0]
                for _ in range(ARGS["logs"])]
        t_large, _ = timeit(lambda: mlflow.sklearn.log_model(
            large, name="big", registered_model_name="big", input_example=xl,
            skops_trusted_types=[ARGS["tree_type"]]))
    client.set_registered_model_alias("churn", "champion", "1")
    client.set_registered_model_alias("big", "champion", "1")
    uri = "models:/churn@champion"
    for _ in range(3):
        m = mlflow.sklearn.load_model(uri)
        p = mlflow.pyfunc.load_model(uri)
    assert type(m).__name__ == "LogisticRegression"
    sk_t, py_t = [], []
    for _ in range(ARGS["loads"]):
        sk_t.append(timeit(lambda: mlflow.sklearn.load_model(uri))[0])
        py_t.append(timeit(lambda: mlflow.pyfunc.load_model(uri))[0])
    big = "models:/big@champion"
    assert type(mlflow.sklearn.load_model(big)).__name__ == "ExtraTreesClassifier"
    lg_t = [timeit(lambda: mlflow.sklearn.load_model(big))[0] for _ in range(ARGS["large_loads"])]
    out(version=mlflow.__version__, log_first=logs[0], log_warm=med(logs[1:]), n_logs=len(logs),
        log_large=t_large, load=med(sk_t), load_pyfunc=med(py_t), load_large=med(lg_t))

elif MODE == "alias_setup":
    client = MlflowClient()
    client.create_experiment("bench", artifact_location=ARGS["art"])  # creates the db
    client.create_registered_model("churn")
    for _ in range(2):
        client.create_model_version("churn", ARGS["source"])
    client.set_registered_model_alias("churn", "champion", "1")
    out(ok=True)

elif MODE == "poller":
    client = MlflowClient()
    poll(lambda: int(client.get_model_version_by_alias("churn", "champion").version),
         ARGS["stop"], ARGS["ready"])

elif MODE == "mover":
    client = MlflowClient()
    def to(v):
        def fn():
            client.set_registered_model_alias("churn", "champion", str(v))
            return v
        return fn
    move_loop([to(2), to(1)], ARGS["ready"], ARGS["n"], ARGS["gap"])

elif MODE == "populate":
    client = MlflowClient()
    client.create_experiment("bench", artifact_location=ARGS["art"])  # creates the db
    client.create_registered_model("churn")
    t0 = time.perf_counter()
    deadline = t0 + ARGS["budget"]
    done = 0
    while done < ARGS["versions"] and time.perf_counter() < deadline:
        client.create_model_version("churn", ARGS["source"], description=f"v{done + 1}")
        done += 1
    client.set_registered_model_alias("churn", "champion", str(done))
    client.set_registered_model_alias("churn", "previous", str(max(1, done - 1)))
    out(versions=done, seconds=time.perf_counter() - t0)

elif MODE == "show":
    def show():
        client = MlflowClient()
        rm = client.get_registered_model("churn")
        return rm, client.search_model_versions("name='churn'")
    first, (rm, versions) = timeit(show)
    assert len(versions) == ARGS["versions"], len(versions)
    warm = [timeit(show)[0] for _ in range(ARGS["reps"])]
    out(first=first, warm=med(warm), n=len(versions), aliases=rm.aliases)
"""
)

# The fresh-process MLflow equivalent of `keel models show churn --json`.
MLFLOW_SHOW_FRESH = (
    "import json\n"
    "from mlflow import MlflowClient\n"
    "c = MlflowClient()\n"
    "rm = c.get_registered_model('churn')\n"
    "vs = c.search_model_versions(\"name='churn'\")\n"
    "text = json.dumps({'aliases': rm.aliases, 'versions': [dict(v) for v in vs]}, default=str)\n"
    "print(len(vs))\n"
)


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def call(py: Path, code: str, args: dict, cwd: Path, env: dict[str, str], timeout: float = 3600):
    """Run a worker; return its JSON result."""
    p = subprocess.run(
        [str(py), "-c", code, json.dumps(args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if p.returncode != 0:
        raise CommandFailed(
            f"worker failed (rc={p.returncode}): {py} mode={args.get('mode')}\n"
            f"stdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
        )
    try:
        return parse_result(p.stdout)
    except ValueError as exc:
        raise CommandFailed(f"{exc}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}")


def match_moves(moves: list, changes: list) -> tuple[list[float], list[float], int]:
    """(move call durations, move start -> seen in B, moves B never saw before the next move)."""
    calls, seen, missed = [], [], 0
    for i, (t0, t1, target) in enumerate(moves):
        nxt = moves[i + 1][0] if i + 1 < len(moves) else float("inf")
        calls.append(t1 - t0)
        hit = next((te for _ts, te, v in changes if v == target and t0 < te <= nxt), None)
        if hit is None:
            missed += 1
        else:
            seen.append(hit - t0)
    return calls, seen, missed


class Bench:
    def __init__(self, args, scratch: Path, mlflow_py: Path | None):
        self.a = args
        self.scratch = scratch
        self.mlflow_py = mlflow_py
        self.models = scratch / "models"
        self.s: dict[str, list[float]] = defaultdict(list)
        self.info: dict[str, object] = {}
        self.errors: list[str] = []

    def add(self, key: str, value: float | None) -> None:
        if value is None:
            return
        self.s[key].append(value)
        log(f"    {key:<24} {value:.5f}")

    def med(self, key: str) -> float | None:
        return median(self.s[key]) if self.s.get(key) else None

    def guarded(self, what: str, fn, *a) -> None:
        try:
            fn(*a)
        except (
            CommandFailed,
            OSError,
            ValueError,
            KeyError,
            AssertionError,
            subprocess.TimeoutExpired,
        ) as e:
            msg = f"{what}: {type(e).__name__}: {e}"
            self.errors.append(msg)
            log(f"  ERROR {msg}")
            if self.a.verbose:
                traceback.print_exc()

    def fresh(self, name: str) -> Path:
        d = self.scratch / name
        drop_tree(d)
        d.mkdir(parents=True)
        return d

    # ---- setup -----------------------------------------------------------------

    def make_models(self) -> None:
        log(f"[setup] building the models (large: ~{self.a.large_mb} MB pickled) ...")
        self.models.mkdir()
        r = call(
            KEEL_PY,
            MAKE_MODELS,
            {"mode": "make", "models": str(self.models), "large_mb": self.a.large_mb},
            self.models,
            base_env(),
        )
        self.info.update({f"model.{k}": v for k, v in r.items()})
        log(
            f"    small {fmt_bytes(r['small_pickle'])} pickled; large {r['large_trees']} trees, "
            f"{fmt_bytes(r['large_pickle'])} pickled, {fmt_bytes(r['large_joblib'])} joblib"
        )

    # ---- 1 and 3 ---------------------------------------------------------------

    def models_run(self, i: int) -> None:
        a = self.a
        ws = self.fresh(f"keel-models-{i}")
        r = call(
            KEEL_PY,
            KEEL_WORKER,
            {
                "mode": "models",
                "ws": str(ws),
                "models": str(self.models),
                "logs": a.keel_logs,
                "loads": a.loads,
                "large_loads": a.large_loads,
            },
            ws,
            keel_env(ws),
        )
        self.info["keel"] = r["version"]
        for k in ("format", "size", "format_large", "size_large", "n_logs"):
            self.info[f"keel.{k}"] = r[k]
        for k in (
            "log_first",
            "log_warm",
            "load",
            "load_home",
            "bare",
            "pickle",
            "resolve",
            "read",
            "log_large",
            "load_large",
            "joblib_large",
            "bare_large",
            "read_large",
        ):
            self.add(f"keel.{k}", r[k])
        self.add("keel.overhead", r["load"] - r["bare"])
        self.add("keel.overhead_home", r["load_home"] - r["bare"])
        drop_tree(ws)
        if not self.mlflow_py:
            return
        d = self.fresh(f"mlflow-models-{i}")
        r = call(
            self.mlflow_py,
            MLFLOW_WORKER,
            {
                "mode": "models",
                "art": (d / "artifacts").as_uri(),
                "models": str(self.models),
                "logs": a.mlflow_logs,
                "loads": a.mlflow_loads,
                "large_loads": a.large_loads,
                "tree_type": TREE_TYPE,
            },
            d,
            mlflow_env(d),
        )
        self.info["mlflow"] = r["version"]
        self.info["mlflow.n_logs"] = r["n_logs"]
        for k in ("log_first", "log_warm", "log_large", "load", "load_pyfunc", "load_large"):
            self.add(f"mlflow.{k}", r[k])
        drop_tree(d)

    # ---- 2 -------------------------------------------------------------------------

    def alias_run(self, i: int) -> None:
        tools = [("keel", KEEL_PY, KEEL_WORKER)]
        if self.mlflow_py:
            tools.append(("mlflow", self.mlflow_py, MLFLOW_WORKER))
        for name, py, code in tools:
            self.guarded(f"{name} alias move", self.alias_tool, i, name, py, code)

    def alias_tool(self, i: int, name: str, py: Path, code: str) -> None:
        d = self.fresh(f"{name}-alias-{i}")
        env = keel_env(d) if name == "keel" else mlflow_env(d)
        src = d / "source"
        src.mkdir()
        common = {"ws": str(d), "models": str(self.models)}
        call(
            py,
            code,
            {**common, "mode": "alias_setup", "art": (d / "art").as_uri(), "source": str(src)},
            d,
            env,
        )
        ready, stop = d / "ready", d / "stop"
        sync = {**common, "ready": str(ready), "stop": str(stop)}
        with open(d / "poller.out", "w") as po, open(d / "poller.err", "w") as pe:
            poller = subprocess.Popen(
                [str(py), "-c", code, json.dumps({**sync, "mode": "poller"})],
                cwd=d,
                env=env,
                stdout=po,
                stderr=pe,
            )
            try:
                mover = call(
                    py,
                    code,
                    {**sync, "mode": "mover", "n": self.a.moves, "gap": self.a.gap},
                    d,
                    env,
                    timeout=600,
                )
            finally:
                stop.touch()
                try:
                    poller.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    poller.kill()
                    poller.wait()
        if poller.returncode != 0:
            raise CommandFailed(
                f"{name} poller failed (rc={poller.returncode}):\n"
                f"{(d / 'poller.err').read_text()[-3000:]}"
            )
        polled = parse_result((d / "poller.out").read_text())
        calls, seen, missed = match_moves(mover["moves"], polled["changes"])
        self.add(f"{name}.move", median(calls))
        self.add(f"{name}.visible", median(seen) if seen else None)
        self.add(f"{name}.poll_read", polled["read"])
        self.info[f"{name}.moves"] = len(calls)
        self.info[f"{name}.missed"] = self.info.get(f"{name}.missed", 0) + missed
        self.info[f"{name}.reads"] = polled["reads"]
        drop_tree(d)

    # ---- 4 -------------------------------------------------------------------------

    def populate(self) -> None:
        a = self.a
        ws = self.fresh("keel-show")
        log(
            f"[4] keel: {a.versions:,} versions via run.log_model + {a.events:,} alias events "
            "(SQLAlchemy Core) ..."
        )
        r = call(
            KEEL_PY,
            KEEL_WORKER,
            {
                "mode": "populate",
                "ws": str(ws),
                "models": str(self.models),
                "versions": a.versions,
                "events": a.events,
            },
            ws,
            keel_env(ws),
        )
        self.info["keel.populate"] = (
            f"{r['versions']:,} versions via log_model in {r['seconds_versions']:.1f}s "
            f"({fmt_ms(r['seconds_versions'] / r['versions'])} each); {r['events']:,} events "
            f"inserted in {fmt_ms(r['seconds_events'])}"
        )
        self.info["keel.champions"] = r["champions"]
        log(f"    {self.info['keel.populate']}")
        if self.mlflow_py:
            d = self.fresh("mlflow-show")
            src = d / "source"
            src.mkdir()
            log(
                f"[4] MLflow: up to {a.mlflow_versions:,} versions via create_model_version "
                f"(budget {a.mlflow_versions_budget:.0f}s) ..."
            )
            r = call(
                self.mlflow_py,
                MLFLOW_WORKER,
                {
                    "mode": "populate",
                    "art": (d / "art").as_uri(),
                    "source": str(src),
                    "versions": a.mlflow_versions,
                    "budget": a.mlflow_versions_budget,
                },
                d,
                mlflow_env(d),
            )
            self.info["mlflow.versions"] = r["versions"]
            self.info["mlflow.populate"] = (
                f"{r['versions']:,} versions via create_model_version in {r['seconds']:.1f}s"
            )
            log(f"    {self.info['mlflow.populate']}")

    def show_run(self, i: int) -> None:
        a = self.a
        ws = self.scratch / "keel-show"
        env = keel_env(ws)
        cmd = [str(KEEL_BIN), "models", "show", "churn", "--json"]
        timed_run(cmd, cwd=ws, env=env)  # untimed warm-up (page cache)
        for _ in range(a.show_reps):
            t, p = timed_run([str(KEEL_PY), "-c", "pass"], cwd=ws, env=env)
            self.add("keel.py_base", t)
            t, p = timed_run(cmd, cwd=ws, env=env)
            self.add("keel.show", t)
            t, _ = timed_run(cmd[:-1], cwd=ws, env=env)
            self.add("keel.show_text", t)
        shown = json.loads(p.stdout)
        self.info["keel.show.versions"] = len(shown["versions"])
        self.info["keel.show.events"] = len(shown["events"])
        self.info["keel.show.bytes"] = len(p.stdout)
        # `--json` shows the newest 100 versions and events (--limit) with the totals.
        assert shown["versions_total"] == a.versions, shown["versions_total"]
        assert len(shown["versions"]) == min(100, a.versions), len(shown["versions"])
        t, full = timed_run([*cmd, "--limit", "100000"], cwd=ws, env=env)
        self.add("keel.show_all", t)  # every version and event, for reference
        assert len(json.loads(full.stdout)["versions"]) == a.versions
        r = call(KEEL_PY, KEEL_WORKER, {"mode": "show_inproc", "ws": str(ws), "reps": 3}, ws, env)
        for k in ("versions", "events", "json"):
            self.add(f"keel.show_inproc.{k}", r[k])
        if i == 0:  # moves on a copy, so the shown workspace keeps its counts
            copy = self.scratch / "keel-show-moves"
            drop_tree(copy)
            shutil.copytree(ws, copy)
            r = call(
                KEEL_PY,
                KEEL_WORKER,
                {
                    "mode": "big_moves",
                    "ws": str(copy),
                    "n": 5,
                    "champions": self.info["keel.champions"],
                },
                copy,
                keel_env(copy),
            )
            self.add("keel.big_promote", r["promote"])
            self.add("keel.big_rollback", r["rollback"])
            drop_tree(copy)
        if not self.mlflow_py:
            return
        d = self.scratch / "mlflow-show"
        menv = mlflow_env(d)
        n = self.info["mlflow.versions"]
        fresh = [str(self.mlflow_py), "-c", MLFLOW_SHOW_FRESH]
        timed_run(fresh, cwd=d, env=menv)  # untimed warm-up
        for _ in range(a.show_reps):
            t, _ = timed_run([str(self.mlflow_py), "-c", "pass"], cwd=d, env=menv)
            self.add("mlflow.py_base", t)
            t, p = timed_run(fresh, cwd=d, env=menv)
            self.add("mlflow.show", t)
        assert p.stdout.strip() == str(n), p.stdout
        r = call(self.mlflow_py, MLFLOW_WORKER, {"mode": "show", "versions": n, "reps": 3}, d, menv)
        self.add("mlflow.show_warm", r["warm"])

    # ---- report ----------------------------------------------------------------------

    def report(self) -> list[list[str]]:
        m, info = self.med, self.info
        rows: list[list[str]] = []

        def verdict(ok: bool | None) -> str:
            return "n/a" if ok is None else ("PASS" if ok else "MISS")

        def emit(name, keel, mlflow, ratios, target, ok):
            v = verdict(ok)
            print(f"{name}\n    keel {keel}\n    MLflow {mlflow}\n    {ratios} | {target}: {v}")
            rows.append([name, keel, mlflow, ratios, target, v])

        k1 = m("keel.log_warm")
        emit(
            "1. log_model, small LogisticRegression (warm)",
            f"{fmt_ms(k1)} (median of calls 2..{info.get('keel.n_logs', '?')}; first call "
            f"{fmt_ms(m('keel.log_first'))}; {info.get('keel.format', '?')}, "
            f"{fmt_bytes(info.get('keel.size'))})",
            f"{fmt_ms(m('mlflow.log_warm'))} (median of calls 2..{info.get('mlflow.n_logs', '?')}; "
            f"first {fmt_ms(m('mlflow.log_first'))})",
            f"MLflow/keel {fmt_x(ratio(m('mlflow.log_warm'), k1))}",
            "keel < 0.1 s",
            None if k1 is None else k1 < 0.1,
        )
        k2, m2 = m("keel.visible"), m("mlflow.visible")
        r2 = ratio(m2, k2)
        emit(
            "2. alias move -> visible in another process",
            f"{fmt_ms(k2)} (move call {fmt_ms(m('keel.move'))}, promote/rollback; "
            f"B's read {fmt_ms(m('keel.poll_read'))}; {info.get('keel.moves', '?')} moves/run, "
            f"unseen {info.get('keel.missed', 0)})",
            f"{fmt_ms(m2)} (move call {fmt_ms(m('mlflow.move'))}; B's read "
            f"{fmt_ms(m('mlflow.poll_read'))}; unseen {info.get('mlflow.missed', 0)})",
            f"MLflow/keel {fmt_x(r2)}",
            "keel < 5 ms and >= 3x MLflow",
            None if k2 is None else (k2 < 0.005 and (r2 is None or r2 >= 3)),
        )
        k3 = m("keel.overhead")
        emit(
            "3a. load_model('churn@champion'), small: overhead over bare deserialization",
            f"{fmt_ms(k3)} (load {fmt_ms(m('keel.load'))} - bare "
            f"{info.get('keel.format', '?')} loads {fmt_ms(m('keel.bare'))}; pickle.loads "
            f"{fmt_ms(m('keel.pickle'))}; resolve {fmt_ms(m('keel.resolve'))}, read+verify "
            f"{fmt_ms(m('keel.read'))}; via KEEL_HOME {fmt_ms(m('keel.load_home'))})",
            f"{fmt_ms(m('mlflow.load'))} (sklearn.load_model; pyfunc "
            f"{fmt_ms(m('mlflow.load_pyfunc'))})",
            f"MLflow/keel load {fmt_x(ratio(m('mlflow.load'), m('keel.load')))}",
            "keel overhead < 2 ms",
            None if k3 is None else k3 < 0.002,
        )
        kl, jl = m("keel.load_large"), m("keel.joblib_large")
        r3 = ratio(kl, jl)
        emit(
            f"3b. load_model, large ({fmt_bytes(info.get('model.large_pickle'))} pickled, "
            f"{info.get('model.large_trees', '?')} trees) vs joblib.load",
            f"{fmt_ms(kl)} ({info.get('keel.format_large', '?')}; bare loads "
            f"{fmt_ms(m('keel.bare_large'))}, read+verify {fmt_ms(m('keel.read_large'))}; "
            f"joblib.load {fmt_ms(jl)}; log_model {fmt_ms(m('keel.log_large'))})",
            f"{fmt_ms(m('mlflow.load_large'))} (log_model {fmt_ms(m('mlflow.log_large'))})",
            f"keel/joblib {fmt_x(r3)}; MLflow/keel {fmt_x(ratio(m('mlflow.load_large'), kl))}",
            "keel <= 1.5x joblib.load",
            None if r3 is None else r3 <= 1.5,
        )
        k4 = m("keel.show")
        nm = info.get("mlflow.versions", 0)
        emit(
            f"4. `keel models show churn --json`, {info.get('keel.show.versions', '?'):,} "
            f"versions, {info.get('keel.show.events', '?'):,} alias events (fresh process)",
            f"{fmt_ms(k4)} (`python -c pass` {fmt_ms(m('keel.py_base'))}; text output "
            f"{fmt_ms(m('keel.show_text'))}; in-process: versions "
            f"{fmt_ms(m('keel.show_inproc.versions'))}, events "
            f"{fmt_ms(m('keel.show_inproc.events'))}, JSON {fmt_ms(m('keel.show_inproc.json'))}; "
            f"at these counts promote {fmt_ms(m('keel.big_promote'))}, rollback "
            f"{fmt_ms(m('keel.big_rollback'))})",
            f"{fmt_ms(m('mlflow.show'))} @ {nm:,} versions, no alias history (fresh "
            f"get_registered_model + search_model_versions; `python -c pass` "
            f"{fmt_ms(m('mlflow.py_base'))}; warm {fmt_ms(m('mlflow.show_warm'))})"
            if nm
            else "n/a",
            f"MLflow/keel {fmt_x(ratio(m('mlflow.show'), k4))}",
            "keel < 0.3 s",
            None if k4 is None else k4 < 0.3,
        )
        return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls, 1 run")
    ap.add_argument("--runs", type=int, default=None, help="runs (default 3; 1 with --quick)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir")
    ap.add_argument("--workdir", type=Path, default=None, help="parent of the scratch dir (/tmp)")
    ap.add_argument("--moves", type=int, default=None, help="alias moves per run (30; quick 15)")
    ap.add_argument(
        "--mlflow-versions",
        type=int,
        default=None,
        help="MLflow model versions for scenario 4 (default 1,000; quick 200)",
    )
    ap.add_argument(
        "--mlflow-versions-budget",
        type=float,
        default=None,
        help="seconds allowed for creating them (default 180; quick 60)",
    )
    ap.add_argument("--no-mlflow", action="store_true", help="keel only")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    q = args.quick
    args.runs = args.runs or (1 if q else 3)
    args.keel_logs = 10 if q else 20
    args.mlflow_logs = 2 if q else 4
    args.loads = 50
    args.mlflow_loads = 10 if q else 20
    args.large_mb = 50
    args.large_loads = 3 if q else 7
    args.moves = args.moves or (15 if q else 30)
    args.gap = 0.1
    args.versions = 1_000
    args.events = 10_000
    args.mlflow_versions = args.mlflow_versions or (200 if q else 1_000)
    args.mlflow_versions_budget = args.mlflow_versions_budget or (60.0 if q else 180.0)
    args.show_reps = 3 if q else 5

    if not KEEL_PY.exists():
        log(f"keel's venv not found: {KEEL_PY}")
        return 2
    mlflow_py = None if args.no_mlflow else ensure_venv("mlflow", MLFLOW_REQUIREMENTS)

    parent = args.workdir or Path("/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="keel-bench-registry-", dir=parent))
    log(f"scratch dir: {scratch}")
    load0 = os.getloadavg()
    t_start = time.perf_counter()
    bench = Bench(args, scratch, mlflow_py)
    try:
        bench.make_models()
        bench.guarded("populate", bench.populate)
        for i in range(args.runs):
            log(f"[1,3] run {i + 1}/{args.runs}")
            bench.guarded("models", bench.models_run, i)
            log(f"[2] run {i + 1}/{args.runs}")
            bench.alias_run(i)
            log(f"[4] run {i + 1}/{args.runs}")
            bench.guarded("show", bench.show_run, i)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except CommandFailed as e:
        log(f"setup failed: {e}")
        return 1
    finally:
        if args.keep:
            log(f"kept scratch dir {scratch}")
        else:
            drop_tree(scratch)
    load1 = os.getloadavg()

    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    mode = "quick" if q else "full"
    header = (
        f"registry benchmark ({mode}), {when}; {os.cpu_count()} cores, load avg "
        f"{load0[0]:.1f} -> {load1[0]:.1f}; Python {platform.python_version()}; "
        f"keel {bench.info.get('keel', '?')}; "
        f"MLflow {bench.info.get('mlflow', 'skipped' if args.no_mlflow else '?')}; "
        f"median of {args.runs} run(s); took {time.perf_counter() - t_start:.0f}s"
    )
    print(f"\n{header}\n")
    rows = bench.report()
    info = bench.info
    notes = [
        "Each measurement in a fresh subprocess of the tool's own venv; both tools on SQLite "
        "files in one scratch dir; the same joblib-dumped models for both.",
        f"1: keel {args.keel_logs} and MLflow {args.mlflow_logs} log_model calls per process "
        "(MLflow's default requirement inference and input example included).",
        f"2: {args.moves} moves per run, {args.gap * 1000:.0f} ms apart, after 4 untimed ones; "
        "'visible' = move start to the end of B's first read returning the new version "
        "(B reads back to back, so it includes up to one read). keel's B reads with "
        "`resolve_model` (pointer + version row); MLflow's with `get_model_version_by_alias`. "
        "MLflow has no promote/rollback: A sets the alias to 2 and 1 alternately.",
        "3: medians of 50 (small; MLflow "
        f"{args.mlflow_loads}) and {args.large_loads} (large) warm loads, keel and the bare "
        "loads interleaved; bare = the same stored bytes through skops.io.loads (trusted "
        "types as keel recorded) or pickle.loads, read outside the timer. read+verify = "
        "reading the version's tree and blobs from keel's object store.",
        f"4: keel: {info.get('keel.populate', 'n/a')}; events are champion/previous pairs "
        "as `promote` writes them (then pointers set to the final state). `keel models show` "
        "prints every version and event in JSON. MLflow: "
        f"{info.get('mlflow.populate', 'n/a')} (dummy source folder; no signature rows). "
        "promote/rollback at these counts measured once, on a copy, 5 alternations.",
    ]
    print("\nNotes:\n" + "\n".join(f"- {x}" for x in notes))
    print(f"\n### {header}\n")
    print(markdown_table(["scenario", "keel", "MLflow", "ratio", "target", "result"], rows))
    if bench.errors:
        print("\nErrors:")
        for e in bench.errors:
            print(f"- {e[:2000]}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
