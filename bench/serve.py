#!/usr/bin/env python3
"""Serving benchmark: keel serve beside a bare FastAPI app, `mlflow models serve` and BentoML.

    .venv/bin/python bench/serve.py [--quick] [--runs N] [--duration S] [--warmup S]
                                    [--model mixed|numeric] [--no-keel] [--no-mlflow]
                                    [--no-bentoml] [--swaps N] [--pace S]
                                    [--write-results] [--keep] [-v]

One model, one set of requests, four servers, side by side in one run (issue 6,
"Speed"). The model is a scikit-learn HistGradientBoostingClassifier (100
trees; version 2, the challenger: 200) fitted once, seeded, on a synthetic
churn table of 20,000 rows (5 numeric columns and 2 string categorical ones,
`plan` and `contract`, handled by the model's own categorical support;
--model numeric drops the two) in keel's venv and pickled; every server loads that same fitted model (scikit-learn,
numpy and pandas are pinned to keel's versions in every anchor venv), and its
answers to a 100-row check request must equal the in-process predictions, else
the run stops. The servers, each one worker on 127.0.0.1 with
OMP_NUM_THREADS=1 (ANCHORS.md: the model opens one OpenMP region per tree):

  bare     bench/serve_apps/bare_fastapi.py under uvicorn[standard] (uvloop +
           httptools), --no-access-log: `async def`, `await request.json()`,
           DataFrame, predict, JSON. Neither validates nor logs.
  MLflow   `mlflow models serve --env-manager local -w 1` of the model saved by
           serve_apps/mlflow_setup.py (cloudpickle, signature from a 5-row
           example); body {"dataframe_records": [...]} to /invocations.
  BentoML  `bentoml serve serve_apps/bento_service.py:Churn --host 127.0.0.1`
           (workers=1, a sync API, model from BentoML's store in bench/.work).
  keel     `keel serve churn --port P` in a fresh workspace where the model was
           registered with `run.log_model(model, "churn", input_example=...)`
           and promoted: validation and prediction logging on (its defaults).

Each anchor lives in its own git-ignored venv under bench/.venvs/ (serve-fastapi,
serve-mlflow, serve-bentoml), created on first use; wrk comes from Debian.

Per run, servers in a rotated order, each started fresh:
  - cold start: process start (just before Popen) to the first 200 answer of
    a single-row predict, polled every 5 ms;
  - resident memory of the server's process group after the warm-up;
  - wrk -t2 -c16 --latency with a Lua script cycling through 64 single-row (or
    16 hundred-row) JSON bodies: a warm-up, then a measured run of --duration
    seconds each for single-row and 100-row requests; requests/s, p50, p99,
    non-2xx responses and socket errors.
keel, after its plain measurements, in the same process:
  - shadow: `keel deploy churn --challenger 2 --mode shadow`, the same two wrk
    measurements, `keel deploy stop churn`. The shadow's cost per request is
    1/rps(shadow) - 1/rps(plain) (one worker, saturated: the extra service time
    per request), set against version 2's own in-process predict time;
  - swaps under load: wrk on single rows while twenty `keel models promote
    churn N` alternate between versions 2 and 1 (one a second), then one
    `keel models rollback churn`; wrk is stopped with SIGINT two seconds after
    the rollback. After each move the /predict answers are polled until their
    "model" field names the new version (the lag is reported); at the end
    /predict and GET /v2/models/churn must show version 2 (where the rollback
    put the alias). Target: zero non-2xx and zero socket errors.
In keel's venv, in-process: predict of versions 1 and 2 on the same frames
(median of many calls), and the bare app's whole request work (json.loads,
DataFrame, predict, json.dumps) without HTTP.

Every measuring phase (one round of all servers) holds an exclusive flock on
/tmp/keel-bench.lock, so two benchmarks never measure at once; installs and
model building do not. Figures are medians over the runs (default 3; --quick:
one run of 3 s measurements); ratios are of medians from this same run.
--write-results replaces the "## Serving" section and the issue-6 rows of the
summary table in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import fcntl
import http.client
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BENCH_DIR,
    REPO_DIR,
    base_env,
    drop_tree,
    ensure_apt_tool,
    ensure_venv,
    log,
    markdown_table,
    median,
    print_table,
)

APPS = BENCH_DIR / "serve_apps"
WORK = BENCH_DIR / ".work" / "serve"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
LOCK_PATH = "/tmp/keel-bench.lock"
HOST = "127.0.0.1"
CONNECTIONS, THREADS = 16, 2
SINGLE_BODIES, BATCH_BODIES, BATCH_ROWS = 64, 16, 100

MAKE_MODEL = textwrap.dedent(
    """
    import json, pickle, sys
    from pathlib import Path
    import numpy as np, pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    out = Path(sys.argv[1])
    n_single, n_batch, n_rows = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    kind = sys.argv[5]
    rng = np.random.default_rng(6)

    def table(n):
        plan = rng.choice(["basic", "standard", "pro"], n, p=[0.5, 0.3, 0.2])
        contract = rng.choice(["monthly", "annual", "two_year"], n, p=[0.55, 0.25, 0.2])
        tenure = rng.integers(0, 73, n)
        monthly = np.round(25 + 30 * (plan == "standard") + 60 * (plan == "pro")
                           + rng.normal(0, 8, n), 2)
        total = np.round(monthly * tenure * rng.uniform(0.9, 1.1, n), 2)
        calls = rng.poisson(1.5, n)
        age = rng.integers(18, 80, n)
        logit = (-0.6 - 0.045 * tenure + 0.02 * (monthly - 55) + 0.4 * calls
                 + 1.1 * (contract == "monthly") - 0.9 * (contract == "two_year")
                 + 0.012 * (age - 45))
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        x = pd.DataFrame({"tenure": tenure, "monthly_charges": monthly,
                          "total_charges": total, "support_calls": calls, "age": age,
                          "plan": plan, "contract": contract})
        return x, y

    def fit(x, y, max_iter, lr):
        cats = [c for c in ("plan", "contract") if c in x.columns] or None
        return HistGradientBoostingClassifier(categorical_features=cats, max_iter=max_iter,
                                              learning_rate=lr, early_stopping=False,
                                              random_state=0).fit(x, y)

    def cut(frame):
        return frame.drop(columns=["plan", "contract"]) if kind == "numeric" else frame

    x, y = table(20000)
    x = cut(x)
    models = {1: fit(x, y, 100, 0.1), 2: fit(x, y, 200, 0.05)}
    for v, m in models.items():
        (out / f"model_v{v}.pkl").write_bytes(pickle.dumps(m, protocol=5))
    (out / "example.pkl").write_bytes(pickle.dumps(x.head(5), protocol=5))
    q = cut(table(n_single + n_batch * n_rows)[0])

    def records(frame):
        return json.loads(json.dumps(frame.to_dict("records"), default=lambda o: o.item()))

    single = [records(q.iloc[i:i + 1]) for i in range(n_single)]
    base = n_single
    batch = [records(q.iloc[base + i * n_rows: base + (i + 1) * n_rows]) for i in range(n_batch)]
    expected = {f"v{v}": {"single": m.predict(pd.DataFrame(single[0])).tolist(),
                          "batch": m.predict(pd.DataFrame(batch[0])).tolist()}
                for v, m in models.items()}
    (out / "requests.json").write_text(json.dumps({"single": single, "batch": batch}))
    (out / "expected.json").write_text(json.dumps(expected))
    print(json.dumps({"train_rows": len(x), "churn_rate": float(y.mean()),
                      "columns": list(x.columns)}))
    """
)

PREDICT_TIMES = textwrap.dedent(
    """
    import json, pickle, statistics, sys, time
    from pathlib import Path
    import pandas as pd
    d = Path(sys.argv[1])
    reqs = json.loads((d / "requests.json").read_text())
    out = {}
    for v in (1, 2):
        m = pickle.loads((d / f"model_v{v}.pkl").read_bytes())
        for kind, reps in (("single", 400), ("batch", 100)):
            frames = [pd.DataFrame(r) for r in reqs[kind]]
            times = []
            for i in range(reps + 20):
                f = frames[i % len(frames)]
                t = time.perf_counter(); m.predict(f); dt = time.perf_counter() - t
                if i >= 20:
                    times.append(dt)
            out[f"predict_v{v}_{kind}"] = statistics.median(times)
            if v == 1:
                bodies = [json.dumps({"inputs": r}).encode() for r in reqs[kind]]
                times = []
                for i in range(reps + 20):
                    b = bodies[i % len(bodies)]
                    t = time.perf_counter()
                    json.dumps({"predictions": m.predict(pd.DataFrame(json.loads(b)["inputs"])).tolist()})
                    dt = time.perf_counter() - t
                    if i >= 20:
                        times.append(dt)
                out[f"request_work_{kind}"] = statistics.median(times)
    print(json.dumps(out))
    """
)

REGISTER = textwrap.dedent(
    """
    import json, pickle, sys
    from pathlib import Path
    import keel
    ws = keel.init(sys.argv[1])
    d = Path(sys.argv[2])
    example = pickle.loads((d / "example.pkl").read_bytes())
    versions = []
    for v in (1, 2):
        model = pickle.loads((d / f"model_v{v}.pkl").read_bytes())
        with keel.start_run(workspace=ws, capture_code=False) as run:
            mv = run.log_model(model, "churn", input_example=example)
        versions.append(getattr(mv, "number", None) or getattr(mv, "version", None) or str(mv))
    print(json.dumps({"versions": [str(v) for v in versions]}))
    """
)


# -- small plumbing -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def bench_lock():
    """Exclusive flock on /tmp/keel-bench.lock while measuring (other benchmarks take it too)."""
    fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"[lock] {LOCK_PATH} is held by another benchmark; waiting ...")
            t = time.perf_counter()
            fcntl.flock(fd, fcntl.LOCK_EX)
            log(f"[lock] acquired after {time.perf_counter() - t:.0f}s")
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def http_call(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], ppid [1])."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_tree(pid: int) -> dict[int, str]:
    """The process and all its descendants: {pid: start time} (BentoML's worker starts
    its own session, so a process group would miss it)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            st = _proc_stat(int(d.name))
            if st:
                children.setdefault(int(st[1]), []).append(int(d.name))
    out: dict[int, str] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        st = _proc_stat(p)
        if st is None or p in out:
            continue
        out[p] = st[19]  # starttime: tells a reused pid apart
        todo.extend(children.get(p, []))
    return out


