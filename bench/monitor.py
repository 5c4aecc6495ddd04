"""Drift detection: keel beside Evidently's DataDriftPreset and NannyML's univariate drift,
and keel's change detection beside river's ADWIN.

Same generated data for every tool (bench/.work/monitor/): 25 features, drift injected into
exactly five (mean shift, variance change, a 0.1-sd mean shift, a category frequency change,
a new category), at 100,000 and 1,000,000 rows a side. Each tool runs in its own process
(Evidently and NannyML in git-ignored venvs under bench/.venvs/, telemetry off), reads the
same Parquet files, and reports the seconds of its drift computation (reading excluded), its
peak RSS (ru_maxrss of the process) and which features it flagged. One run per tool and size
(the issue's protocol); the ADWIN delay is a median over seeds.

Every measuring phase holds an exclusive flock on /tmp/keel-bench.lock (other benchmarks on
this machine take it too); installs and data generation happen outside it.

    .venv/bin/python bench/monitor.py [--sizes 100000,1000000] [--tools keel,evidently,nannyml]
    .venv/bin/python bench/monitor.py --live-only   # the log-lake window of `keel monitor`
    .venv/bin/python bench/monitor.py --drift-only --sizes 200000 --tools keel,evidently --repeat 3

With --repeat N every tool runs once a round, in turn, for N rounds: the table gives
medians (and ranges) and each ratio is taken round by round, then its median.

The live measurement writes 1,000,000 served predictions x 25 inputs into a log lake
(bench/.work/monitor/live/, as `keel serve` logs them), registers a model trained on the
1,000,000-row reference (its profile stored by `keel data add`), and times
`keel.monitor.check` (read the window with DuckDB, judge it against the profile) and the
`keel monitor` command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BENCH_DIR,
    REPO_DIR,
    WORKER_PRELUDE,
    base_env,
    bench_lock,
    ensure_venv,
    fmt_s,
    log,
    markdown_table,
    parse_result,
    timed_run,
)

WORK = BENCH_DIR / ".work" / "monitor"
DRIFTED = ["mean_shift", "variance", "subtle_shift", "cat_frequency", "cat_new"]

EVIDENTLY = ["evidently==0.7.23", "pandas<3", "pyarrow"]
NANNYML = ["nannyml==0.13.1", "statsmodels", "pyarrow"]


def generate(n: int) -> tuple[Path, Path]:
    ref, cur = WORK / f"ref_{n}.parquet", WORK / f"cur_{n}.parquet"
    if ref.exists() and cur.exists():
        return ref, cur
    sys.path.insert(0, str(REPO_DIR))
    from tests.monitor.synthetic import table

    WORK.mkdir(parents=True, exist_ok=True)
    log(f"[data] generating {n:,} x 25 ...")
    table(n, 1, False).to_parquet(ref)
    table(n, 2, True).to_parquet(cur)
    return ref, cur


KEEL_WORKER = (
    WORKER_PRELUDE
    + r"""
import resource
import pandas as pd
import keel
ref = pd.read_parquet(ARGS["ref"]); cur = pd.read_parquet(ARGS["cur"])
# keel imports scipy and scikit-learn on first use; the anchors import theirs before the clock
# starts, so keel's are loaded first too (on a small slice), and each tool times the same work.
keel.monitor.drift(ref.head(500), cur.head(500), multivariate=ARGS["multivariate"])
seconds, report = timeit(lambda: keel.monitor.drift(ref, cur, multivariate=ARGS["multivariate"]))
out(seconds=seconds, flagged=report.drifted_features,
    peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""
)

