"""A served world without a server: a churn model trained on a recorded dataset version, and
prediction rows (the columns `keel serve` logs) written straight into the log lake."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import keel
from keel.store.logs import LogWriter
from keel.workspace import Workspace

FEATURES = ["tenure", "monthly", "plan", "region"]
MODEL = "churn"


def customers(n: int, seed: int, drift: bool = False) -> pd.DataFrame:
    """Customers with a churn label; ``drift`` raises monthly charges and makes "max" common."""
    rng = np.random.default_rng(seed)
    plan_p = [0.2, 0.3, 0.5] if drift else [0.5, 0.35, 0.15]
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n),
            "monthly": rng.normal(95 if drift else 70, 20, n).round(2),
            "plan": rng.choice(["basic", "pro", "max"], n, p=plan_p),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    logit = 1.0 - 0.08 * frame.tenure + 0.03 * (frame.monthly - 70)
    frame["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def build(root: Path, n: int = 4000) -> Workspace:
    """A workspace whose churn@champion (v1) was trained on customers@v1 (recorded by run.use)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from keel.registry.versions import promote

    ws = keel.init(root / "ws")
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    customers(n, seed=1).to_csv(data / "customers.csv", index=False)
    keel.data.add(data / "customers.csv", name="customers", workspace=ws)
    with keel.start_run(workspace=ws, capture_code=False) as run:
        train = run.use("customers@v1").to_pandas()
        encode = ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"])],
            remainder="passthrough",
        )
        model = make_pipeline(encode, LogisticRegression(max_iter=500))
        model.fit(train[FEATURES], train["churned"])
        run.log_model(model, MODEL, input_example=train[FEATURES].head(5))
    promote(ws, MODEL, 1)
    return ws


@dataclass
class Traffic:
    ids: list[str]
    truth: list[int]
    frame: pd.DataFrame = field(repr=False)


def log_traffic(
    ws: Workspace,
    n: int,
    *,
    start: float,
    seconds: float = 60.0,
    seed: int = 2,
    drift: bool = False,
    errors: int = 0,
    shadow: int = 0,
    scores: Any = None,
    extra_input: str | None = None,
) -> Traffic:
    """``n`` served predictions spread over ``seconds`` from ``start`` (plus ``errors`` failed
    requests and ``shadow`` unserved rows that the monitor must ignore), as the server logs them."""
    frame = customers(n, seed, drift)
    model = keel.load_model(f"{MODEL}@champion", workspace=ws)
    proba = model.predict_proba(frame[FEATURES])[:, 1]
    if scores is None:
        scores = proba
    ts = start + np.linspace(0, seconds, n, endpoint=False)
    ids = [f"{seed:08x}{i:014x}-0" for i in range(n)]
    columns: dict[str, list[Any]] = {
        "ts": ts.tolist(),
        "request_id": [f"r{seed}-{i}" for i in range(n)],
        "prediction_id": ids,
        "version": [1] * n,
        "arm": ["champion"] * n,
        "served": [True] * n,
        "deployment": [None] * n,
        "latency_ms": [1.5] * n,
        "error": [None] * n,
        "key": [None] * n,
        "prediction": (proba >= 0.5).astype(float).tolist(),
        "label": [None] * n,
        "score": [None if s is None else float(s) for s in scores],  # None: not logged
    }
    for name in FEATURES:
        columns[f"input_{name}"] = frame[name].tolist()
    if extra_input:  # e.g. a sticky routing key a deployment asked for
        columns[f"input_{extra_input}"] = [f"k{i}" for i in range(n)]
    writer = LogWriter(ws.logs.root)
    writer.append("predictions", MODEL, columns)
    if shadow:  # a challenger's shadow rows: wildly different inputs, not served
        bad = {k: v[:shadow] for k, v in columns.items()}
        bad["served"] = [False] * shadow
        bad["arm"] = ["challenger"] * shadow
        bad["input_monthly"] = [1e6] * shadow
        bad["prediction_id"] = [f"s{i}" for i in range(shadow)]
        writer.append("predictions", MODEL, bad)
    if errors:
        writer.append(
            "predictions",
            MODEL,
            {
                "ts": [start + seconds / 2] * errors,
                "request_id": [f"e{i}" for i in range(errors)],
                "prediction_id": [None] * errors,
                "version": [1] * errors,
                "arm": ["champion"] * errors,
                "served": [True] * errors,
                "deployment": [None] * errors,
                "latency_ms": [2.0] * errors,
                "error": ["RuntimeError: boom"] * errors,
            },
        )
    writer.close()
    return Traffic(ids, frame["churned"].tolist(), frame)


def log_outcomes(ws: Workspace, ids: list[str], outcomes: list[int], at: float) -> None:
    writer = LogWriter(ws.logs.root)
    n = len(ids)
    writer.append(
        "outcomes",
        MODEL,
        {"ts": [at] * n, "prediction_id": ids, "outcome": outcomes, "outcome_label": [None] * n},
    )
    writer.close()


@dataclass
class Hook:
    """A webhook receiver on 127.0.0.1: records each POST; ``delay`` makes it slow."""

    url: str
    received: list[dict[str, Any]]
    hits: list[float]


@contextmanager
def webhook(delay: float = 0.0, status: int = 200) -> Iterator[Hook]:
    import json

    received: list[dict[str, Any]] = []
    hits: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(time.monotonic())
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if delay:
                time.sleep(delay)
            received.append(json.loads(body))
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:  # the client gave up (timed out) first
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Hook(f"http://127.0.0.1:{server.server_address[1]}/hook", received, hits)
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
