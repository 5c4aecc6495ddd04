"""Pipelines: keel's step runs and step cache beside Prefect 3 (its own venv), one run.

A 10-step chain of trivial steps (each adds one to its input), defined once for
each tool:

- **in process**: keel's executed step (a run record and its output object, durable)
  and cached step (a lookup), from the steps' own timings over several pipeline runs;
  Prefect's task inside a running flow, with the task cache off and on, each task
  call timed by the flow's own code (the flow call's own second is not in it),
  measured in one warm Prefect process;
- **cold**: the whole command, process start to exit, for a fully cached pipeline:
  `keel run chain.py:flow` against `python prefect_chain.py` (Prefect's ephemeral API
  server starts in each process), alternated A B A B so each ratio pairs two runs;
- **on Dask**: one LocalCluster of 2 single-threaded worker processes, in keel's own
  environment (dask.distributed is keel's optional extra): a chained step's marginal
  cost (a 30-step chain against a 10-step one) for keel's Dask executor and for bare
  ``dask.delayed``, paired round by round; and a 10-step pipeline with 4 independent
  1-second branches, on Dask against keel's local executor.

    .venv/bin/python bench/pipeline.py [--rounds 5] [--runs 5] [--dask-rounds 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    base_env,
    bench_lock,
    ensure_venv,
    log,
    markdown_table,
    timed_run,
)

PREFECT = ["prefect==3.9.1"]
STEPS = 10

KEEL_CHAIN = (
    "from keel.pipeline import pipeline, step\n\n"
    "@step\ndef s0(n: int = 1):\n    return n\n\n"
    + "".join(f"@step\ndef s{i}(s{i - 1}):\n    return s{i - 1} + 1\n\n" for i in range(1, STEPS))
    + "flow = pipeline('chain', ["
    + ", ".join(f"s{i}" for i in range(STEPS))
    + "])\n"
)

PREFECT_CHAIN = (
    "import sys, time\n"
    "from prefect import flow, task\n"
    "from prefect.cache_policies import INPUTS, NO_CACHE\n\n"
    "POLICY = NO_CACHE if len(sys.argv) > 1 and sys.argv[1] == 'nocache' else INPUTS\n\n"
    "@task(cache_policy=POLICY, persist_result=POLICY is INPUTS)\n"
    "def add(x):\n    return x + 1\n\n"
    "TIMES = []  # each task call's time, as the flow's code sees it\n\n"
    f"@flow\ndef chain(n: int = 1):\n    x = n\n    for _ in range({STEPS - 1}):\n"
    "        t = time.perf_counter()\n        x = add(x)\n"
    "        TIMES.append(time.perf_counter() - t)\n    return x\n\n"
    "if __name__ == '__main__':\n    chain()\n"
)

KEEL_WORKER = r"""
import json, statistics, sys, time
import keel
sys.path.insert(0, sys.argv[1])
import chain
ws = keel.connect(sys.argv[2])
executed, cached, whole_cached = [], [], []
for n in range(2, 2 + int(sys.argv[3])):
    run = chain.flow.run({"n": n}, workspace=ws)  # new n: every step executes
    executed += [s.seconds for s in run.steps]
    t = time.perf_counter()
    again = chain.flow.run({"n": n}, workspace=ws)  # the same: every step reused
    whole_cached.append(time.perf_counter() - t)
    assert all(s.cached for s in again.steps)
    cached += [s.seconds for s in again.steps]
print(json.dumps({"executed": statistics.median(executed), "cached": statistics.median(cached),
                  "flow_cached": statistics.median(whole_cached)}))
"""

PREFECT_WORKER = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import importlib
rounds = int(sys.argv[2])
med = statistics.median
out = {}
for mode in ("nocache", "cache"):
    sys.argv = ["prefect_chain.py", mode]
    mod = importlib.reload(importlib.import_module("prefect_chain")) if "prefect_chain" in sys.modules else importlib.import_module("prefect_chain")
    mod.chain(1)  # start-up: the ephemeral server
    calls, tasks = [], []
    for n in range(2, 2 + rounds):
        if mode == "cache":
            mod.chain(n)  # computes; the timed call below is all hits
        del mod.TIMES[:]
        t = time.perf_counter(); mod.chain(n); calls.append(time.perf_counter() - t)
        tasks += mod.TIMES
    out[mode] = {"flow": med(calls), "per_task": med(tasks)}
print(json.dumps(out))
"""


