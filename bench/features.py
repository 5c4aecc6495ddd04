#!/usr/bin/env python3
"""Point-in-time training sets: keel beside Feast's local file offline store, in one run.

1. **The feast#3003 shape**: 17,000 entity rows; 10 feature views of 100 float features
   each (1,000 float64 features), 5,000 feature rows per view over two years for 200
   customers (49 MB of Parquet), ttl 90 days. On this shape Feast drops about 7,200
   entity rows, as the issue measured. Side by side, each in a fresh process, in turns:
   - keel: ``keel features training-set --entities entities.parquet --features v0,…,v9
     --out train.parquet`` (the whole command: the views computed from their recorded
     source versions, the join, the Parquet written, the training set recorded and
     profiled as a dataset version);
   - Feast 0.67 (its own virtualenv): ``store.get_historical_features(entity_df,
     features).to_df()`` after ``feast apply``;
   - floors (keel's Python): DuckDB ASOF on the keys then a hash join for the columns;
     ``pandas.merge_asof`` per view; DuckDB ASOF chaining all columns.
   Each: wall seconds of the work (and of the whole process), peak RSS, rows returned,
   rows with at least one feature. The same rows must come back from keel and the floors.
2. **10,000,000 × 10,000,000** (``--big-rows``, default 10,000,000; 0 skips): one view of
   4 features, a training set by keel (whole command) beside a bare DuckDB ``ASOF LEFT
   JOIN`` on the same Parquet files (its own process).
3. **Online lookup** (issue 28): 50 float features (5 views of 10) of one entity, 200
   entities. Two real ``keel serve`` processes of the same model on 127.0.0.1: one trained
   on a training set (clients send ``customer_id``; the server looks the 50 features up
   in the online table), one logged without (clients send the 50 values inline). The
   requests alternate between the two on keep-alive connections; the p50 and p99 of each
   are compared, and the lookup alone is timed in-process (``FeatureAssembler.assemble``
   on a one-row batch). Beside it, Feast's online read of the same 50 features for one
   entity (``get_online_features(...).to_dict()``, SQLite online store, its own venv,
   after ``feast materialize``).

    .venv/bin/python bench/features.py [--runs 3] [--big-rows 10000000] [--only online]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_DIR, bench_lock, drop_tree, ensure_venv, log, markdown_table

KEEL_PY = REPO_DIR / ".venv" / "bin" / "python"
KEEL = REPO_DIR / ".venv" / "bin" / "keel"
FEAST = ["feast==0.67.0", "pandas<3"]
VIEWS, FEATURES_PER_VIEW, ROWS_PER_VIEW, ENTITY_ROWS, CUSTOMERS = 10, 100, 5_000, 17_000, 200
TTL_DAYS = 90


# -- data ------------------------------------------------------------------------------------

ONLINE_VIEWS, ONLINE_PER_VIEW, ONLINE_CUSTOMERS, ONLINE_ROWS = 5, 10, 200, 2_000
ONLINE_REQUESTS = 3_000

MAKE_ONLINE = """
import sys, time, numpy as np, pyarrow as pa, pyarrow.parquet as pq
out, views, per_view, customers, rows = sys.argv[1], *map(int, sys.argv[2:6])
rng = np.random.default_rng(28)
now = int(time.time() * 1_000_000)
for v in range(views):
    ts = now - rng.integers(3600 * 1_000_000, 30 * 86400 * 1_000_000, rows)
    cols = {"customer_id": np.concatenate([np.arange(customers), rng.integers(0, customers, rows - customers)]),
            "event_timestamp": pa.array(ts, pa.timestamp("us", "UTC"))}
    for j in range(per_view):
        cols[f"o{v}_{j}"] = rng.standard_normal(rows)
    pq.write_table(pa.table(cols), f"{out}/online{v}.parquet")
pq.write_table(pa.table({"customer_id": np.arange(customers),
                         "event_timestamp": pa.array([now] * customers, pa.timestamp("us", "UTC")),
                         "label": rng.integers(0, 2, customers)}), f"{out}/online_entities.parquet")
