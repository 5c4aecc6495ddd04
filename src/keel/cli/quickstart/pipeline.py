"""The pipeline chapter: retraining churn as plain-function steps, then an unchanged rerun."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from keel.cli.quickstart.story import Say

if TYPE_CHECKING:
    from rich.console import Console

    from keel.workspace import Workspace

__all__ = ["PIPELINE_MODULE", "pipeline_chapter"]

PIPELINE_MODULE = '''\
"""Retraining churn as a pipeline: each step a plain function, each a keel run."""
import numpy as np

import keel
from churn_model import FEATURES, ChurnModel, design
from keel.pipeline import pipeline, step


@step
def load(data: str = "churn-labels@v1", features: str = "billing@v1,spend@v1,bill_change@v1"):
    """The labels with their features as they were known: a training set (a dataset version,
    the same one when nothing changed), used by the run, so the model's lineage names it,
    its feature versions and their sources. Pinned versions: a rerun means the same rows."""
    built = keel.features.training_set(data, features.split(","), name="churn-train")
    used = keel.active_run().use(built)
    return used.to_pandas()[[*FEATURES, "churned"]]  # what the model takes


@step
def split(load, seed: int = 7):
    order = np.random.default_rng(seed).permutation(len(load))
    cut = len(load) * 4 // 5
    return load.iloc[order[:cut]], load.iloc[order[cut:]]


@step
def train(split, lr: float = 0.5, epochs: int = 60):
    fit, _ = split
    X, y = design(fit), fit["churned"].to_numpy(dtype=float)
    w = np.zeros(X.shape[1])
    for _ in range(epochs):
        w -= lr * X.T @ (1 / (1 + np.exp(-X @ w)) - y) / len(y)
    return ChurnModel(w)


@step
def evaluate(train, split):
    _, test = split
    score = train.predict_proba(test[FEATURES])[:, 1]
    y = test["churned"].to_numpy()
    pos, neg = score[y == 1], score[y == 0]
    return {"auc": float((pos[:, None] > neg[None, :]).mean())}


retrain = pipeline("churn-retrain", [load, split, train, evaluate], register="churn", target="churned")
'''



def pipeline_chapter(
    say: Say, out: Console, ws: Workspace, runs: tuple[str, str] | None
) -> None:
    """Retraining as a pipeline: every step a run, then an unchanged rerun that reuses all."""
    if runs is None:  # the model module comes with the tracking chapter (git)
        return
    from keel.pipeline.loading import load_pipeline

    say(
        "Retrain as a pipeline",
        "When drift says retrain, retraining is `keel run pipeline.py:retrain`: plain-function "
        "steps (load the training set, split, train, evaluate), each recorded as a run, each "
        "output kept as an object, the model registered with its metrics. Unchanged steps are "
        "reused.",
    )
    Path("pipeline.py").write_text(PIPELINE_MODULE)
    retrain = load_pipeline("pipeline.py:retrain")
    first = retrain.run(workspace=ws)
    steps = ", ".join(f"{s.name} {s.status}" for s in first.steps)
    out.print(f"  run {first.run[:8]}: {steps} in {first.seconds:.2f} s -> {first.model}")
    again = retrain.run(workspace=ws)
    reused = sum(s.cached for s in again.steps)
    out.print(
        f"  again, nothing changed: {reused} of {len(again.steps)} steps reused in "
        f"{again.seconds * 1000:.0f} ms, the same model ({again.model})"
    )
    explained = retrain.run({"lr": "0.25"}, workspace=ws, explain=True)
    why = "; ".join(f"{s.name}: {s.error}" for s in explained.steps if not s.cached)
    out.print(f"  --param lr=0.25 --explain: would rerun {why}")
