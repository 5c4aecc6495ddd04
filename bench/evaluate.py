#!/usr/bin/env python3
"""Evaluation benchmark: keel vs mlflow.models.evaluate, side by side, in one run.

    .venv/bin/python bench/evaluate.py [--quick] [--runs N] [--rows N] [--no-mlflow]

On the same classifier predictions (1,000,000 rows by default; --quick: 100,000):

  1. Point metrics: keel's metric set computed from (truth, decisions) vs
     `mlflow.models.evaluate` of a static dataset (a predictions column and
     a targets column, model_type="classifier", the default evaluator), which
     computes the same metrics and logs them to a run. keel is also timed with
     probabilities (adding AUC, log loss, Brier, calibration error).
     Target: keel at least 5x faster than MLflow.
  2. The whole `keel.evaluate` of a registered model on a DataFrame of the same
     size: predict_proba, every metric, value with a 1,000-resample bootstrap
     interval, the value-maximizing threshold, three slices and the report
     curves. Target: under 15 s.

Each measurement runs in a fresh subprocess of its tool's own virtualenv
(keel: this one; MLflow: bench/.venvs/mlflow, created if missing) and prints
one JSON line. Medians of N runs (default 3); ratios of medians, same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ensure_venv, log, markdown_table, median, print_table

MLFLOW_REQUIREMENTS = ["mlflow>=3,<4"]

MAKE_DATA = textwrap.dedent(
    """
    import numpy as np, pandas as pd, sys
    n, path = int(sys.argv[1]), sys.argv[2]
    rng = np.random.default_rng(7)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    region = rng.choice(["north", "south", "east", "west"], n)
    logit = 1.2 * x1 - 0.8 * x2 - 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    noisy = 1 / (1 + np.exp(-(logit + rng.normal(scale=0.5, size=n))))
    pd.DataFrame({"x1": x1, "x2": x2, "region": region, "target": y,
                  "prediction": (noisy >= 0.5).astype(int), "proba": noisy}).to_parquet(path)
    """
)

KEEL_POINTS = textwrap.dedent(
    """
    import json, sys, time
    import pandas as pd
    from keel.evaluation.metrics import compute_metrics
    df = pd.read_parquet(sys.argv[1])
    y, p, s = df["target"].to_numpy(), df["prediction"].to_numpy(), df["proba"].to_numpy()
    compute_metrics("classification", y[:1000], p[:1000], None)  # warm imports
    t = time.perf_counter(); same = compute_metrics("classification", y, p, None)
    t_same = time.perf_counter() - t
    t = time.perf_counter(); full = compute_metrics("classification", y, p, s)
    t_full = time.perf_counter() - t
    print(json.dumps({"same": t_same, "full": t_full, "accuracy": same["accuracy"], "f1": same["f1"]}))
    """
)

KEEL_EVALUATE = textwrap.dedent(
    """
    import json, sys, tempfile, time
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    import keel
    df = pd.read_parquet(sys.argv[1])
    ws = keel.init(tempfile.mkdtemp())
    feats = df[["x1", "x2"]]
    with keel.start_run(workspace=ws, capture_code=False) as run:
        run.log_model(LogisticRegression().fit(feats.head(50000), df["target"].head(50000)),
                      "m", input_example=feats.head(5))
    data = df[["x1", "x2", "region", "target"]]
    value = keel.outcomes.ValueMatrix(tp=120.0, fp=-15.0, fn=-80.0, tn=0.0)
    t = time.perf_counter()
    ev = keel.evaluate("m", data=data, target="target", outcome=value, threshold="optimize",
                       slices=["region"], resamples=1000, workspace=ws)
    elapsed = time.perf_counter() - t
    print(json.dumps({"evaluate": elapsed, "auc": ev.metrics["auc"], "value": ev.outcome.total,
                      "interval": ev.outcome.total_interval, "threshold": ev.threshold}))
    """
)

MLFLOW_POINTS = textwrap.dedent(
    """
    import json, os, sys, tempfile, time, warnings, logging
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import pandas as pd
    import mlflow
    root = tempfile.mkdtemp()
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    exp = mlflow.create_experiment("bench", artifact_location=f"{root}/artifacts")
    df = pd.read_parquet(sys.argv[1])[["target", "prediction"]]
    with mlflow.start_run(experiment_id=exp):
        t = time.perf_counter()
        result = mlflow.models.evaluate(data=df, predictions="prediction", targets="target",
                                        model_type="classifier", evaluators=["default"])
        elapsed = time.perf_counter() - t
    m = result.metrics
    print(json.dumps({"same": elapsed, "accuracy": m.get("accuracy_score"), "f1": m.get("f1_score"),
                      "metrics": sorted(m)}))
    """
)


def worker(python: str, code: str, *args: str) -> dict:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [python, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"worker failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--no-mlflow", action="store_true")
    args = ap.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    runs = args.runs or (1 if args.quick else 3)
    keel_py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="keel-bench-evaluate-"))
    data = work / "data.parquet"
    log(f"[data] {rows:,} rows -> {data}")
    subprocess.run([keel_py, "-c", MAKE_DATA, str(rows), str(data)], check=True)
    mlflow_py = None if args.no_mlflow else str(ensure_venv("mlflow", MLFLOW_REQUIREMENTS))
    keel_same, keel_full, keel_eval, ml_same = [], [], [], []
    last_eval: dict = {}
    for i in range(runs):
        log(f"[run {i + 1}/{runs}] keel points")
        k = worker(keel_py, KEEL_POINTS, str(data))
        keel_same.append(k["same"])
        keel_full.append(k["full"])
        log(f"[run {i + 1}/{runs}] keel evaluate")
        last_eval = worker(keel_py, KEEL_EVALUATE, str(data))
        keel_eval.append(last_eval["evaluate"])
        if mlflow_py:
            log(f"[run {i + 1}/{runs}] mlflow.models.evaluate")
            m = worker(mlflow_py, MLFLOW_POINTS, str(data))
            ml_same.append(m["same"])
            if (
                abs((m["accuracy"] or 0) - k["accuracy"]) > 1e-9
                or abs((m["f1"] or 0) - k["f1"]) > 1e-9
            ):
                raise RuntimeError(f"the tools disagree: keel {k}, mlflow {m}")
    ks, kf, ke = median(keel_same), median(keel_full), median(keel_eval)
    ms = median(ml_same) if ml_same else None
    ratio = ms / ks if ms else None
    rows_out = [
        [
            "1. point metrics (same set)",
            f"{ks * 1000:.0f} ms",
            f"{ms:.2f} s" if ms else "-",
            f"{ratio:.0f}x" if ratio else "-",
            ">= 5x: " + ("PASS" if ratio and ratio >= 5 else "MISS"),
        ],
        [
            "1b. keel, with probabilities (+AUC, log loss, Brier, ECE)",
            f"{kf * 1000:.0f} ms",
            "-",
            "-",
            "-",
        ],
        [
            "2. keel.evaluate: model, metrics, 1,000-resample value interval, threshold, slices",
            f"{ke:.2f} s",
            "-",
            "-",
            "< 15 s: " + ("PASS" if ke < 15 else "MISS"),
        ],
    ]
    headers = ["scenario", "keel", "MLflow", "MLflow/keel", "target"]
    print(f"\nEvaluation on {rows:,} rows, medians of {runs} run(s), ratios within this run:\n")
    print_table(headers, rows_out)
    print(
        f"\nkeel.evaluate result: AUC {last_eval['auc']:.4f}, value {last_eval['value']:,.0f} "
        f"(interval {last_eval['interval'][0]:,.0f} .. {last_eval['interval'][1]:,.0f}), "
        f"threshold {last_eval['threshold']:.3f}"
    )
    print("\n" + markdown_table(headers, rows_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