"""

ONLINE_MODEL = """
import numpy as np
import keel


class Sum(keel.PythonModel):
    def predict(self, inputs):
        return np.asarray(inputs.select_dtypes("number").sum(axis=1))
"""

ONLINE_SETUP = """
import sys
import pandas as pd
import keel
from bench_model import Sum
ws, views = keel.connect(sys.argv[1]), int(sys.argv[2])
names = [f"o{v}" for v in range(views)]
ts = keel.features.training_set(sys.argv[3], names, name="online-train", workspace=ws)
with keel.start_run(name="keyed", workspace=ws, capture_code=False) as run:
    frame = run.use(ts).to_pandas()
    columns = [c for c in frame.columns if c.startswith("o")]
    run.log_model(Sum(), "keyed", input_example=frame[columns].head(5))
with keel.start_run(name="inline", workspace=ws, capture_code=False) as run:
    run.log_model(Sum(), "inline", input_example=frame[columns].head(5))
from keel.registry.versions import promote
promote(ws, "keyed", 1)
promote(ws, "inline", 1)
for name in names:
    keel.features.build_online(name, workspace=ws)
frame[["customer_id", *columns]].to_parquet(sys.argv[4], index=False)
"""

ONLINE_ASSEMBLE = """
import json, sys, time
import keel
from keel.registry.signature import Signature
from keel.serve.features import FeatureAssembler
from keel.serve.inputs import parse_inputs
ws = keel.connect(sys.argv[1])
version = keel.load_model("keyed@champion", workspace=ws)
assembler = FeatureAssembler(ws, "keyed/v1", version.signature)
times = []
for i in range(int(sys.argv[2])):
    batch = parse_inputs({"inputs": {"customer_id": i % 200}}, assembler.request, max_rows=10)
    t = time.perf_counter()
    assembler.assemble(batch)
    times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"p50_ms": times[len(times) // 2] * 1000, "p99_ms": times[int(len(times) * 0.99)] * 1000}))
"""

FEAST_ONLINE_DEFINITIONS = """
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
for v in range({views}):
    globals()[f"o{{v}}"] = FeatureView(
        name=f"o{{v}}", entities=[customer], ttl=timedelta(days=90),
        schema=[Field(name=f"o{{v}}_{{j}}", dtype=Float64) for j in range({per_view})],
        source=FileSource(path=f"{data}/online{{v}}.parquet", timestamp_field="event_timestamp"),
    )
"""

FEAST_ONLINE_RUN = """
import json, sys, time
from datetime import datetime, timedelta, timezone
from feast import FeatureStore
store = FeatureStore(repo_path=sys.argv[1])
views, per_view, n = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
now = datetime.now(timezone.utc)
store.materialize(now - timedelta(days=60), now)
features = [f"o{v}:o{v}_{j}" for v in range(views) for j in range(per_view)]
for i in range(200):  # warm up
    store.get_online_features(features=features, entity_rows=[{"customer_id": i}]).to_dict()
times = []
for i in range(n):
    t = time.perf_counter()
    got = store.get_online_features(features=features, entity_rows=[{"customer_id": i % 200}]).to_dict()
    times.append(time.perf_counter() - t)
assert len(got) == views * per_view + 1, len(got)
times.sort()
print(json.dumps({"p50_ms": times[len(times) // 2] * 1000, "p99_ms": times[int(len(times) * 0.99)] * 1000}))
"""

MAKE_DATA = """
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
out, views, per_view, rows_per_view, entity_rows, customers = sys.argv[1], *map(int, sys.argv[2:7])
rng = np.random.default_rng(3003)
start = np.datetime64("2024-01-01T00:00:00", "us").astype("int64")
span = 2 * 365 * 86400 * 1_000_000
for v in range(views):
    ts = np.sort(start + rng.integers(0, span, rows_per_view))
    cols = {"customer_id": rng.integers(0, customers, rows_per_view),
            "event_timestamp": pa.array(ts, pa.timestamp("us", "UTC"))}
    for j in range(per_view):
        cols[f"f{v}_{j}"] = rng.standard_normal(rows_per_view)
    pq.write_table(pa.table(cols), f"{out}/view{v}.parquet")
ts = start + rng.integers(0, span, entity_rows)
pq.write_table(pa.table({"customer_id": rng.integers(0, customers, entity_rows),
                         "event_timestamp": pa.array(ts, pa.timestamp("us", "UTC")),
                         "label": rng.integers(0, 2, entity_rows)}), f"{out}/entities.parquet")
"""

MAKE_BIG = """
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
out, rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(10)
start = np.datetime64("2024-01-01T00:00:00", "us").astype("int64")
span = 365 * 86400 * 1_000_000
keys = max(rows // 100, 1)
pq.write_table(pa.table({
    "customer_id": rng.integers(0, keys, rows),
    "event_timestamp": pa.array(start + rng.integers(0, span, rows), pa.timestamp("us", "UTC")),
    **{f"b{j}": rng.standard_normal(rows).astype("float32") for j in range(4)}}),
    f"{out}/big_view.parquet")
pq.write_table(pa.table({
    "customer_id": rng.integers(0, keys, rows),
    "event_timestamp": pa.array(start + rng.integers(0, span, rows), pa.timestamp("us", "UTC")),
    "label": rng.integers(0, 2, rows)}), f"{out}/big_entities.parquet")
"""

KEEL_DEFINITIONS = """
from keel.features import entity, feature_view

customer = entity("customer_id")
"""

KEEL_VIEW = """

@feature_view(entity=customer, source="{source}", timestamp="event_timestamp", ttl="{ttl}")
def {name}(rows):
    return rows
"""

FEAST_REPO = """
project: bench
registry: {root}/registry.db
provider: local
online_store:
  type: sqlite
  path: {root}/online.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""

FEAST_DEFINITIONS = """
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
for v in range({views}):
    globals()[f"v{{v}}"] = FeatureView(
        name=f"v{{v}}", entities=[customer], ttl=timedelta(days={ttl}),
        schema=[Field(name=f"f{{v}}_{{j}}", dtype=Float64) for j in range({per_view})],
        source=FileSource(path=f"{data}/view{{v}}.parquet", timestamp_field="event_timestamp"),
    )
"""

FEAST_RUN = """
import json, resource, sys, time
t0 = time.perf_counter()
import pandas as pd
from feast import FeatureStore
store = FeatureStore(repo_path=sys.argv[1])
entities = pd.read_parquet(sys.argv[2])
features = [f"v{v}:f{v}_{j}" for v in range(int(sys.argv[3])) for j in range(int(sys.argv[4]))]
t1 = time.perf_counter()
df = store.get_historical_features(entity_df=entities, features=features).to_df()
t2 = time.perf_counter()
cols = [c for c in df.columns if c.startswith("f")]
print(json.dumps({"work": t2 - t1, "process": t2 - t0, "rows": len(df),
                  "matched": int(df[cols].notna().any(axis=1).sum()),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

FLOORS = """
import json, resource, sys, time
t0 = time.perf_counter()
import duckdb, numpy as np, pandas as pd, pyarrow.parquet as pq
kind, data, views, ttl_days = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t1 = time.perf_counter()
con = duckdb.connect()
con.execute(f"CREATE TABLE e AS SELECT *, row_number() OVER () AS r FROM '{data}/entities.parquet'")
ttl = f"INTERVAL '{ttl_days} days'"
if kind == "duckdb-keys":
    sel, joins = ["e.*"], []
    for v in range(views):
        con.execute(f"CREATE TABLE v{v} AS SELECT *, row_number() OVER () AS fr FROM '{data}/view{v}.parquet'")
        con.execute(f"CREATE TABLE m{v} AS SELECT e.r, CASE WHEN e.event_timestamp - f.event_timestamp <= {ttl} THEN f.fr END AS fr "
                    f"FROM e ASOF LEFT JOIN (SELECT customer_id, event_timestamp, fr FROM v{v}) f "
                    f"ON e.customer_id = f.customer_id AND e.event_timestamp >= f.event_timestamp")
        cols = [c for c in con.execute(f"SELECT * FROM v{v} LIMIT 0").df().columns if c.startswith("f") and c != "fr"]
        sel += [f"v{v}.{c}" for c in cols]
        joins.append(f"LEFT JOIN m{v} ON m{v}.r = e.r LEFT JOIN v{v} ON v{v}.fr = m{v}.fr")
    out = con.sql(f"SELECT {', '.join(sel)} FROM e {' '.join(joins)} ORDER BY e.r").to_arrow_table()
elif kind == "duckdb-chain":
    sel, joins = ["e.*"], []
    for v in range(views):
        cols = [c for c in con.execute(f"SELECT * FROM '{data}/view{v}.parquet' LIMIT 0").df().columns if c.startswith("f")]
        sel += [f"CASE WHEN e.event_timestamp - v{v}.event_timestamp <= {ttl} THEN v{v}.{c} END AS {c}" for c in cols]
        joins.append(f"ASOF LEFT JOIN '{data}/view{v}.parquet' v{v} ON e.customer_id = v{v}.customer_id "
                     f"AND e.event_timestamp >= v{v}.event_timestamp")
    out = con.sql(f"SELECT {', '.join(sel)} FROM e {' '.join(joins)} ORDER BY e.r").to_arrow_table()
elif kind == "pandas":
    ent = pd.read_parquet(f"{data}/entities.parquet")
    ent["r"] = np.arange(len(ent))
    out = ent.sort_values("event_timestamp")
    for v in range(views):
        feat = pd.read_parquet(f"{data}/view{v}.parquet").sort_values("event_timestamp")
        out = pd.merge_asof(out, feat, on="event_timestamp", by="customer_id", direction="backward",
                            tolerance=pd.Timedelta(days=ttl_days))
    out = out.sort_values("r")
elif kind == "duckdb-big":
    out = con.sql(f"SELECT e.*, f.b0, f.b1, f.b2, f.b3 FROM e ASOF LEFT JOIN '{data}/big_view.parquet' f "
                  f"ON e.customer_id = f.customer_id AND e.event_timestamp >= f.event_timestamp "
                  f"ORDER BY e.r").to_arrow_table()
t2 = time.perf_counter()
if hasattr(out, "to_pandas"):
    out = out.to_pandas()
cols = [c for c in out.columns if c.startswith("f") or c.startswith("b")]
print(json.dumps({"work": t2 - t1, "process": t2 - t0, "rows": len(out),
                  "matched": int(out[cols].notna().any(axis=1).sum()),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_json(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> dict:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_keel(args: list[str], env: dict[str, str], cwd: Path) -> dict:
    """A keel command's wall time and peak RSS (GNU time), and what it printed (JSON)."""
    stats = cwd / ".time"
    t = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(stats), str(KEEL), *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"keel {' '.join(args[:3])} failed: {done.stderr[-3000:]}")
    peak = int(stats.read_text().split()[-1]) / 1024
    return {"process": wall, "peak_mb": peak, "out": json.loads(done.stdout)}


def count(parquet: Path) -> tuple[int, int]:
    code = (
        "import sys, pyarrow.parquet as pq\n"
        "t = pq.read_table(sys.argv[1]).to_pandas()\n"
        "cols = [c for c in t.columns if c.startswith('f') or c.startswith('b')]\n"
        "print(len(t), int(t[cols].notna().any(axis=1).sum()))\n"
    )
    rows, matched = subprocess.run(
        [str(KEEL_PY), "-c", code, str(parquet)], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(rows), int(matched)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--only", choices=("all", "offline", "online"), default="all")
    args = parser.parse_args()
    feast_py = ensure_venv("feast", FEAST)
    scratch = Path(tempfile.mkdtemp(prefix="keel-bench-features-"))
    if args.only == "online":
        try:
            online = online_round(scratch, feast_py, args.runs)
        finally:
            drop_tree(scratch)
        report_online(online, args.runs)
        return 0
    try:
        data = scratch / "data"
        data.mkdir()
        subprocess.run(
            [str(KEEL_PY), "-c", MAKE_DATA, str(data), str(VIEWS), str(FEATURES_PER_VIEW),
             str(ROWS_PER_VIEW), str(ENTITY_ROWS), str(CUSTOMERS)], check=True,
        )  # fmt: skip
        size_mb = sum(p.stat().st_size for p in data.glob("view*.parquet")) / 1e6
        log(f"[data] {VIEWS} views x {FEATURES_PER_VIEW} features, {size_mb:.1f} MB of Parquet")
        # keel: sources as dataset versions, the views applied
        ws = scratch / "ws"
        env = {**os.environ, "KEEL_HOME": str(ws)}
        subprocess.run([str(KEEL), "init", str(ws)], check=True, capture_output=True)
        text = KEEL_DEFINITIONS
        for v in range(VIEWS):
            subprocess.run(
                [str(KEEL), "data", "add", str(data / f"view{v}.parquet"), "--name", f"src{v}"],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            text += KEEL_VIEW.format(source=f"src{v}", ttl=f"{TTL_DAYS}d", name=f"v{v}")
        (ws / "features.py").write_text(text)
        subprocess.run([str(KEEL), "features", "apply", "features.py"], env=env, cwd=ws,
                       check=True, capture_output=True)  # fmt: skip
        # Feast: a repo, applied
        repo = scratch / "feast"
        repo.mkdir()
        (repo / "feature_store.yaml").write_text(FEAST_REPO.format(root=repo))
        (repo / "definitions.py").write_text(
            FEAST_DEFINITIONS.format(views=VIEWS, ttl=TTL_DAYS, per_view=FEATURES_PER_VIEW, data=data)
        )
        feast_env = {**os.environ, "FEAST_USAGE": "False"}
        subprocess.run([str(feast_py.parent / "feast"), "apply"], cwd=repo, env=feast_env,
                       check=True, capture_output=True)  # fmt: skip
        (scratch / "feast_run.py").write_text(FEAST_RUN)
        (scratch / "floors.py").write_text(FLOORS)
        features = ",".join(f"v{v}" for v in range(VIEWS))
        results: dict[str, list[dict]] = {}
        with bench_lock():
            for i in range(args.runs):
                out = ws / f"train{i}.parquet"
                # a new training set each round (recorded and profiled), then the same one
                # again (recorded before: found by its digest, nothing new to profile)
                for label in ("keel", "keel-again"):
                    k = run_keel(
                        ["features", "training-set", "--entities", str(data / "entities.parquet"),
                         "--features", features, "--name", f"bench-train-{i}", "--out", str(out),
                         "--json"],
                        env, ws,
                    )  # fmt: skip
                    k["rows"], k["matched"] = count(out)
                    results.setdefault(label, []).append(k)
                for floor in ("duckdb-keys", "pandas", "duckdb-chain"):
                    results.setdefault(floor, []).append(run_json(
                        [str(KEEL_PY), str(scratch / "floors.py"), floor, str(data), str(VIEWS), str(TTL_DAYS)],
                        env,
                    ))  # fmt: skip
                results.setdefault("feast", []).append(run_json(
                    [str(feast_py), str(scratch / "feast_run.py"), str(repo), str(data / "entities.parquet"),
                     str(VIEWS), str(FEATURES_PER_VIEW)], feast_env,
                ))  # fmt: skip
                log(f"[round {i}] " + ", ".join(
                    f"{name} {r[-1].get('work', r[-1]['process']):.2f} s" for name, r in results.items()))  # fmt: skip
            big = None
            if args.big_rows:
                big = big_round(scratch, args.big_rows)
        online = online_round(scratch, feast_py, args.runs) if args.only == "all" else None
    finally:
        drop_tree(scratch)
    report(results, size_mb, big, args)
    if online is not None:
        report_online(online, args.runs)
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(model: str, env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen, int]:
    import urllib.request

    port = _free_port()
    proc = subprocess.Popen([str(KEEL), "serve", model, "--port", str(port)], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    started = time.perf_counter()
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.perf_counter() - started > 60:
                proc.kill()
                raise SystemExit(f"keel serve {model} did not start: {proc.stderr.read()}") from None
            time.sleep(0.1)


def online_round(scratch: Path, feast_py: Path, runs: int) -> dict[str, list[dict]]:
    """The online lookup inside keel serve beside the same model given its features inline,
    the lookup alone, and Feast's online read of the same 50 features."""
    import http.client

    import pyarrow.parquet as pq

    data = scratch / "online-data"
    data.mkdir()
    subprocess.run([str(KEEL_PY), "-c", MAKE_ONLINE, str(data), str(ONLINE_VIEWS), str(ONLINE_PER_VIEW),
                    str(ONLINE_CUSTOMERS), str(ONLINE_ROWS)], check=True)  # fmt: skip
    ws = scratch / "online-ws"
    env = {**os.environ, "KEEL_HOME": str(ws), "PYTHONPATH": str(scratch)}
    subprocess.run([str(KEEL), "init", str(ws)], check=True, capture_output=True)
    text = KEEL_DEFINITIONS
    for v in range(ONLINE_VIEWS):
        subprocess.run([str(KEEL), "data", "add", str(data / f"online{v}.parquet"), "--name", f"osrc{v}"],
                       env=env, check=True, capture_output=True)  # fmt: skip
        text += KEEL_VIEW.format(source=f"osrc{v}", ttl="90d", name=f"o{v}")
    (ws / "online.py").write_text(text)
    subprocess.run([str(KEEL), "features", "apply", "online.py"], env=env, cwd=ws, check=True,
                   capture_output=True)  # fmt: skip
    (scratch / "bench_model.py").write_text(ONLINE_MODEL)
    rows_file = scratch / "online-rows.parquet"
    subprocess.run([str(KEEL_PY), "-c", ONLINE_SETUP, str(ws), str(ONLINE_VIEWS),
                    str(data / "online_entities.parquet"), str(rows_file)], env=env, check=True)  # fmt: skip
    values = pq.read_table(rows_file).to_pylist()
    results: dict[str, list[dict]] = {}
    keyed, keyed_port = _serve("keyed", env, ws)
    inline, inline_port = _serve("inline", env, ws)
    try:
        conns = {"keyed": http.client.HTTPConnection("127.0.0.1", keyed_port),
                 "inline": http.client.HTTPConnection("127.0.0.1", inline_port)}  # fmt: skip

        def ask(name: str, i: int) -> float:
            row = values[i % len(values)]
            record = {"customer_id": row["customer_id"]} if name == "keyed" else {
                k: v for k, v in row.items() if k != "customer_id"}  # fmt: skip
            body = json.dumps({"inputs": [record]})
            t = time.perf_counter()
            conns[name].request("POST", "/predict", body, {"Content-Type": "application/json"})
            answer = conns[name].getresponse()
            payload = answer.read()
            took = time.perf_counter() - t
            if answer.status != 200:
                raise SystemExit(f"{name}: {answer.status} {payload[:300]!r}")
            return took

        with bench_lock():
            for i in range(300):  # warm up both
                ask("keyed", i), ask("inline", i)
            for _ in range(runs):
                times: dict[str, list[float]] = {"keyed": [], "inline": []}
                for i in range(ONLINE_REQUESTS):
                    for name in ("keyed", "inline") if i % 2 else ("inline", "keyed"):
                        times[name].append(ask(name, i))
                for name, xs in times.items():
                    xs.sort()
                    results.setdefault(name, []).append(
                        {"p50_ms": xs[len(xs) // 2] * 1000, "p99_ms": xs[int(len(xs) * 0.99)] * 1000})
                results.setdefault("assemble", []).append(run_json(
                    [str(KEEL_PY), "-c", ONLINE_ASSEMBLE, str(ws), str(ONLINE_REQUESTS)], env))  # fmt: skip
                log(f"[online] keyed p99 {results['keyed'][-1]['p99_ms']:.2f} ms, inline p99 "
                    f"{results['inline'][-1]['p99_ms']:.2f} ms, lookup alone p99 "
                    f"{results['assemble'][-1]['p99_ms']:.3f} ms")  # fmt: skip
    finally:
        for proc in (keyed, inline):
            proc.terminate()
            proc.wait(timeout=30)
    repo = scratch / "feast-online"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(FEAST_REPO.format(root=repo))
    (repo / "definitions.py").write_text(
        FEAST_ONLINE_DEFINITIONS.format(views=ONLINE_VIEWS, per_view=ONLINE_PER_VIEW, data=data)
    )
    feast_env = {**os.environ, "FEAST_USAGE": "False"}
    subprocess.run([str(feast_py.parent / "feast"), "apply"], cwd=repo, env=feast_env, check=True,
                   capture_output=True)  # fmt: skip
    (scratch / "feast_online.py").write_text(FEAST_ONLINE_RUN)
    with bench_lock():
        for _ in range(runs):
            results.setdefault("feast", []).append(run_json(
                [str(feast_py), str(scratch / "feast_online.py"), str(repo), str(ONLINE_VIEWS),
                 str(ONLINE_PER_VIEW), str(ONLINE_REQUESTS)], feast_env))  # fmt: skip
            log(f"[online] feast p99 {results['feast'][-1]['p99_ms']:.2f} ms")
    return results


def report_online(results: dict[str, list[dict]], runs: int) -> None:
    med = statistics.median

    def p(name: str, q: str) -> float:
        return med(r[q] for r in results[name])

    stamp = time.strftime("%Y-%m-%d %H:%M")
    print(f"\n### online lookup, {stamp}; 2 cores, load {os.getloadavg()[0]:.1f}; median of {runs} "
          f"rounds of {ONLINE_REQUESTS:,} requests each; {ONLINE_VIEWS} views x {ONLINE_PER_VIEW} "
          f"features of one entity, {ONLINE_CUSTOMERS} entities\n")  # fmt: skip
    rows = [
        ["keel serve, by customer_id (50 features looked up)", f"{p('keyed', 'p50_ms'):.2f} ms",
         f"{p('keyed', 'p99_ms'):.2f} ms"],
        ["keel serve, the same model with the 50 features inline", f"{p('inline', 'p50_ms'):.2f} ms",
         f"{p('inline', 'p99_ms'):.2f} ms"],
        ["added by the lookup (keyed - inline)",
         f"{p('keyed', 'p50_ms') - p('inline', 'p50_ms'):+.2f} ms",
         f"{p('keyed', 'p99_ms') - p('inline', 'p99_ms'):+.2f} ms"],
        ["the lookup alone, in-process (FeatureAssembler.assemble)", f"{p('assemble', 'p50_ms'):.3f} ms",
         f"{p('assemble', 'p99_ms'):.3f} ms"],
        ["Feast 0.67 get_online_features().to_dict(), SQLite online store", f"{p('feast', 'p50_ms'):.2f} ms",
         f"{p('feast', 'p99_ms'):.2f} ms"],
    ]  # fmt: skip
    print(markdown_table(["", "p50", "p99"], rows))
    print(f"\nFeast's read / keel's lookup alone: p50 {p('feast', 'p50_ms') / p('assemble', 'p50_ms'):.1f}x, "
          f"p99 {p('feast', 'p99_ms') / p('assemble', 'p99_ms'):.1f}x")  # fmt: skip


def big_round(scratch: Path, rows: int) -> dict[str, dict]:
    data = scratch / "data"
    subprocess.run([str(KEEL_PY), "-c", MAKE_BIG, str(data), str(rows)], check=True)
    ws = scratch / "ws"
    env = {**os.environ, "KEEL_HOME": str(ws)}
    subprocess.run([str(KEEL), "data", "add", str(data / "big_view.parquet"), "--name", "bigsrc"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    (ws / "big.py").write_text(
        KEEL_DEFINITIONS + KEEL_VIEW.format(source="bigsrc", ttl="3650d", name="big")
    )
    subprocess.run([str(KEEL), "features", "apply", "big.py"], env=env, cwd=ws, check=True,
                   capture_output=True)  # fmt: skip
    out = ws / "big_train.parquet"
    k = run_keel(["features", "training-set", "--entities", str(data / "big_entities.parquet"),
                  "--features", "big", "--name", "big-train", "--out", str(out), "--json"], env, ws)  # fmt: skip
    k["rows"], k["matched"] = count(out)
    shutil_entities = data / "entities.parquet"
    os.replace(data / "big_entities.parquet", shutil_entities)  # the floor reads entities.parquet
    d = run_json([str(KEEL_PY), str(scratch / "floors.py"), "duckdb-big", str(data), "1", "3650"], env)
    log(f"[big] keel {k['process']:.1f} s, duckdb {d['work']:.1f} s")
    return {"keel": k, "duckdb": d, "rows": {"n": rows}}


def report(results: dict[str, list[dict]], size_mb: float, big: dict | None, args) -> None:
    med = statistics.median

    def wall(name: str) -> float:
        return med(r.get("work", r["process"]) for r in results[name])

    def proc(name: str) -> float:
        return med(r["process"] for r in results[name])

    def peak(name: str) -> float:
        return max(r["peak_mb"] for r in results[name])

    best_floor = min(("duckdb-keys", "pandas", "duckdb-chain"), key=wall)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    print(f"### features benchmark, {stamp}; 2 cores, load {os.getloadavg()[0]:.1f}; Feast 0.67.0; "
          f"median of {args.runs} rounds; {ENTITY_ROWS:,} entity rows, {VIEWS} views x "
          f"{FEATURES_PER_VIEW} features ({size_mb:.1f} MB of Parquet), ttl {TTL_DAYS} days\n")  # fmt: skip
    rows = []
    labels = {
        "keel": "keel features training-set (whole command: views, join, Parquet, recorded, profiled)",
        "keel-again": "the same, built again (found recorded: nothing new to profile)",
        "feast": "Feast get_historical_features().to_df() (the call; process in brackets)",
        "duckdb-keys": "floor: DuckDB ASOF on keys, then hash join for columns",
        "pandas": "floor: pandas.merge_asof per view",
        "duckdb-chain": "floor: DuckDB ASOF chaining all columns",
    }
    for name in ("keel", "keel-again", "feast", "duckdb-keys", "pandas", "duckdb-chain"):
        r = results[name][-1]
        rows.append([
            labels[name],
            f"{wall(name):.2f} s" + (f" ({proc(name):.2f} s)" if not name.startswith("keel") else ""),
            f"{peak(name):,.0f} MB",
            f"{r['rows']:,} ({r['matched']:,} with features)",
            f"{wall(name) / wall('keel'):.1f}x" if name != "keel" else "-",
        ])  # fmt: skip
    print(markdown_table(["", "time", "peak RSS", "rows returned", "its time / keel's"], rows))
    print(f"\nkeel / best floor ({best_floor}): {wall('keel') / wall(best_floor):.2f}x of its work, "
          f"{wall('keel') / proc(best_floor):.2f}x of its process (built again: "
          f"{wall('keel-again') / wall(best_floor):.2f}x, {wall('keel-again') / proc(best_floor):.2f}x); "
          f"Feast / keel: {wall('feast') / wall('keel'):.1f}x")
    if big:
        k, d = big["keel"], big["duckdb"]
        print(f"\n{big['rows']['n']:,} entity rows x {big['rows']['n']:,} feature rows: keel "
              f"{k['process']:.1f} s, {k['peak_mb']:,.0f} MB (whole command); bare DuckDB ASOF "
              f"{d['work']:.1f} s ({d['process']:.1f} s process), {d['peak_mb']:,.0f} MB: "
              f"{k['process'] / d['work']:.2f}x; rows {k['rows']:,} / {d['rows']:,}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