EVIDENTLY_WORKER = (
    WORKER_PRELUDE
    + r"""
import resource
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(ARGS["ref"]); cur = pd.read_parquet(ARGS["cur"])
def run():
    return Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref).dict()
seconds, doc = timeit(run)
flagged = []
for m in doc["metrics"]:
    cfg = m.get("config", {})
    if cfg.get("type", "").endswith(":ValueDrift"):
        # Distances drift at >= threshold; p-value methods (small samples) below it.
        value, thr = float(m["value"]), float(cfg["threshold"])
        if (value < thr) if "p_value" in cfg.get("method", "") else (value >= thr):
            flagged.append(cfg["column"])
out(seconds=seconds, flagged=flagged,
    peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""
)

NANNYML_WORKER = (
    WORKER_PRELUDE
    + r"""
import resource
import pandas as pd
import nannyml as nml
ref = pd.read_parquet(ARGS["ref"]); cur = pd.read_parquet(ARGS["cur"])
cols = list(ref.columns)
def run():
    calc = nml.UnivariateDriftCalculator(
        column_names=cols, chunk_number=10,
        continuous_methods=["kolmogorov_smirnov"], categorical_methods=["chi2"])
    calc.fit(ref)
    return calc.calculate(cur).filter(period="analysis").to_df()
seconds, df = timeit(run)
flagged = []
for c in cols:
    alerts = [k for k in df.columns if k[0] == c and k[-1] == "alert"]
    if alerts and bool(df[alerts].any().any()):
        flagged.append(c)
out(seconds=seconds, flagged=flagged,
    peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""
)

ADWIN_WORKER = (
    WORKER_PRELUDE
    + r"""
import numpy as np
from river.drift import ADWIN
import keel.monitor
def stream(seed, n, change):
    rng = np.random.default_rng(seed)
    return (rng.random(n) < np.where(np.arange(n) < change, 0.1, 0.2)).astype(float)
n, change = ARGS["n"], ARGS["change"]
rows = []
for seed in range(ARGS["seeds"]):
    s = stream(seed, n, change)
    t = time.perf_counter(); keel_points = keel.monitor.ADWIN().detect(s)
    keel_rate = n / (time.perf_counter() - t)
    d = ADWIN(); river_points = []
    t = time.perf_counter()
    for i, v in enumerate(s.tolist()):
        d.update(v)
        if d.drift_detected:
            river_points.append(i)
    river_rate = n / (time.perf_counter() - t)
    rows.append(dict(keel=keel_points, river=river_points, keel_rate=keel_rate,
                     river_rate=river_rate))
def summary(key):
    firsts = [next((p for p in r[key] if p >= change), None) for r in rows]
    false = sum(1 for r in rows for p in r[key] if p < change)
    delays = sorted(f - change for f in firsts if f is not None)
    return dict(median_delay=delays[len(delays)//2] if delays else None,
                false_alarms=false, missed=firsts.count(None),
                rate=sorted(r[key + "_rate"] for r in rows)[len(rows)//2])
out(keel=summary("keel"), river=summary("river"))
"""
)


LIVE = WORK / "live"

LIVE_SETUP = (
    WORKER_PRELUDE
    + r"""
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
import keel
sys.path.insert(0, ARGS["repo"])
from tests.monitor.synthetic import table

def rng_noise(n):
    return np.random.default_rng(1).normal(0, 1, n)

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

root = ARGS["root"]
ws = keel.init(root)
ref = keel.data.add(ARGS["ref"], name="bench_train", workspace=ws)  # profiled as it is read
# A real classifier, so each check also judges the served scores against the model's own
# scores on its training data (scored by the first check, read back by the next ones).
train = table(20_000, 0, False)
label = (train["num_01"] - 1 + (train["cat_0"] == "a") + rng_noise(20_000) > 0).astype(int)
model = make_pipeline(
    ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"),
          ["cat_frequency", "cat_new", "cat_0", "cat_1", "cat_2"])],
        remainder="passthrough",
    ),
    LogisticRegression(max_iter=300),
).fit(train, label)
with keel.start_run(workspace=ws, capture_code=False) as run:
    run.use(ref.ref)
    run.log_model(model, "bench", input_example=table(5, 0, False))
from keel.registry.versions import promote
promote(ws, "bench", 1)
# The current window: 1,000,000 served predictions over the last 50 minutes, as `keel serve`
# logs them (same columns and types), in 10 segments.
cur = table(ARGS["n"], 2, True)
n, start = len(cur), time.time() - 3000
rng = np.random.default_rng(3)
for k, part in enumerate(np.array_split(np.arange(n), 10)):
    ts = start + part * (2990 / n)
    m = len(part)
    score = model.predict_proba(cur.iloc[part])[:, 1]  # what the server would have logged
    cols = {
        "ts": pa.array((ts * 1e6).astype("int64")).cast(pa.timestamp("us", tz="UTC")),
        "request_id": pa.array([f"r{i}" for i in part]),
        "prediction_id": pa.array([f"p{i}-0" for i in part]),
        "version": pa.array(np.ones(m, dtype="int64")),
        "arm": pa.array(["champion"] * m),
        "served": pa.array(np.ones(m, dtype=bool)),
        "deployment": pa.nulls(m, pa.string()),
        "latency_ms": pa.array(np.full(m, 1.5)),
        "error": pa.nulls(m, pa.string()),
        "key": pa.nulls(m, pa.string()),
        "prediction": pa.array((score >= 0.5).astype(float)),
        "label": pa.nulls(m, pa.string()),
        "score": pa.array(score),
    }
    for c in cur.columns:
        cols["input_" + c] = pa.array(cur[c].to_numpy()[part])
    hour = time.strftime("%Y-%m-%dT%H", time.gmtime(float(ts[0])))
    folder = os.path.join(root, ".keel", "logs", "predictions", "model=bench", "hour=" + hour)
    os.makedirs(folder, exist_ok=True)
    pq.write_table(pa.table(cols), os.path.join(folder, f"seg-{k:02d}.parquet"), compression="zstd")
ws.close()
out(rows=n)
"""
)

LIVE_WORKER = (
    WORKER_PRELUDE
    + r"""
import resource
import keel
from keel.store.db import object_refs
ws = keel.connect(ARGS["root"])
# Forget predictions an earlier run kept, so the first check scores the training data.
ws.db.write(lambda conn: conn.execute(
    object_refs.delete().where(object_refs.c.owner_kind == "reference_predictions")))
def once():
    return keel.monitor.check(
        "bench", window=None, last=1_000_000, multivariate=ARGS["multivariate"], workspace=ws)
# The first check imports scipy and friends, and (the first time in this workspace) scores
# the training data with the model; the next reads those predictions back.
cold, first = timeit(once)
seconds, result = timeit(once)  # what each check of `keel monitor --every` costs
report = result.report
pred = report.prediction
out(seconds=seconds, cold=cold, rows=result.window.rows, sampled=result.window.sampled,
    flagged=result.drifted_features, status=result.status,
    sources=sorted({f.reference_source for f in report.features.values()}),
    prediction=(pred.status + ": " + pred.notes[0]) if pred is not None else "not compared",
    first_prediction=first.report.prediction.notes[0] if first.report.prediction else "-",
    peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""
)


def live_window(n: int) -> list[list[str]]:
    """A 1,000,000-row window read from the log lake, judged against a stored profile."""
    root = LIVE / f"ws2_{n}"  # ws2: the served model is a classifier whose scores are judged
    if not (root / ".keel" / "logs" / "predictions").exists():
        ref, _ = generate(n)
        if root.exists():  # a half-written earlier attempt
            import shutil

            shutil.rmtree(root)
        log(f"[live] writing a {n:,}-row x 25 log lake and the reference profile ...")
        run_worker(
            sys.executable,
            LIVE_SETUP,
            {"mode": "setup", "root": str(root), "ref": str(ref), "n": n, "repo": str(REPO_DIR)},
            "keel",
        )
    rows = []
    for multivariate in (False, True):
        with bench_lock():
            r = run_worker(
                sys.executable,
                LIVE_WORKER,
                {"mode": "live", "root": str(root), "multivariate": multivariate},
                "keel",
            )
            t, p = timed_run(
                [
                    str(Path(sys.executable).with_name("keel")),
                    "monitor",
                    "bench",
                    "--last",
                    "1000000",
                    "--json",
                    *([] if multivariate else ["--no-multivariate"]),
                ],
                cwd=root,
                env=base_env(),
                check=False,
            )
        found, false = accuracy(r["flagged"])
        rows.append(
            [
                "keel.monitor.check" + (" + multivariate" if multivariate else ""),
                f"{r['rows']:,} ({r['sampled']:,} judged)",
                ",".join(r["sources"]),
                f"{fmt_s(r['seconds'])} (first call {fmt_s(r['cold'])}, which scores the "
                "training data)",
                f"{t:.2f}s (exit {p.returncode})",
                f"{r['peak'] / 2**30:.2f} GiB",
                f"{found}/5",
                str(false),
                r["prediction"],
            ]
        )
    return rows


def env_for(tool: str) -> dict[str, str]:
    env = base_env()
    env.update(
        NML_DISABLE_USAGE_LOGGING="1",
        DO_NOT_TRACK="1",
        EVIDENTLY_DISABLE_TELEMETRY="1",
    )
    return env


def run_worker(py: str, code: str, args: dict, tool: str) -> dict:
    wall, p = timed_run([py, "-c", code, json.dumps(args)], env=env_for(tool), check=True)
    result = parse_result(p.stdout)
    result["process"] = wall  # the whole process: start-up, imports, reading, the work
    return result


def keel_command(ref: Path, cur: Path) -> dict:
    """`keel drift REF CUR --json`, the whole command as a user runs it (exit 1: drift)."""
    wall, p = timed_run(
        [str(Path(sys.executable).with_name("keel")), "drift", str(ref), str(cur), "--json"],
        env=base_env(),
        check=False,
    )
    if p.returncode not in (0, 1):
        raise RuntimeError(f"keel drift exited {p.returncode}: {p.stderr.strip()[-300:]}")
    doc = json.loads(p.stdout)
    return {"seconds": wall, "process": wall, "flagged": doc["drifted_features"], "peak": 0}


def accuracy(flagged: list[str]) -> tuple[int, int]:
    return sum(c in flagged for c in DRIFTED), sum(c not in DRIFTED for c in flagged)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--tools", default="keel,evidently,nannyml")
    ap.add_argument("--seeds", type=int, default=9)
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Rounds: each round runs every tool once, in turn, so ratios pair run by run.",
    )
    ap.add_argument(
        "--live-only",
        action="store_true",
        help="Only the log-lake window (keel monitor) measurement.",
    )
    ap.add_argument(
        "--drift-only",
        action="store_true",
        help="Only the drift comparison (no ADWIN, no log-lake window).",
    )
    args = ap.parse_args()
    if args.live_only:
        print_live(live_window(1_000_000))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    tools = args.tools.split(",")
    pythons = {"keel": sys.executable, "keel+multivariate": sys.executable}
    if "evidently" in tools:
        pythons["evidently"] = str(ensure_venv("evidently", EVIDENTLY))
    if "nannyml" in tools:
        pythons["nannyml"] = str(ensure_venv("nannyml", NANNYML))
    workers = {
        "keel": KEEL_WORKER,
        "keel+multivariate": KEEL_WORKER,
        "evidently": EVIDENTLY_WORKER,
        "nannyml": NANNYML_WORKER,
    }
    files = {n: generate(n) for n in sizes}
    results: dict[tuple[str, int], list[dict]] = {}
    started = time.time()
    for round_ in range(args.repeat):
        for n in sizes:
            ref, cur = files[n]
            if "keel" in tools:
                log(f"[run {round_ + 1}/{args.repeat}] keel drift (the command) at {n:,} rows ...")
                with bench_lock():
                    results.setdefault(("keel drift (command)", n), []).append(
                        keel_command(ref, cur)
                    )
            for tool in [t for t in pythons if t.split("+")[0] in tools]:
                log(f"[run {round_ + 1}/{args.repeat}] {tool} at {n:,} rows ...")
                with bench_lock():
                    try:
                        result = run_worker(
                            pythons[tool],
                            workers[tool],
                            {
                                "mode": "drift",
                                "ref": str(ref),
                                "cur": str(cur),
                                "multivariate": tool == "keel+multivariate",
                            },
                            tool,
                        )
                    except Exception as exc:
                        log(f"[run] {tool} failed: {str(exc)[-600:]}")
                        result = {"error": str(exc).splitlines()[0]}
                results.setdefault((tool, n), []).append(result)
    if args.drift_only:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(started))
        print(f"### drift benchmark, {stamp}; took {time.time() - started:.0f}s\n")
        print(_drift_table(results))
        return
    with bench_lock():
        adwin = run_worker(
            sys.executable,
            ADWIN_WORKER,
            {"mode": "adwin", "n": 1_000_000, "change": 500_000, "seeds": args.seeds},
            "keel",
        )
    table = _drift_table(results)
    k, rv = adwin["keel"], adwin["river"]
    adwin_table = markdown_table(
        ["detector", "median delay", "false alarms", "missed", "elements/s"],
        [
            [
                name,
                str(s["median_delay"]),
                str(s["false_alarms"]),
                str(s["missed"]),
                f"{s['rate'] / 1e6:.1f}M",
            ]
            for name, s in (("keel ADWIN", k), ("river ADWIN (direct)", rv))
        ],
    )
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(started))
    print(f"### drift benchmark, {stamp}; took {time.time() - started:.0f}s\n")
    print(table)
    print(
        f"\nConcept drift: 1,000,000-element error stream, 10% -> 20% at 500,000, "
        f"{args.seeds} seeds\n"
    )
    print(adwin_table)
    print_live(live_window(1_000_000))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _spread(values: list[float], unit: str = "s") -> str:
    """The median, with the range when there are several runs."""
    fmt = fmt_s if unit == "s" else (lambda v: f"{v:.1f}x")
    text = fmt(_median(values))
    return text if len(values) < 2 else f"{text} ({fmt(min(values))}-{fmt(max(values))})"


def _paired(runs: list[dict], base: list[dict], key: str) -> list[float]:
    """This tool's figure over keel's, round by round (the same round's runs)."""
    return [
        r[key] / b[key]
        for r, b in zip(runs, base, strict=False)
        if "error" not in r and "error" not in b and b.get(key)
    ]


def _drift_table(results: dict[tuple[str, int], list[dict]]) -> str:
    rows = []
    for (tool, n), runs in results.items():
        ok = [r for r in runs if "error" not in r]
        if not ok:
            rows.append([tool, f"{n:,}", "failed", "", "", "", "", "", runs[0]["error"][:80]])
            continue
        found, false = accuracy(ok[-1]["flagged"])
        is_keel = tool.startswith("keel")
        drift_ratio = _paired(runs, results.get(("keel", n), []), "seconds")
        whole_ratio = _paired(runs, results.get(("keel drift (command)", n), []), "process")
        is_command = tool == "keel drift (command)"
        rows.append(
            [
                tool,
                f"{n:,}",
                "" if is_command else _spread([r["seconds"] for r in ok]),
                _spread([r["process"] for r in ok]),
                f"{max(r['peak'] for r in ok) / 2**30:.2f} GiB" if ok[-1]["peak"] else "",
                f"{found}/5",
                str(false),
                _spread(drift_ratio, "x") + " keel" if drift_ratio and not is_keel else "",
                _spread(whole_ratio, "x") + " `keel drift`" if whole_ratio and not is_keel else "",
            ]
        )
    return markdown_table(
        [
            "tool",
            "rows a side",
            "drift seconds (median)",
            "whole process (median)",
            "peak RSS",
            "found",
            "false alarms",
            "drift time, paired",
            "whole process, paired",
        ],
        rows,
    )


def print_live(rows: list[list[str]]) -> None:
    print(
        "\nLive window: 1,000,000 served predictions x 25 inputs in the log lake, judged against "
        "the stored profile of the model's training data (target < 5 s)\n"
    )
    print(
        markdown_table(
            [
                "call",
                "window rows",
                "reference",
                "seconds (read + judge)",
                "`keel monitor` wall",
                "peak RSS",
                "found",
                "false alarms",
                "prediction (later checks)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
