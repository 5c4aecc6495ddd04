#!/usr/bin/env python3
"""Start-up benchmark: `keel evaluate`, `keel gate` and `keel drift` on a 1,000-row table,
from process start, beside the same Python call and the tools a user would run instead.

    .venv/bin/python bench/startup.py [--runs N] [--no-anchors] [--only evaluate,gate,drift]

One workspace: a dataset `churn` (train.csv) and `holdout` (test.csv, current.csv: the
spend of the current month is shifted), 1,000 rows each; two scikit-learn logistic
regressions (churn/v1, churn/v2) trained on churn@v1 by runs that used it. Per command:

  keel CLI       the whole `keel …` process, wall clock, as a shell script or CI pays it
  Python process `python -c "import keel; keel.evaluate(…)"`: the same work, whole process
  Python call    the call inside a process that made it once already (imports done)
  floor          `python -c "import …"` of what the work cannot do without: pandas and
                 the model's scikit-learn modules for a model; numpy and pyarrow for drift
  anchor         the whole process of the tool a user would pick instead, on the same rows:
                 `mlflow.models.evaluate` of the same model registered in MLflow (MLflow
                 3, its default classifier evaluator), Evidently's DataDriftPreset on the
                 same two tables. Neither has a gate.

Processes alternate (CLI, Python process, anchor; then again), N runs each (default 7).
Medians; ratios are medians of the run-by-run ratios. Target (issue 29): under 1 s from
process start. The floor says how far from it any tool on the same libraries could get.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_lock, drop_tree, ensure_venv, log, markdown_table, median, print_table

MLFLOW = ["mlflow>=3,<4"]  # the same list as bench/evaluate.py: one shared venv
EVIDENTLY = ["evidently==0.7.23", "pandas<3", "pyarrow"]  # as bench/monitor.py
FEATURES = ["tenure", "spend", "calls"]
VALUE = "tp=120,fp=-15,fn=-80,tn=0"

MAKE_DATA = textwrap.dedent(
    """
    import numpy as np, pandas as pd, sys
    from pathlib import Path
    root = Path(sys.argv[1])
    rng = np.random.default_rng(7)
    def month(n, shift):
        df = pd.DataFrame({"tenure": rng.integers(1, 72, n), "spend": rng.normal(50 + shift, 10, n),
                           "calls": rng.poisson(3, n), "plan": rng.choice(["basic", "pro"], n)})
        logit = 0.12 * (df.spend - 50) - 0.03 * df.tenure + 0.3 * df.calls - 0.5
        df["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        return df
    for folder, files in {"churn": {"train.csv": 0.0}, "holdout": {"test.csv": 0.0, "current.csv": 8.0}}.items():
        (root / folder).mkdir(parents=True)
        for name, shift in files.items():
            month(1000, shift).to_csv(root / folder / name, index=False)
    """
)

KEEL_SETUP = textwrap.dedent(
    f"""
    import sys, pandas as pd, keel
    from sklearn.linear_model import LogisticRegression
    root = sys.argv[1]
    ws = keel.init(root + "/ws")
    keel.data.add(root + "/churn", name="churn", workspace=ws)
    keel.data.add(root + "/holdout", name="holdout", workspace=ws)
    train = pd.read_csv(root + "/churn/train.csv")
    x = train[{FEATURES!r}]
    for c in (1.0, 0.001):
        with keel.start_run(workspace=ws, capture_code=False) as run:
            run.use("churn@v1")
            run.log_model(LogisticRegression(C=c).fit(x, train.churned), "churn", input_example=x.head(5))
    """
)

# The Python call of each command: made twice in one process; the process is timed whole.
KEEL_CALLS = {
    "evaluate": "keel.evaluate('churn/v1', data='holdout@v1:test.csv', target='churned', "
    "outcome=keel.outcomes.ValueMatrix(tp=120.0, fp=-15.0, fn=-80.0, tn=0.0))",
    "gate": "keel.gate('churn/v2', against='churn/v1', data='holdout@v1:test.csv', "
    "target='churned', outcome=keel.outcomes.ValueMatrix(tp=120.0, fp=-15.0, fn=-80.0, tn=0.0))",
    "drift": "keel.monitor.drift('churn@v1:train.csv', 'holdout@v1:current.csv')",
    "drift-model": "keel.monitor.drift('churn/v1', 'holdout@v1:current.csv')",
}
KEEL_CLI = {
    "evaluate": [
        "evaluate", "churn/v1", "--data", "holdout@v1:test.csv", "--target", "churned",
        "--value", VALUE, "--json",
    ],
    "gate": [
        "gate", "churn/v2", "--against", "churn/v1", "--data", "holdout@v1:test.csv",
        "--target", "churned", "--value", VALUE, "--json",
    ],
    "drift": ["drift", "churn@v1:train.csv", "holdout@v1:current.csv", "--json"],
    "drift-model": ["drift", "churn/v1", "holdout@v1:current.csv", "--json"],
}  # fmt: skip
KEEL_API = textwrap.dedent(
    """
    import json, sys, time, warnings
    warnings.simplefilter("ignore")
    import keel
    t = time.perf_counter(); first = CALL; t_first = time.perf_counter() - t
    t = time.perf_counter(); CALL; t_warm = time.perf_counter() - t
    print(json.dumps({"first": t_first, "warm": t_warm}))
    """
)
LABELS = {
    "evaluate": "keel evaluate (value, 1,000 resamples)",
    "gate": "keel gate (two models, paired test)",
    "drift": "keel drift (two files of dataset versions)",
    "drift-model": "keel drift (a model's training data)",
}
FLOORS = {
    "evaluate": "import pandas, sklearn.linear_model, sklearn.metrics",
    "gate": "import pandas, sklearn.linear_model, sklearn.metrics",
    "drift": "import numpy, pyarrow.csv",
    "drift-model": "import numpy, pyarrow.csv",
}

MLFLOW_SETUP = textwrap.dedent(
    f"""
    import os, sys, warnings, logging
    warnings.filterwarnings("ignore"); logging.disable(logging.WARNING)
    import pandas as pd, mlflow
    from sklearn.linear_model import LogisticRegression
    root = sys.argv[1]
    mlflow.set_tracking_uri(f"sqlite:///{{root}}/mlflow.db")
    exp = mlflow.create_experiment("startup", artifact_location=f"{{root}}/mlartifacts")
    train = pd.read_csv(root + "/churn/train.csv")
    x = train[{FEATURES!r}]
    with mlflow.start_run(experiment_id=exp):
        mlflow.sklearn.log_model(LogisticRegression().fit(x, train.churned), name="model",
                                 registered_model_name="churn", input_example=x.head(5))
    """
)
MLFLOW_EVALUATE = textwrap.dedent(
    f"""
    import sys, warnings, logging
    warnings.filterwarnings("ignore"); logging.disable(logging.WARNING)
    import pandas as pd, mlflow
    root = sys.argv[1]
    mlflow.set_tracking_uri(f"sqlite:///{{root}}/mlflow.db")
    test = pd.read_csv(root + "/holdout/test.csv")[{FEATURES!r} + ["churned"]]
    exp = mlflow.get_experiment_by_name("startup").experiment_id
    with mlflow.start_run(experiment_id=exp):
        result = mlflow.models.evaluate("models:/churn/1", data=test, targets="churned",
                                        model_type="classifier", evaluators=["default"])
    assert "roc_auc" in result.metrics, sorted(result.metrics)
    """
)
EVIDENTLY_DRIFT = textwrap.dedent(
    """
    import sys, warnings
    warnings.filterwarnings("ignore")
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset
    root = sys.argv[1]
    ref = pd.read_csv(root + "/churn/train.csv"); cur = pd.read_csv(root + "/holdout/current.csv")
    Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref).dict()
    """
)


def env() -> dict[str, str]:
    return {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}


def timed(
    cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0,), src: str | None = None
) -> tuple[float, str]:
    """Seconds of the whole process; ``src``: run keel from that source tree instead."""
    environ = env() if src is None else {**env(), "PYTHONPATH": src}
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=environ, check=False)
    elapsed = time.perf_counter() - t
    if out.returncode not in ok:
        raise RuntimeError(f"{' '.join(cmd[:4])}… exited {out.returncode}: {out.stderr[-1500:]}")
    return elapsed, out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-anchors", action="store_true", help="keel only (no MLflow, Evidently)")
    ap.add_argument("--only", default=",".join(KEEL_CLI), help="commands: evaluate,gate,drift,…")
    ap.add_argument(
        "--before",
        metavar="SRC",
        help="also time the CLI of another keel source tree (a checkout's src/), in turn with "
        "this one: evaluate and gate (`git worktree add /tmp/old COMMIT`, then /tmp/old/src)",
    )
    args = ap.parse_args()
    python = sys.executable
    keel_cli = str(Path(python).parent / "keel")
    work = Path(tempfile.mkdtemp(prefix="keel-bench-startup-"))
    try:
        with bench_lock():
            return _run(args, python, keel_cli, work)
    finally:
        drop_tree(work)


def _run(args: argparse.Namespace, python: str, keel_cli: str, work: Path) -> int:
    log(f"[setup] data and workspace in {work}")
    subprocess.run([python, "-c", MAKE_DATA, str(work)], check=True)
    subprocess.run([python, "-c", KEEL_SETUP, str(work)], check=True, env=env())
    ws = work / "ws"
    anchors: dict[str, tuple[str, str]] = {}
    if not args.no_anchors:
        mlflow_py = str(ensure_venv("mlflow", MLFLOW))
        subprocess.run([mlflow_py, "-c", MLFLOW_SETUP, str(work)], check=True, env=env())
        anchors["evaluate"] = (mlflow_py, MLFLOW_EVALUATE)
        anchors["drift"] = (str(ensure_venv("evidently", EVIDENTLY)), EVIDENTLY_DRIFT)
    results: dict[str, dict[str, list[float]]] = {}
    only = args.only.split(",")
    if unknown := set(only) - set(KEEL_CLI):
        raise SystemExit(f"--only: unknown {sorted(unknown)}; expected some of {list(KEEL_CLI)}")
    for name, cli_args in KEEL_CLI.items():
        if name not in only:
            continue
        r: dict[str, list[float]] = {
            k: [] for k in ("cli", "proc", "first", "warm", "floor", "anchor", "before")
        }
        api = KEEL_API.replace("CALL", KEEL_CALLS[name])
        for i in range(args.runs + 1):  # the first round warms the page cache: not counted
            log(f"[{name}] round {i}/{args.runs}")
            cli, _ = timed([keel_cli, *cli_args], ws, ok=(0, 1))  # 1: reject, drift
            proc, out = timed([python, "-c", api], ws)
            floor, _ = timed([python, "-c", FLOORS[name]], ws)
            anchor = None
            if name in anchors:
                anchor, _ = timed([anchors[name][0], "-c", anchors[name][1], str(work)], work)
            before = None
            if args.before and name in ("evaluate", "gate"):
                before, _ = timed([keel_cli, *cli_args], ws, ok=(0, 1), src=args.before)
            if i == 0:
                continue
            doc = json.loads(out.strip().splitlines()[-1])
            for key, value in [("cli", cli), ("proc", proc), ("first", doc["first"]),
                               ("warm", doc["warm"]), ("floor", floor), ("anchor", anchor), ("before", before)]:  # fmt: skip
                if value is not None:
                    r[key].append(value)
        results[name] = r
    rows = []
    for name, r in results.items():
        cli = median(r["cli"])
        per_run = [c / p for c, p in zip(r["cli"], r["proc"], strict=True)]
        anchor = median(r["anchor"]) if r["anchor"] else None
        anchor_ratio = (
            median([a / c for a, c in zip(r["anchor"], r["cli"], strict=True)]) if anchor else None
        )
        rows.append(
            [
                LABELS[name],
                f"{cli:.2f} s",
                f"{median(r['proc']):.2f} s ({median(per_run):.2f}x)",
                f"{median(r['first']) * 1000:.0f} / {median(r['warm']) * 1000:.0f} ms",
                f"{median(r['floor']):.2f} s",
                f"{cli - median(r['floor']):.2f} s",
                f"{anchor:.2f} s ({anchor_ratio:.1f}x)" if anchor and anchor_ratio else "-",
                "< 1 s: " + ("PASS" if cli < 1.0 else "MISS"),
            ]
        )
        if args.before:
            before_ratio = [b / c for b, c in zip(r["before"], r["cli"], strict=False)]
            rows[-1].insert(
                2,
                f"{median(r['before']):.2f} s ({median(before_ratio):.2f}x)"
                if r["before"]
                else "-",
            )
    headers = [
        "command",
        "keel CLI",
        *(["before (it/CLI)"] if args.before else []),
        "Python process (CLI/it)",
        "Python call first / warm",
        "import floor",
        "CLI - floor",
        "anchor process (it/CLI)",
        "target",
    ]
    print(f"\n1,000-row tables, medians of {args.runs} runs, ratios within this run:\n")
    print_table(headers, rows)
    print("\n" + markdown_table(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
