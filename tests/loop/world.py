"""A served churn world for the loop, without a server: the monitor's world (churn@v1 trained
on customers@v1), a worse champion promoted over it, a retraining pipeline that registers
churn, and traffic rows written into the log lake as `keel serve` logs them, for the
champion and for a live deployment's challenger."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

import keel
from keel.store.logs import LogWriter
from keel.workspace import Workspace
from tests.monitor.live_world import FEATURES, MODEL, build, customers, log_outcomes

PIPELINE = '''
import keel
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from keel.pipeline import pipeline, step

FEATURES = ["tenure", "monthly", "plan", "region"]


@step
def load(data: str = "customers"):
    return keel.data.get(data).to_pandas()


@step
def train(load, c: float = 1.0):
    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"])], remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression(C=c, max_iter=500))
    return model.fit(load[FEATURES], load["churned"])


@step
def evaluate(train, load):
    return {"accuracy": float(train.score(load[FEATURES], load["churned"]))}


retrain = pipeline("churn-retrain", [load, train, evaluate], register="churn", target="churned")
'''


def loop_world(root: Path, db_url: str | None = None) -> Workspace:
    """churn@champion is v2, a model that learned the labels backwards; v1 is sound. With
    ``db_url`` the metadata store is that database (PostgreSQL)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from keel.registry.versions import promote

    if db_url is not None:
        (root / "ws" / ".keel").mkdir(parents=True)
        (root / "ws" / ".keel" / "config.toml").write_text(f'[metadata]\nurl = "{db_url}"\n')
    ws = build(root, n=2000)
    train = customers(2000, seed=1)
    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"])], remainder="passthrough"
    )
    backwards = make_pipeline(encode, LogisticRegression(max_iter=500))
    backwards.fit(train[FEATURES], 1 - train["churned"])
    with keel.start_run(workspace=ws, capture_code=False) as run:
        run.use("customers@v1")
        run.log_model(backwards, MODEL, input_example=train[FEATURES].head(5))
    promote(ws, MODEL, 2)
    (root / "pipeline.py").write_text(PIPELINE)
    return ws


def log_served(
    ws: Workspace,
    n: int,
    *,
    seed: int,
    arm: str = "champion",
    version: int = 2,
    deployment: str | None = None,
    errors: int = 0,
    start: float | None = None,
    outcomes: bool = True,
) -> list[str]:
    """``n`` served predictions of ``version`` in ``arm`` over the last minute (and ``errors``
    failed requests), with their outcomes when ``outcomes``; their prediction ids."""
    frame = customers(n, seed)
    model = keel.load_model(f"{MODEL}/v{version}", workspace=ws)
    proba = model.predict_proba(frame[FEATURES])[:, 1]
    span = 50.0
    if start is None and deployment is not None:  # a live deployment's rows: from now on
        start, span = time.time(), 0.1
    start = time.time() - 60 if start is None else start
    ts = start + np.linspace(0, span, n, endpoint=False)
    ids = [f"{arm[:2]}{seed:06x}{i:08x}" for i in range(n)]
    columns: dict[str, list[Any]] = {
        "ts": ts.tolist(),
        "request_id": [f"r-{arm}-{seed}-{i}" for i in range(n)],
        "prediction_id": ids,
        "version": [version] * n,
        "arm": [arm] * n,
        "served": [True] * n,
        "deployment": [deployment] * n,
        "latency_ms": [1.5] * n,
        "error": [None] * n,
        "key": [None] * n,
        "prediction": (proba >= 0.5).astype(float).tolist(),
        "label": [None] * n,
        "score": proba.tolist(),
    }
    for name in FEATURES:
        columns[f"input_{name}"] = frame[name].tolist()
    writer = LogWriter(ws.logs.root)
    writer.append("predictions", MODEL, columns)
    if errors:
        writer.append(
            "predictions",
            MODEL,
            {
                "ts": [start + span / 2] * errors,
                "request_id": [f"e-{arm}-{seed}-{i}" for i in range(errors)],
                "prediction_id": [None] * errors,
                "version": [version] * errors,
                "arm": [arm] * errors,
                "served": [True] * errors,
                "deployment": [deployment] * errors,
                "latency_ms": [2.0] * errors,
                "error": ["RuntimeError: boom"] * errors,
            },
        )
    writer.close()
    if outcomes:
        log_outcomes(ws, ids, frame["churned"].tolist(), at=start + span + 1)
    return ids