def _chain_source(steps: int) -> str:
    return (
        "from keel.pipeline import pipeline, step\n\n"
        "@step\ndef s0(n: int = 1):\n    return n\n\n"
        + "".join(f"@step\ndef s{i}(s{i - 1}):\n    return s{i - 1} + 1\n\n" for i in range(1, steps))
        + f"flow = pipeline('chain{steps}', ["
        + ", ".join(f"s{i}" for i in range(steps))
        + "])\n"
    )


BRANCHES = """
import time
from keel.pipeline import pipeline, step


def spin(seconds):
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


@step
def start(nonce: int = 0):
    return nonce
""" + "".join(
    f"\n\n@step\ndef b{i}(start, work: float = 1.0):\n    spin(work)\n    return start + {i}\n"
    for i in range(1, 5)
) + """

@step
def j1(b1, b2):
    return b1 + b2


@step
def j2(b3, b4):
    return b3 + b4


@step
def j3(j1, j2):
    return j1 + j2


@step
def j4(j3):
    return j3 * 2


@step
def end(j4):
    return {"value": j4}


flow = pipeline("branches", [start, b1, b2, b3, b4, j1, j2, j3, j4, end])
"""

# Runs in keel's own environment (dask.distributed is its optional extra): one
# LocalCluster of 2 single-threaded worker processes, shared by bare Dask and keel.
DASK_WORKER = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import dask
from distributed import Client, LocalCluster
import keel
import chain10, chain30, branches

def inc(x):
    return x + 1

def bare(steps, start):
    value = start
    for _ in range(steps):
        value = dask.delayed(inc, pure=False)(value)
    t = time.perf_counter()
    assert value.compute() == start + steps
    return time.perf_counter() - t

def run(flow, params, **how):
    t = time.perf_counter()
    result = flow.run(params, workspace=ws, **how)
    assert result.status == "finished" and not any(s.cached for s in result.steps), result.error
    return time.perf_counter() - t

if __name__ == "__main__":
    ws = keel.connect(sys.argv[2])
    rounds = int(sys.argv[3])
    out = {k: [] for k in ("bare10", "bare30", "keel10", "keel30", "local", "dask")}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster):
        on = {"executor": "dask", "scheduler": cluster.scheduler_address}
        nonce = int(time.time() * 1000)
        for i in range(rounds + 1):  # the first round warms the workers up, and is dropped
            nonce += 1000
            got = {
                "bare10": bare(10, nonce), "bare30": bare(30, nonce),
                "keel10": run(chain10.flow, {"n": nonce}, **on),
                "keel30": run(chain30.flow, {"n": nonce + 500}, **on),
                "local": run(branches.flow, {"nonce": nonce}),
                "dask": run(branches.flow, {"nonce": nonce + 1}, **on),
            }
            if i:
                for k, v in got.items():
                    out[k].append(v)
    print(json.dumps(out))