def alive(pid: int, start: str) -> bool:
    st = _proc_stat(pid)
    return st is not None and st[19] == start and st[0] != "Z"


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants (sum of VmRSS)."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in (Path("/proc") / str(p) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            continue
    return total


def version_of(python: Path, dist: str) -> str:
    p = subprocess.run(
        [str(python), "-c", f"from importlib.metadata import version; print(version('{dist}'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return p.stdout.strip() or "?"


# -- wrk ----------------------------------------------------------------------------------------

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict:
    res: dict = {"non2xx": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise ValueError(f"wrk printed no Requests/sec:\n{out}")
    res["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        res[key] = _seconds(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    if m:
        res["requests"] = int(m.group(1))
        res["elapsed"] = _seconds(m.group(2))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        for k, v in zip(("connect", "read", "write", "timeout"), m.groups(), strict=True):
            res[k] = int(v)
    res["socket_errors"] = res["connect"] + res["read"] + res["write"] + res["timeout"]
    res["failed"] = res["non2xx"] + res["socket_errors"]
    return res


def write_lua(path: Path, bodies: list[str]) -> Path:
    items = ",\n".join(f"[==[{b}]==]" for b in bodies)
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"local bodies = {{\n{items}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\n"
        "end\n"
    )
    return path


def wrk_cmd(url: str, script: Path, seconds: float) -> list[str]:
    return [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]


TICK = os.sysconf("SC_CLK_TCK")


def busy_ticks() -> int:
    """CPU ticks spent busy on the whole machine since boot (all cores, /proc/stat)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(f) - f[3] - f[4]  # all but idle and iowait


def tree_ticks(pid: int | None) -> int:
    """CPU ticks (user + system) of a process and its living descendants."""
    total = 0
    for p in process_tree(pid) if pid else ():
        st = _proc_stat(p)
        if st:
            total += int(st[11]) + int(st[12])
    return total


def wait_quiet(limit: float, threshold: float = 0.3) -> float:
    """Wait (at most `limit` s) until other processes use under `threshold` cores over 2 s;
    return the last reading. The machine is shared: this only avoids the worst of it."""
    t0 = time.monotonic()
    while True:
        b0, w0 = busy_ticks(), time.monotonic()
        time.sleep(2.0)
        cores = (busy_ticks() - b0) / TICK / (time.monotonic() - w0)
        if cores < threshold or time.monotonic() - t0 > limit:
            if time.monotonic() - t0 > 5:
                log(f"[quiet] waited {time.monotonic() - t0:.0f}s; others use {cores:.2f} cores")
            return cores
        log(f"[quiet] others use {cores:.2f} cores; waiting (up to {limit:.0f}s) ...")


def run_wrk(url: str, script: Path, seconds: float, server_pid: int | None = None) -> dict:
    """One wrk run; also the CPU that neither wrk nor the server used meanwhile (in cores)."""
    b0, s0, t0 = busy_ticks(), tree_ticks(server_pid), time.monotonic()
    r0 = os.times()
    p = subprocess.run(
        wrk_cmd(url, script, seconds),
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
    )
    r1 = os.times()
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed ({p.returncode}): {p.stderr}\n{p.stdout}")
    res = parse_wrk(p.stdout)
    wall = time.monotonic() - t0
    wrk_s = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
    server_s = (tree_ticks(server_pid) - s0) / TICK
    res["server_cores"] = server_s / wall
    res["wrk_cores"] = wrk_s / wall
    res["other_cores"] = max(0.0, ((busy_ticks() - b0) / TICK - server_s - wrk_s) / wall)
    return res


# -- servers ------------------------------------------------------------------------------------


@dataclass
class Spec:
    key: str
    label: str
    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    predict_path: str
    envelope: str  # the JSON key the records go under
    port: int
    scripts: dict[str, Path] = field(default_factory=dict)

    def body(self, records: list[dict]) -> bytes:
        return json.dumps({self.envelope: records}).encode()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.predict_path}"


class Server:
    def __init__(self, spec: Spec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, probe: bytes, limit: float = 120.0) -> float:
        """Start the server; seconds from Popen to the first 200 answer to `probe`."""
        s = self.spec
        logf = self.log_path.open("ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            s.cmd,
            cwd=s.cwd,
            env=s.env,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        logf.close()
        while True:
            elapsed = time.perf_counter() - t0
            if self.proc.poll() is not None:
                raise RuntimeError(f"{s.label} exited ({self.proc.returncode}):\n{self.tail()}")
            if elapsed > limit:
                raise RuntimeError(f"{s.label} did not answer in {limit:.0f}s:\n{self.tail()}")
            try:
                status, _ = http_call(s.port, "POST", s.predict_path, probe, timeout=10)
                if status == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.005)

    def predict(self, records: list[dict]) -> dict:
        status, data = http_call(
            self.spec.port, "POST", self.spec.predict_path, self.spec.body(records), timeout=30
        )
        if status != 200:
            raise RuntimeError(f"{self.spec.label}: HTTP {status}: {data[:500]!r}")
        return json.loads(data)

    def rss(self) -> int:
        return tree_rss(self.proc.pid) if self.proc else 0

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        tree = process_tree(self.proc.pid)  # every process this server started, by id
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # start_new_session: the group is ours
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = [p for p, start in tree.items() if alive(p, start)]
            if not left:
                break
            if time.monotonic() > deadline - 8:  # 2 s of grace, then SIGKILL the stragglers
                for p in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
            time.sleep(0.1)
        self.proc = None


# -- setup (untimed) ------------------------------------------------------------------------------


def pins(keel_py: Path) -> list[str]:
    return [
        f"scikit-learn=={version_of(keel_py, 'scikit-learn')}",
        f"numpy=={version_of(keel_py, 'numpy')}",
        f"pandas=={version_of(keel_py, 'pandas')}",
    ]


def server_env(extra: dict[str, str] | None = None, venv_bin: Path | None = None) -> dict[str, str]:
    env = {**base_env(), "OMP_NUM_THREADS": "1"}
    if venv_bin is not None:
        env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(venv_bin.parent)
    env.update(extra or {})
    return env


def keel_serves(keel_bin: Path) -> bool:
    p = subprocess.run(
        [str(keel_bin), "serve", "--help"], capture_output=True, text=True, check=False
    )
    return p.returncode == 0


def register_keel(keel_py: Path, keel_bin: Path, ws: Path) -> list[str]:
    drop_tree(ws)
    ws.mkdir(parents=True)
    p = subprocess.run(
        [str(keel_py), "-c", REGISTER, str(ws), str(WORK)],
        capture_output=True,
        text=True,
        check=False,
        env=server_env(),
    )
    if p.returncode != 0:
        raise RuntimeError(f"registering the model in keel failed:\n{p.stderr[-3000:]}")
    versions = json.loads(p.stdout.strip().splitlines()[-1])["versions"]
    keel_cli(keel_bin, ws, "models", "promote", "churn", "1")
    return versions


def keel_cli(
    keel_bin: Path, ws: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [str(keel_bin), *args],
        cwd=ws,
        env=server_env({"KEEL_HOME": str(ws)}),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if check and p.returncode != 0:
        raise RuntimeError(
            f"keel {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
        )
    return p


# -- measuring ------------------------------------------------------------------------------------


def check_answers(server: Server, reqs: dict, expected: dict, version: str = "v1") -> None:
    got = server.predict(reqs["batch"][0])
    preds = got.get("predictions") if isinstance(got, dict) else got
    if preds != expected[version]["batch"]:
        raise RuntimeError(
            f"{server.spec.label} answered other predictions than the model in-process "
            f"({version}): {str(preds)[:200]} vs {str(expected[version]['batch'])[:200]}"
        )


def measure_pair(spec: Spec, seconds: float, warmup: float, pid: int | None) -> dict:
    out = {}
    for kind in ("single", "batch"):
        if warmup > 0:
            run_wrk(spec.url, spec.scripts[kind], warmup)
        out[kind] = run_wrk(spec.url, spec.scripts[kind], seconds, pid)
        w = out[kind]
        log(
            f"    {kind:6}: {w['rps']:8.1f} req/s  p50 {w['p50'] * 1000:6.1f} ms  "
            f"p99 {w['p99'] * 1000:6.1f} ms  failed {w['failed']}  cores: server "
            f"{w['server_cores']:.2f}, wrk {w['wrk_cores']:.2f}, others {w['other_cores']:.2f}"
        )
    return out


def wait_for_model(port: int, body: bytes, want: str, limit: float) -> float | None:
    """Seconds until /predict answers with model == want (None if not within limit)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        try:
            status, data = http_call(port, "POST", "/predict", body, timeout=5)
            if status == 200 and json.loads(data).get("model") == want:
                return time.perf_counter() - t0
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    return None


def swaps_under_load(
    spec: Spec, keel_bin: Path, ws: Path, probe: bytes, moves: int, pace: float
) -> dict:
    """wrk on single rows while `moves` promotes alternate 2/1, then one rollback."""
    wrk = subprocess.Popen(
        wrk_cmd(spec.url, spec.scripts["single"], 600),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    events = []
    try:
        time.sleep(1.5)
        t_start = time.perf_counter()
        for i in range(moves + 1):
            t0 = time.perf_counter()
            if i < moves:
                target = "2" if i % 2 == 0 else "1"
                p = keel_cli(keel_bin, ws, "models", "promote", "churn", target, check=False)
                want, what = f"churn/v{target}", f"promote {target}"
            else:
                p = keel_cli(keel_bin, ws, "models", "rollback", "churn", check=False)
                # after an even number of alternating moves the alias is on 1 and was on 2
                want = "churn/v2" if moves % 2 == 0 else "churn/v1"
                what = "rollback"
            t_cmd = time.perf_counter() - t0
            lag = wait_for_model(spec.port, probe, want, limit=10)
            events.append(
                {
                    "what": what,
                    "rc": p.returncode,
                    "stderr": p.stderr.strip()[-300:],
                    "command_s": t_cmd,
                    "follow_s": lag,  # from the command's end to the first answer of `want`
                    "want": want,
                }
            )
            rest = pace - (time.perf_counter() - t0)
            if rest > 0 and i < moves:
                time.sleep(rest)
        moves_s = time.perf_counter() - t_start
        time.sleep(2.0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(wrk.pid, signal.SIGINT)  # wrk stops and prints its summary
        try:
            out, _ = wrk.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(wrk.pid, signal.SIGKILL)
            out, _ = wrk.communicate()
    res = parse_wrk(out)
    res["moves_s"] = moves_s
    res["events"] = events
    return res


def keel_extras(
    server: Server, keel_bin: Path, ws: Path, reqs: dict, args: argparse.Namespace
) -> dict:
    spec = server.spec
    probe = spec.body(reqs["single"][0])
    extra: dict = {}
    log("  keel: shadow (challenger 2)")
    keel_cli(keel_bin, ws, "deploy", "churn", "--challenger", "2", "--mode", "shadow")
    time.sleep(2.0)
    extra["shadow"] = measure_pair(spec, args.duration, args.warmup, server.proc.pid)
    st = keel_cli(keel_bin, ws, "deploy", "status", "churn", "--json", check=False)
    extra["shadow_status"] = st.stdout.strip()[-4000:] if st.returncode == 0 else st.stderr
    keel_cli(keel_bin, ws, "deploy", "stop", "churn")
    time.sleep(2.0)
    log(f"  keel: {args.swaps} promotes + 1 rollback under load")
    extra["swaps"] = swaps_under_load(spec, keel_bin, ws, probe, args.swaps, args.pace)
    sw = extra["swaps"]
    status, data = http_call(spec.port, "GET", "/v2/models/churn")
    extra["v2_model"] = {"status": status, "body": data.decode(errors="replace")[:2000]}
    extra["final_model"] = server.predict(reqs["single"][0]).get("model")
    shown = keel_cli(keel_bin, ws, "models", "show", "churn", "--json", check=False)
    extra["models_show"] = shown.stdout[-3000:]
    lags = [e["follow_s"] for e in sw["events"] if e["follow_s"] is not None]
    log(
        f"    swaps: failed {sw['failed']} (non-2xx {sw['non2xx']}, socket {sw['socket_errors']}) "
        f"of {sw.get('requests', 0)}; {len(lags)}/{len(sw['events'])} followed, lag median "
        f"{median(lags) * 1000:.0f} ms; final model {extra['final_model']}"
    )
    return extra


# -- report ---------------------------------------------------------------------------------------


def ms(x: float | None) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def us(x: float | None) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x * 1e6:.0f} µs" if x < 1e-3 else f"{x * 1000:.2f} ms"


def rx(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a != a or b != b or b == 0:
        return None
    return a / b


def fx(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def summarize(results: dict, keys: list[str]) -> dict:
    """Medians over runs for each server and kind."""
    s: dict = {}
    for k in keys:
        runs = results[k]
        if not runs:
            continue
        d: dict = {
            "cold": median(r["cold"] for r in runs),
            "cold_all": [r["cold"] for r in runs],
            "rss": median(r["rss"] for r in runs),
        }
        for kind in ("single", "batch"):
            ws = [r["wrk"][kind] for r in runs]
            d[kind] = {
                "rps": median(w["rps"] for w in ws),
                "p50": median(w["p50"] for w in ws),
                "p99": median(w["p99"] for w in ws),
                "failed": sum(w["failed"] for w in ws),
                "non2xx": sum(w["non2xx"] for w in ws),
                "socket_errors": sum(w["socket_errors"] for w in ws),
                "requests": sum(w.get("requests", 0) for w in ws),
            }
        s[k] = d
    return s


def build_report(
    summary: dict, extras: list[dict], inproc: dict, labels: dict, meta: dict
) -> tuple[list[str], list[list[str]], list[list[str]], list[str]]:
    cols = [k for k in ("keel", "bare", "mlflow", "bentoml") if k in summary]
    headers = [
        "scenario",
        *[labels[k] for k in cols],
        "keel/bare",
        "keel/MLflow",
        "target",
        "result",
    ]
    rows: list[list[str]] = []
    targets: list[list[str]] = []  # for the RESULTS.md summary
    k, b, m = summary.get("keel"), summary.get("bare"), summary.get("mlflow")

    def cells(fn) -> list[str]:
        return [fn(summary[c]) for c in cols]

    for kind, name in (("single", "single-row"), ("batch", f"{BATCH_ROWS}-row")):
        rk = rx(k[kind]["rps"], b[kind]["rps"]) if k and b else None
        rm = rx(k[kind]["rps"], m[kind]["rps"]) if k and m else None
        checks = [r >= need for r, need in ((rk, 1.0), (rm, 1.3)) if r is not None]
        ok = all(checks) if checks else None
        rows.append(
            [
                f"{name} throughput (req/s)",
                *cells(lambda d, kind=kind: f"{d[kind]['rps']:,.0f}"),
                fx(rk),
                fx(rm),
                ">= 1.0x bare and >= 1.3x MLflow",
                verdict(ok),
            ]
        )
        targets.append(
            [
                "6",
                f"{name} throughput >= 1.0x bare FastAPI and >= 1.3x `mlflow models serve`",
                (
                    f"{k[kind]['rps']:,.0f} req/s: {fx(rk)} bare ({b[kind]['rps']:,.0f}), "
                    f"{fx(rm)} MLflow ({m[kind]['rps']:,.0f})"
                )
                if k and b and m
                else "n/a",
                "met" if ok else ("missed" if ok is not None else "not measured"),
            ]
        )
        rows.append(
            [
                f"{name} latency p50",
                *cells(lambda d, kind=kind: ms(d[kind]["p50"])),
                fx(rx(k[kind]["p50"], b[kind]["p50"])) if k and b else "n/a",
                fx(rx(k[kind]["p50"], m[kind]["p50"])) if k and m else "n/a",
                "",
                "",
            ]
        )
        okp = None if not (k and b) else k[kind]["p99"] <= b[kind]["p99"]
        rows.append(
            [
                f"{name} latency p99",
                *cells(lambda d, kind=kind: ms(d[kind]["p99"])),
                fx(rx(k[kind]["p99"], b[kind]["p99"])) if k and b else "n/a",
                fx(rx(k[kind]["p99"], m[kind]["p99"])) if k and m else "n/a",
                "<= bare",
                verdict(okp),
            ]
        )
        targets.append(
            [
                "6",
                f"{name} p99 no worse than the bare app's",
                f"{ms(k[kind]['p99'])} vs {ms(b[kind]['p99'])}" if k and b else "n/a",
                "met" if okp else ("missed" if okp is not None else "not measured"),
            ]
        )
        rows.append(
            [
                f"{name} failed requests (non-2xx + socket errors, all runs)",
                *cells(
                    lambda d, kind=kind: (
                        f"{d[kind]['failed']} of {d[kind]['requests']:,}"
                        + (
                            f" ({d[kind]['non2xx']} non-2xx, {d[kind]['socket_errors']} socket)"
                            if d[kind]["failed"]
                            else ""
                        )
                    )
                ),
                "",
                "",
                "",
                "",
            ]
        )
    okc = None if not k else k["cold"] < 1.5
    rows.append(
        [
            "cold start: process start to first answered predict",
            *cells(lambda d: ms(d["cold"])),
            fx(rx(k["cold"], b["cold"])) if k and b else "n/a",
            fx(rx(k["cold"], m["cold"])) if k and m else "n/a",
            "keel < 1.5 s",
            verdict(okc),
        ]
    )
    targets.append(
        [
            "6",
            "cold start (process start to first answered request) < 1.5 s",
            f"{ms(k['cold'])} (bare {ms(b['cold']) if b else 'n/a'}, MLflow {ms(m['cold']) if m else 'n/a'})"
            if k
            else "n/a",
            "met" if okc else ("missed" if okc is not None else "not measured"),
        ]
    )
    rows.append(
        [
            "resident memory after warm-up (server and its children)",
            *cells(lambda d: f"{d['rss'] / 2**20:.0f} MiB"),
            fx(rx(k["rss"], b["rss"])) if k and b else "n/a",
            fx(rx(k["rss"], m["rss"])) if k and m else "n/a",
            "",
            "",
        ]
    )
    notes: list[str] = []
    blank = [""] * len(cols)
    if k and extras:
        first = cols.index("keel")
        for kind, name in (("single", "single-row"), ("batch", f"{BATCH_ROWS}-row")):
            sh = [e["shadow"][kind] for e in extras if "shadow" in e]
            if not sh:
                continue
            rps_sh = median(w["rps"] for w in sh)
            p50_sh = median(w["p50"] for w in sh)
            p99_sh = median(w["p99"] for w in sh)
            cost = 1 / rps_sh - 1 / k[kind]["rps"]
            own = inproc.get(f"predict_v2_{kind}")
            ok = None if own is None else cost <= own
            c = list(blank)
            failed_sh = sum(w["failed"] for w in sh)
            c[first] = (
                f"{rps_sh:,.0f} req/s (plain {k[kind]['rps']:,.0f}); p50 {ms(p50_sh)}, p99 {ms(p99_sh)}; "
                f"{failed_sh} failed of {sum(w.get('requests', 0) for w in sh):,}"
                + (f" ({sum(w['timeout'] for w in sh)} timeouts)" if failed_sh else "")
            )
            rows.append(
                [
                    f"keel shadow, {name}: cost per request 1/rps(shadow) - 1/rps(plain)",
                    *c,
                    f"cost {us(cost)} vs challenger predict {us(own)}",
                    "",
                    "cost <= challenger's predict",
                    verdict(ok),
                ]
            )
            targets.append(
                [
                    "6",
                    f"shadow mode costs at most the challenger's own predict time ({name})",
                    f"{us(cost)} per request ({rps_sh:,.0f} vs {k[kind]['rps']:,.0f} req/s) "
                    f"vs {us(own)} predict of version 2",
                    "met" if ok else ("missed" if ok is not None else "not measured"),
                ]
            )
        sws = [e["swaps"] for e in extras if "swaps" in e]
        if sws:
            failed = sum(s["failed"] for s in sws)
            total = sum(s.get("requests", 0) for s in sws)
            events = [ev for s in sws for ev in s["events"]]
            lags = [ev["follow_s"] for ev in events if ev["follow_s"] is not None]
            unfollowed = sum(1 for ev in events if ev["follow_s"] is None)
            bad_rc = sum(1 for ev in events if ev["rc"] != 0)
            finals = [e.get("final_model") for e in extras]
            ok = failed == 0 and unfollowed == 0 and bad_rc == 0
            c = list(blank)
            c[first] = (
                f"{failed} failed of {total:,} ({sum(s['non2xx'] for s in sws)} non-2xx, "
                f"{sum(s['socket_errors'] for s in sws)} socket); "
                f"{median(sw['rps'] for sw in sws):,.0f} req/s during"
            )
            rows.append(
                [
                    f"keel: {len(sws[0]['events']) - 1} promotes + 1 rollback under load "
                    f"({len(sws)} run(s))",
                    *c,
                    f"followed {len(lags)}/{len(events)}: lag median {ms(median(lags))}, "
                    f"max {ms(max(lags) if lags else None)}; final {', '.join(map(str, finals))}",
                    "",
                    "zero failed requests",
                    verdict(ok),
                ]
            )
            targets.append(
                [
                    "6",
                    "twenty swaps and one rollback under load: zero failed requests",
                    f"{failed} failed of {total:,} requests; the server followed "
                    f"{len(lags)}/{len(events)} moves (median {ms(median(lags))} after the "
                    f"command returned)",
                    "met" if ok else "missed",
                ]
            )
            if bad_rc:
                notes.append(
                    f"{bad_rc} keel model commands failed: "
                    + "; ".join(ev["stderr"] for ev in events if ev["rc"] != 0)[:500]
                )
    for kind, name in (("single", "1 row"), ("batch", f"{BATCH_ROWS} rows")):
        if f"predict_v1_{kind}" in inproc:
            rows.append(
                [
                    f"in-process, {name}: predict v1 / v2; bare request work (json+DataFrame+predict+json)",
                    *blank,
                    f"{us(inproc[f'predict_v1_{kind}'])} / {us(inproc[f'predict_v2_{kind}'])}; "
                    f"{us(inproc[f'request_work_{kind}'])}",
                    "",
                    "",
                    "",
                ]
            )
    return headers, rows, targets, notes


def write_results(sub: str, key: str, targets: list[list[str]] | None) -> None:
    """Put `sub` (a "### serving benchmark ..." block) into the "## Serving" section of
    RESULTS.md, replacing the block whose heading contains `key`; with `targets`, also
    replace issue 6's rows in the summary table. Re-reads the file just before writing."""
    text = RESULTS_MD.read_text()
    if targets is not None:
        lines = [ln for ln in text.splitlines() if not ln.startswith("| 6 |")]
        try:
            start = next(i for i, ln in enumerate(lines) if ln.startswith("## Summary"))
            end = next(i for i in range(start, len(lines)) if lines[i].startswith("| issue"))
            while end + 1 < len(lines) and lines[end + 1].startswith("|"):
                end += 1
            lines[end + 1 : end + 1] = ["| " + " | ".join(r) + " |" for r in targets]
        except StopIteration:
            log("[results] no summary table in RESULTS.md; only the section is written")
        text = "\n".join(lines) + "\n"
    block = sub.strip() + "\n"
    m = re.search(r"^## Serving\n.*?(?=^## |\Z)", text, re.M | re.S)
    if not m:
        text = text.rstrip() + "\n\n## Serving\n\n" + block
    else:
        section = m.group(0)
        old = re.search(
            rf"^### serving benchmark[^\n]*{re.escape(key)}.*?(?=^### |\Z)", section, re.M | re.S
        )
        if old:
            new = section[: old.start()] + block + "\n" + section[old.end() :].lstrip("\n")
        else:
            new = section.rstrip() + "\n\n" + block
        new = new.rstrip() + "\n"
        rest = text[m.end() :]
        text = text[: m.start()] + new + ("\n" + rest if rest.strip() else "")
    RESULTS_MD.write_text(text)
    rows = len(targets) if targets is not None else 0
    log(f"[results] wrote the serving block ({key}) and {rows} summary rows to {RESULTS_MD}")


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="one run, 3 s measurements")
    ap.add_argument("--runs", type=int, default=None, help="rounds of all servers (default 3)")
    ap.add_argument("--duration", type=float, default=None, help="seconds per wrk measurement")
    ap.add_argument("--warmup", type=float, default=None, help="seconds of wrk warm-up")
    ap.add_argument("--swaps", type=int, default=20, help="promotes under load (then 1 rollback)")
    ap.add_argument("--pace", type=float, default=None, help="seconds between moves (default 1)")
    ap.add_argument(
        "--model",
        choices=("mixed", "numeric"),
        default="mixed",
        help="mixed: 5 numeric + 2 string categorical columns (default); numeric: the 5 only",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each server, wait up to S seconds for other processes to use < 0.3 cores",
    )
    ap.add_argument("--no-keel", action="store_true")
    ap.add_argument("--no-mlflow", action="store_true")
    ap.add_argument("--no-bentoml", action="store_true")
    ap.add_argument("--keel", default=str(REPO_DIR / ".venv" / "bin" / "keel"))
    ap.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    ap.add_argument("--keep", action="store_true", help="keep bench/.work/serve afterwards")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    args.runs = args.runs or (1 if args.quick else 3)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    args.pace = args.pace or 1.0
    started = time.perf_counter()
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")

    keel_bin = Path(args.keel)
    keel_py = keel_bin.parent / "python"
    if not ensure_apt_tool("wrk", "wrk"):
        log("wrk is missing and could not be installed (apt-get install wrk)")
        return 2
    drop_tree(WORK)
    (WORK / "lua").mkdir(parents=True)
    (WORK / "logs").mkdir()

    # The model, the requests and the expected answers (keel's venv, untimed).
    log("[setup] fitting the model (keel's venv) ...")
    p = subprocess.run(
        [
            str(keel_py),
            "-c",
            MAKE_MODEL,
            str(WORK),
            str(SINGLE_BODIES),
            str(BATCH_BODIES),
            str(BATCH_ROWS),
            args.model,
        ],
        capture_output=True,
        text=True,
        check=False,
        env=server_env(),
    )
    if p.returncode != 0:
        raise RuntimeError(f"fitting the model failed:\n{p.stderr[-3000:]}")
    model_info = json.loads(p.stdout.strip().splitlines()[-1])
    reqs = json.loads((WORK / "requests.json").read_text())
    expected = json.loads((WORK / "expected.json").read_text())
    pin = pins(keel_py)

    # The anchors (untimed).
    specs: dict[str, Spec] = {}
    labels = {"keel": "keel", "bare": "bare FastAPI", "mlflow": "MLflow", "bentoml": "BentoML"}
    versions: dict[str, str] = {"keel": version_of(keel_py, "keel-mlops")}
    fa_py = ensure_venv("serve-fastapi", ["fastapi", "uvicorn[standard]", *pin])
    versions.update(
        fastapi=version_of(fa_py, "fastapi"),
        uvicorn=version_of(fa_py, "uvicorn"),
        sklearn=pin[0].split("==")[1],
    )
    specs["bare"] = Spec(
        "bare",
        labels["bare"],
        [
            str(fa_py),
            "-m",
            "uvicorn",
            "bare_fastapi:app",
            "--host",
            HOST,
            "--no-access-log",
            "--port",
        ],
        APPS,
        server_env({"SERVE_BENCH_MODEL": str(WORK / "model_v1.pkl")}, fa_py.parent),
        "/predict",
        "inputs",
        0,
    )
    if not args.no_mlflow:
        ml_py = ensure_venv("serve-mlflow", ["mlflow>=3,<4", *pin])
        versions["mlflow"] = version_of(ml_py, "mlflow")
        ml_env = server_env({"MLFLOW_DISABLE_TELEMETRY": "true"}, ml_py.parent)
        model_dir = WORK / "mlflow_model"
        subprocess.run(
            [
                str(ml_py),
                str(APPS / "mlflow_setup.py"),
                str(WORK / "model_v1.pkl"),
                str(WORK / "example.pkl"),
                str(model_dir),
            ],
            check=True,
            env=ml_env,
            capture_output=not args.verbose,
        )
        specs["mlflow"] = Spec(
            "mlflow",
            labels["mlflow"],
            [
                str(ml_py.parent / "mlflow"),
                "models",
                "serve",
                "-m",
                str(model_dir),
                "--env-manager",
                "local",
                "-h",
                HOST,
                "-w",
                "1",
                "-p",
            ],
            WORK,
            ml_env,
            "/invocations",
            "dataframe_records",
            0,
        )
    if not args.no_bentoml:
        bt_py = ensure_venv("serve-bentoml", ["bentoml>=1.4,<1.5", *pin])
        versions["bentoml"] = version_of(bt_py, "bentoml")
        bt_env = server_env(
            {"BENTOML_HOME": str(WORK / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}, bt_py.parent
        )
        subprocess.run(
            [str(bt_py), str(APPS / "bento_setup.py"), str(WORK / "model_v1.pkl")],
            check=True,
            env=bt_env,
            cwd=APPS,
            capture_output=not args.verbose,
        )
        specs["bentoml"] = Spec(
            "bentoml",
            labels["bentoml"],
            [
                str(bt_py.parent / "bentoml"),
                "serve",
                "bento_service:Churn",
                "--host",
                HOST,
                "--port",
            ],
            APPS,
            bt_env,
            "/predict",
            "inputs",
            0,
        )
    keel_note = ""
    if not args.no_keel:
        if keel_serves(keel_bin):
            specs["keel"] = Spec(
                "keel",
                labels["keel"],
                [str(keel_bin), "serve", "churn", "--port"],
                WORK / "keel-ws",
                server_env(),
                "/predict",
                "inputs",
                0,
            )
        else:
            keel_note = f"`{keel_bin} serve` is not available: keel not measured"
            log("[setup] " + keel_note)
    for spec in specs.values():
        for kind, n in (("single", SINGLE_BODIES), ("batch", BATCH_BODIES)):
            bodies = [json.dumps({spec.envelope: r}) for r in reqs[kind][:n]]
            spec.scripts[kind] = write_lua(WORK / "lua" / f"{spec.envelope}_{kind}.lua", bodies)

    # In-process predict times (keel's venv, the same frames), under the lock.
    log("[measure] in-process predict times (keel's venv) ...")
    with bench_lock():
        p = subprocess.run(
            [str(keel_py), "-c", PREDICT_TIMES, str(WORK)],
            capture_output=True,
            text=True,
            check=False,
            env=server_env(),
        )
    if p.returncode != 0:
        raise RuntimeError(f"in-process timing failed:\n{p.stderr[-3000:]}")
    inproc = json.loads(p.stdout.strip().splitlines()[-1])
    log(
        "  in-process predict v1: "
        f"{us(inproc['predict_v1_single'])} (1 row), {us(inproc['predict_v1_batch'])} (100 rows); "
        f"v2: {us(inproc['predict_v2_single'])}, {us(inproc['predict_v2_batch'])}"
    )

    keys = [k for k in ("bare", "mlflow", "bentoml", "keel") if k in specs]
    results: dict[str, list[dict]] = {k: [] for k in keys}
    extras: list[dict] = []
    loads: list[tuple[float, float]] = []
    probe_records = reqs["single"][0]
    for r in range(args.runs):
        order = keys[r % len(keys) :] + keys[: r % len(keys)]
        ws = WORK / "keel-ws"
        if "keel" in specs:
            log(f"[run {r + 1}/{args.runs}] keel: fresh workspace, versions 1 and 2, promote 1")
            register_keel(keel_py, keel_bin, ws)
            specs["keel"].env = server_env({"KEEL_HOME": str(ws)})
        with bench_lock():
            load0 = os.getloadavg()[0]
            for key in order:
                spec = specs[key]
                spec.port = free_port()
                cmd = list(spec.cmd)
                spec.cmd = [*cmd, str(spec.port)]
                server = Server(spec, WORK / "logs" / f"{key}.log")
                if args.quiet_wait > 0:
                    wait_quiet(args.quiet_wait)
                log(f"[run {r + 1}/{args.runs}] {spec.label} on port {spec.port}")
                try:
                    cold = server.start(spec.body(probe_records))
                    log(f"    cold start {cold:.2f}s")
                    check_answers(server, reqs, expected)
                    pair = measure_pair(spec, args.duration, args.warmup, server.proc.pid)
                    res = {"cold": cold, "wrk": pair}
                    res["rss"] = server.rss()
                    if key == "keel":
                        model = server.predict(probe_records).get("model")
                        if model != "churn/v1":
                            raise RuntimeError(f"keel serves {model!r}, expected churn/v1")
                        extras.append(keel_extras(server, keel_bin, ws, reqs, args))
                    results[key].append(res)
                finally:
                    server.stop()
                    spec.cmd = cmd
            loads.append((load0, os.getloadavg()[0]))

    summary = summarize(results, keys)
    headers, rows, targets, notes = build_report(summary, extras, inproc, labels, versions)
    took = time.perf_counter() - started
    vtxt = ", ".join(f"{k} {v}" for k, v in versions.items())
    measured = [w for rs in results.values() for r in rs for w in r["wrk"].values()]
    measured += [w for e in extras for w in e.get("shadow", {}).values()]
    others = [w["other_cores"] for w in measured if "other_cores" in w]
    mode = "quick" if args.quick else "full"
    title = (
        f"serving benchmark ({mode}, model {args.model}), {when}; {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {vtxt}; load avg "
        + ", ".join(f"{a:.1f} -> {b:.1f}" for a, b in loads)
        + f"; other processes used {median(others):.2f} cores (median; max "
        f"{max(others, default=float('nan')):.2f}) during the wrk measurements"
        + f"; median of {args.runs} run(s) of {args.duration:.0f} s per wrk measurement "
        f"(warm-up {args.warmup:.0f} s); took {took:.0f}s"
    )
    print(f"\n{title}\n")
    print_table(headers, rows)
    for n in [keel_note, *notes]:
        if n:
            print(f"- {n}")
    section = "\n".join(
        [
            f"### {title}",
            "",
            "```sh",
            ".venv/bin/python bench/serve.py"
            + (" --quick" if args.quick else "")
            + (f" --runs {args.runs}" if args.runs != (1 if args.quick else 3) else "")
            + (" --model numeric" if args.model == "numeric" else ""),
            "```",
            "",
            "Model: a HistGradientBoostingClassifier (100 trees; the challenger, version 2: 200 trees"
            + (
                "; string categoricals through its own categorical support"
                if args.model == "mixed"
                else "; numeric columns only"
            )
            + f") fitted on {model_info['train_rows']:,} synthetic churn rows"
            f" ({', '.join(model_info['columns'])}); every server loads the same fitted model and must"
            f" answer the in-process predictions. One worker each on 127.0.0.1, OMP_NUM_THREADS=1;"
            f" wrk -t{THREADS} -c{CONNECTIONS} --latency, bodies cycled from {SINGLE_BODIES} single-row"
            f" / {BATCH_BODIES} hundred-row requests. The bare app is uvicorn[standard] with"
            " --no-access-log; MLflow `mlflow models serve --env-manager local -w 1` (cloudpickle);"
            " BentoML `bentoml serve` (workers=1, sync API); keel `keel serve churn` (validation and"
            " prediction logging on). Shadow cost = 1/rps(shadow) - 1/rps(plain), one saturated worker.",
            "",
            markdown_table(headers, rows),
            *(f"\n- {n}" for n in [keel_note, *notes] if n),
        ]
    )
    print("\n" + section)
    (WORK.parent / "serve-results.json").write_text(
        json.dumps(
            {
                "when": when,
                "versions": versions,
                "summary": summary,
                "extras": extras,
                "inproc": inproc,
                "results": results,
                "loads": loads,
            },
            indent=1,
            default=str,
        )
    )
    if args.write_results:
        write_results(section, f"model {args.model})", targets if args.model == "mixed" else None)
    if not args.keep:
        for sub in ("keel-ws", "bentoml", "mlflow_model"):
            drop_tree(WORK / sub)
    return 0


if __name__ == "__main__":
    sys.exit(main())
