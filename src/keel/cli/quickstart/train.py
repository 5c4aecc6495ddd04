"""Tracking, registry and evaluation chapters: train.py in a git repository of its own, two
tracked runs and a reproduction, promote and roll back, judged on value by the gate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from keel.cli.quickstart.story import Say

if TYPE_CHECKING:
    from rich.console import Console

    from keel.workspace import Workspace

__all__ = ["MODEL_MODULE", "TRAIN_SCRIPT", "evaluation_chapter", "registry_chapter", "tracking_chapter"]

MODEL_MODULE = '''\
"""The churn model: a logistic regression on three features (numpy only)."""
import numpy as np

import keel

FEATURES = ["tenure", "monthly_charges", "plan"]


def design(df):
    X = np.column_stack([df["tenure"] / 72, df["monthly_charges"] / 100, df["plan"] == "team"])
    return np.column_stack([np.ones(len(X)), X]).astype(float)


class ChurnModel(keel.PythonModel):
    classes_ = np.array([0, 1])

    def __init__(self, weights):
        self.weights = weights

    def predict_proba(self, df):
        p = 1 / (1 + np.exp(-design(df) @ self.weights))
        return np.column_stack([1 - p, p])

    def predict(self, df):
        return (self.predict_proba(df)[:, 1] >= 0.5).astype(int)
'''

TRAIN_SCRIPT = '''\
"""Churn model: logistic regression by gradient descent (numpy only), tracked by keel."""
import sys

import numpy as np

import keel
from churn_model import FEATURES, ChurnModel, design

lr = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
epochs = 60

with keel.start_run(name=f"logreg-lr{lr}", params={"lr": lr, "epochs": epochs}, seeds={"split": 7}) as run:
    df = run.use("churn-train").to_pandas()  # the training set: labels with billing features
    X = design(df)
    y = df["churned"].to_numpy(dtype=float)
    order = np.random.default_rng(7).permutation(len(y))
    train, test = order[: len(y) * 4 // 5], order[len(y) * 4 // 5 :]
    w = np.zeros(X.shape[1])
    for epoch in range(epochs):
        p = 1 / (1 + np.exp(-X[train] @ w))
        w -= lr * X[train].T @ (p - y[train]) / len(train)
        loss = -np.mean(y[train] * np.log(p + 1e-12) + (1 - y[train]) * np.log(1 - p + 1e-12))
        run.log_metric("loss", loss, step=epoch)
    score = X[test] @ w
    pos, neg = score[y[test] == 1], score[y[test] == 0]
    auc = float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())
    run.log_metrics({"auc": auc, "accuracy": float(((score > 0) == (y[test] == 1)).mean())})
    np.save("weights.npy", w)
    run.log_artifact("weights.npy")
    run.log_model(ChurnModel(w), "churn", input_example=df[FEATURES].head(5))
'''



def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "git",
            "-c",
            "user.name=keel quickstart",
            "-c",
            "user.email=quickstart@keel.invalid",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def tracking_chapter(
    say: Say, out: Console, ws: Workspace
) -> tuple[str, str] | None:
    """Two tracked runs and a reproduction; returns (worse run id, better run id)."""
    from keel.track.reproduce import reproduce
    from keel.track.search import search_runs

    say(
        "Track training runs",
        "train.py trains on the training set churn-train inside keel.start_run(): keel records "
        "the commit, the uncommitted diff, the data version, params, every epoch's loss, and "
        "the model.",
    )
    if shutil.which("git") is None:
        out.print("  (git is not installed: skipping the tracking chapter)")
        return None
    Path("train.py").write_text(TRAIN_SCRIPT)
    Path("churn_model.py").write_text(MODEL_MODULE)
    Path(".gitignore").write_text(".keel/\ndata/\nexports/\nrestored/\n*.npy\n__pycache__/\n")
    _git("init", "-q")  # its own repository, never one the folder sits in
    _git("add", "train.py", "churn_model.py", "features.py", ".gitignore")
    _git("commit", "-q", "-m", "train.py")
    with Path("train.py").open("a") as fh:  # an uncommitted change: still reproducible
        fh.write("# tried a larger learning rate too\n")
    import datetime as dt

    since = dt.datetime.now(dt.UTC).isoformat()
    for lr in ("0.5", "2.0"):
        subprocess.run([sys.executable, "train.py", lr], check=True)
    page = search_runs(ws, f'params.epochs = 60 and created >= "{since}"', sort="-metrics.auc")
    for r in page.runs:
        out.print(
            f"  {r.id[:8]}  {r.name:<14} auc {r.metrics['auc']:.4f}  "
            f"final loss {r.metrics['loss']:.4f}"
        )
    best = page.runs[0]
    say(
        "Reproduce the best run",
        f"`keel reproduce {best.id[:8]}` checks out the commit, applies the recorded diff, "
        "restores the data version, re-runs train.py and compares.",
    )
    result = reproduce(ws, best.id, output=subprocess.DEVNULL)
    out.print(
        f"  {result.verdict}: run {best.id[:8]} -> {(result.reproduction or '-')[:8]} "
        "(same metrics, same model bytes)"
    )
    if result.reproduction:
        from keel.track.records import get_run

        made = get_run(ws, result.reproduction).models
        if made and not made[0]["registered"]:
            out.print(
                f"  its model is recorded with the reproduction, not registered: the registry "
                f"keeps one {made[0]['name']} version per training (--register adds one)"
            )
    return page.runs[-1].id, best.id


def registry_chapter(
    say: Say, out: Console, ws: Workspace, runs: tuple[str, str] | None
) -> None:
    import os

    from keel.registry import load_model
    from keel.registry.lineage import lineage
    from keel.registry.versions import model_versions_of, promote, rollback

    if runs is None:
        return
    by_run = {v.run_id: v.number for v in model_versions_of(ws, "churn")}
    first, second = by_run[runs[0]], by_run[runs[1]]
    say(
        "Register, promote, roll back",
        f"Each run registered its model (churn/v{first}, churn/v{second}). `keel models "
        "promote` points churn@champion at one; `keel models rollback` moves it back in an "
        "instant. Every move is an event: who, when, from, to, why.",
    )
    promote(ws, "churn", first, "first model")
    promote(ws, "churn", second, "higher AUC on churn-train")
    sys.path.insert(0, os.getcwd())  # the model's class lives in churn_model.py, here
    champion = load_model("churn@champion", workspace=ws)
    customer = [{"tenure": 2, "monthly_charges": 95.0, "plan": "team"}]
    out.print(
        f"  champion is {champion.ref}; a new team-plan customer -> churn={champion.predict(customer)[0]}"
    )
    event = rollback(ws, "churn", message="rolled back in the quickstart")
    out.print(f"  rolled back: churn@champion v{event.from_target} -> v{event.to_target}")
    graph = lineage(ws, "churn@champion")
    kinds = sorted({n["kind"] for n in graph["nodes"]})
    out.print(f"  lineage of churn@champion: {', '.join(kinds)} (keel lineage churn@champion)")


def evaluation_chapter(
    say: Say, out: Console, ws: Workspace, runs: tuple[str, str] | None
) -> None:
    from keel.evaluation import evaluate, gate
    from keel.evaluation.outcomes import ValueMatrix
    from keel.evaluation.report import write_report
    from keel.registry.versions import model_versions_of, promote

    if runs is None:
        return
    by_run = {v.run_id: v.number for v in model_versions_of(ws, "churn")}
    challenger = f"churn/v{by_run[runs[1]]}"
    value = ValueMatrix(tp=120.0, fp=-15.0, fn=-80.0, tn=0.0)
    say(
        "Judge on value, not accuracy",
        "A retained churner is worth 120, a needless retention offer costs 15, a missed churner "
        "80. `keel evaluate` scores the challenger on last month's export (churn@v1), which it "
        "never trained on, and finds the threshold that earns the most.",
    )
    ev = evaluate(
        challenger,
        data="churn@v1",
        target="churned",
        outcome=value,
        slices=["plan"],
        threshold="optimize",
        workspace=ws,
    )
    o = ev.outcome
    assert o is not None
    out.print(
        f"  {challenger}: AUC {ev.metrics['auc']:.3f}; value {o.total:,.0f} "
        f"(95% interval {o.total_interval[0]:,.0f} .. {o.total_interval[1]:,.0f}) at threshold "
        f"{ev.threshold:.2f}, not 0.5"
    )
    write_report("eval.html", ev)
    say(
        "The gate decides",
        "`keel gate` compares the challenger with the champion on the same rows (a paired test), "
        "and promotes only if it is better by more than the noise.",
    )
    decision = gate(
        challenger,
        against="churn@champion",
        data="churn@v1",
        target="churned",
        outcome=value,
        workspace=ws,
    )
    out.print(f"  {'PROMOTE' if decision.promote else 'REJECT'}: {decision.reasons[0]}")
    if decision.promote:
        promote(ws, "churn", by_run[runs[1]], "passed the gate on value")
        out.print(f"  churn@champion -> {challenger}; report: eval.html")