"""


def _last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no result in:\n{text[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5, help="Cold runs of each tool, alternated.")
    ap.add_argument("--runs", type=int, default=5, help="Warm pipeline runs in process.")
    ap.add_argument("--dask-rounds", type=int, default=5, help="Rounds on the Dask cluster.")
    args = ap.parse_args()
    prefect_py = ensure_venv("prefect", PREFECT)
    keel_bin = str(Path(sys.executable).with_name("keel"))
    with tempfile.TemporaryDirectory(prefix="keel-bench-pipeline-") as tmp:
        root = Path(tmp)
        (root / "chain.py").write_text(KEEL_CHAIN)
        (root / "prefect_chain.py").write_text(PREFECT_CHAIN)
        env = base_env()
        env["PREFECT_HOME"] = str(root / "prefect-home")
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        env["DO_NOT_TRACK"] = "1"
        timed_run([keel_bin, "init"], cwd=root, env=env)
        with bench_lock():
            log("[warm] keel in process ...")
            _, p = timed_run(
                [sys.executable, "-c", KEEL_WORKER, str(root), str(root), str(args.runs)],
                cwd=root, env=env,
            )  # fmt: skip
            warm_keel = _last_json(p.stdout)
            log("[warm] prefect in process ...")
            _, p = timed_run(
                [str(prefect_py), "-c", PREFECT_WORKER, str(root), str(args.runs)],
                cwd=root, env=env,
            )  # fmt: skip
            warm_prefect = _last_json(p.stdout)
            log("[dask] bare dask.delayed and keel on one LocalCluster ...")
            for steps in (10, 30):
                (root / f"chain{steps}.py").write_text(_chain_source(steps))
            (root / "branches.py").write_text(BRANCHES)
            _, p = timed_run(
                [sys.executable, "-c", DASK_WORKER, str(root), str(root), str(args.dask_rounds)],
                cwd=root, env=env,
            )  # fmt: skip
            on_dask = _last_json(p.stdout)
            timed_run([keel_bin, "run", "chain.py:flow"], cwd=root, env=env)  # fills the cache
            timed_run([str(prefect_py), "prefect_chain.py"], cwd=root, env=env)
            cold_keel, cold_prefect = [], []
            for i in range(args.rounds):
                log(f"[cold {i + 1}/{args.rounds}] keel run, python prefect_chain.py ...")
                t, p = timed_run([keel_bin, "run", "chain.py:flow", "--json"], cwd=root, env=env)
                assert all(s["cached"] for s in json.loads(p.stdout)["steps"])
                cold_keel.append(t)
                cold_prefect.append(
                    timed_run([str(prefect_py), "prefect_chain.py"], cwd=root, env=env)[0]
                )
    ratios = [b / a for a, b in zip(cold_keel, cold_prefect, strict=True)]
    med = statistics.median
    rows = [
        ["executed step, in process", f"{warm_keel['executed'] * 1000:.2f} ms",
         f"{warm_prefect['nocache']['per_task'] * 1000:.2f} ms (task, cache off)", "≤ 3 ms"],
        ["cached step, in process", f"{warm_keel['cached'] * 1000:.2f} ms",
         f"{warm_prefect['cache']['per_task'] * 1000:.2f} ms (task, cache hit)", "≤ 1 ms"],
        ["fully cached 10-step pipeline, in process", f"{warm_keel['flow_cached'] * 1000:.1f} ms",
         f"{warm_prefect['cache']['flow'] * 1000:.1f} ms (flow call)", ""],
        ["cold command, fully cached 10 steps (median)", f"{med(cold_keel):.2f} s",
         f"{med(cold_prefect):.2f} s", "≤ 1 s, ≥ 10× Prefect"],
        ["cold ratio, paired runs", "", f"{med(ratios):.1f}× ({min(ratios):.1f}–{max(ratios):.1f}×)", ""],
    ]  # fmt: skip
    print(f"\n### pipeline benchmark, {time.strftime('%Y-%m-%d %H:%M')}; {STEPS}-step chain, "
          f"{args.runs} warm runs, {args.rounds} paired cold rounds; Prefect 3.9.1\n")  # fmt: skip
    print(markdown_table(["measure", "keel", "Prefect", "target"], rows))
    print(f"\nkeel cold runs: {', '.join(f'{t:.2f}' for t in cold_keel)} s; "
          f"Prefect: {', '.join(f'{t:.2f}' for t in cold_prefect)} s")  # fmt: skip
    _print_dask(on_dask)


def _print_dask(d: dict) -> None:
    """Per-step overhead on Dask as the marginal cost of 20 more chained steps (30 against
    10, so the pipeline run's own record and the graph's submission cancel out), paired
    round by round; and the 4-branch pipeline's wall time on Dask against local."""
    med = statistics.median
    bare = [(b - a) / 20 for a, b in zip(d["bare10"], d["bare30"], strict=True)]
    keel = [(b - a) / 20 for a, b in zip(d["keel10"], d["keel30"], strict=True)]
    step_ratio = [k / b for k, b in zip(keel, bare, strict=True)]
    wall = [x / y for x, y in zip(d["dask"], d["local"], strict=True)]
    rows = [
        ["per chained step (marginal, 10 → 30 steps)", f"{med(keel) * 1000:.2f} ms",
         f"{med(bare) * 1000:.2f} ms", f"{med(step_ratio):.2f}× ({min(step_ratio):.2f}–"
         f"{max(step_ratio):.2f}×)", "≤ 1.5×"],
        ["10-step chain, whole (per step)", f"{med(d['keel10']) * 100:.2f} ms",
         f"{med(d['bare10']) * 100:.2f} ms", "", ""],
        ["4 branches × 1 s, 10 steps: dask / local wall", f"{med(d['dask']):.2f} s",
         f"{med(d['local']):.2f} s (keel, local executor)",
         f"{med(wall):.2f} ({min(wall):.2f}–{max(wall):.2f})", "≤ 0.6"],
    ]  # fmt: skip
    print(f"\n### on Dask: a LocalCluster of 2 single-threaded worker processes, "
          f"{len(bare)} paired rounds\n")  # fmt: skip
    print(markdown_table(["measure", "keel", "bare dask.delayed / local", "ratio", "target"], rows))


if __name__ == "__main__":
    main()
