"""The loop: trigger to promotion, by phase, and breach to rollback, on a live `keel serve`.

- **Trigger to promoted** (``--rounds``, default 3, each in a fresh workspace): a churn
  model trained by the quickstart's pipeline on one month and promoted; the next month
  (bills 25 higher, long-standing customers now leave) served through a live server with
  its outcomes; then `keel watch --once` in process with traffic flowing: the drift
  trigger, retraining on the new export, the gate on recent labelled traffic, a canary of
  3 steps (0.25, 0.5, 1.0; 50 requests each), promotion. Each phase's time is read from
  the loop's own events.
- **Breach to rollback** (``--breaches``, default 20): a canary of a challenger that
  turns 40 ms slower on a signal, under steady load, with a p99 latency guardrail of
  25 ms over at least 40 requests. The breach is computable at the first answer after
  which the challenger's requests are 40 or more and their p99 (as the client saw it)
  is over 25 ms; the rollback is the deployment event the server wrote.

Flagger and Argo Rollouts need Kubernetes, which this machine does not run: their
figures are their documented defaults (judged every interval × failure threshold,
minutes), not measured here.

    .venv/bin/python bench/loop.py [--rounds 3] [--breaches 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_lock, log, markdown_table

SLOW_MODEL = '''
import os, time
from churn_model import ChurnModel


class FlagSlow(ChurnModel):
    """As the champion, 40 ms slower while the file FLAG exists."""

    def predict_proba(self, df):
        if os.path.exists(FLAG):
            time.sleep(0.04)
        return super().predict_proba(df)
'''

POLICY = """
[trigger]
drift = true
window = "WINDOW"
cooldown = "0"

[retrain]
pipeline = "pipeline.py:retrain"
params = { data = "churn@v2", lr = 2.0, epochs = 400 }

[rollout]
steps = [0.25, 0.5, 1.0]
min_requests = 50
min_duration = "0"
guardrails = { max_error_rate = 0.05, min_requests = 20 }
"""


class Traffic:
    """Threads posting single-row predictions (with their outcomes) until stopped."""

    def __init__(self, port: int, rows: list[dict[str, Any]], threads: int = 2) -> None:
        self.port, self.rows, self.threads = port, rows, threads
        self.answers: list[tuple[float, float, str]] = []  # start, end, model
        self.failures = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def _run(self, offset: int) -> None:
        from keel.cli.quickstart.serve import Client

        client = Client(self.port)
        i = offset
        feedback = []
        while not self._stop.is_set():
            row = self.rows[i % len(self.rows)]
            i += self.threads
            record = {f: row[f] for f in ("tenure", "monthly_charges", "plan")}
            began = time.time()
            try:
                answer = client.post("/predict", {"inputs": [record]})
            except Exception:  # counted: a failed request
                with self._lock:
                    self.failures += 1
                continue
            with self._lock:
                self.answers.append((began, time.time(), str(answer["model"])))
            feedback.append({"prediction_id": answer["prediction_ids"][0], "outcome": row["churned"]})
            if len(feedback) >= 20:
                client.post("/feedback", {"outcomes": feedback})
                feedback = []

    def __enter__(self) -> Traffic:
        self._stop.clear()
        self._workers = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(self.threads)
        ]
        for t in self._workers:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(timeout=30)

    def snapshot(self) -> list[tuple[float, float, str]]:
        with self._lock:
            return sorted(self.answers, key=lambda a: a[1])


def _world(root: Path) -> tuple[Any, list[dict[str, Any]], Any]:
    """A workspace whose champion the quickstart's pipeline trained on churn@v1, and churn@v2,
    the next month, recorded; the next month's rows; the champion's model object."""
    import pyarrow.csv as pacsv

    import keel
    from keel.cli.quickstart.data import churn_table
    from keel.cli.quickstart.pipeline import PIPELINE_MODULE
    from keel.cli.quickstart.train import MODEL_MODULE
    from keel.pipeline.loading import load_pipeline
    from keel.registry.versions import promote

    root.mkdir(parents=True, exist_ok=True)
    os.chdir(root)
    ws = keel.init(root)
    (root / "data").mkdir()
    churn_table(root / "data" / "customers.csv", 4000, seed=1)
    keel.data.add(root / "data", name="churn", workspace=ws)
    (root / "churn_model.py").write_text(MODEL_MODULE)
    (root / "pipeline.py").write_text(PIPELINE_MODULE)
    first = load_pipeline("pipeline.py:retrain").run(
        {"data": "churn@v1", "lr": 2.0, "epochs": 400}, workspace=ws
    )
    assert first.model is not None, first.error
    promote(ws, "churn", int(first.model.rsplit("/v", 1)[1]))
    churn_table(
        root / "data" / "customers.csv", 6000, seed=3, shift=25.0, team_share=0.4, tenure_effect=0.03
    )
    keel.data.add(root / "data", name="churn", workspace=ws)
    rows = pacsv.read_csv(str(root / "data" / "customers.csv")).to_pylist()
    return ws, rows, first.output("train")


def promote_round(root: Path) -> dict[str, float]:
    """Trigger to promoted, in a fresh workspace; each phase's seconds."""
    from keel.cli.quickstart.serve import free_port, start_server, stop_server
    from keel.loop.policy import load_policy
    from keel.loop.state import events_of
    from keel.loop.watch import watch

    ws, month, _ = _world(root)
    port = free_port()
    server, _ = start_server(port)
    try:
        traffic = Traffic(port, month)
        began = time.time()
        with traffic:
            while len(traffic.answers) < 600:
                time.sleep(0.05)
        time.sleep(1.5)  # one flush of the prediction log
        window = f"{int(time.time() - began) + 3}s"
        (root / "loop.toml").write_text(POLICY.replace("WINDOW", window))
        policy = load_policy(root / "loop.toml")
        with traffic:
            start = time.time()
            result = watch(ws, "churn", policy, once=True, poll=0.1)
            end = time.time()
        assert result.attempt is not None and result.attempt.state == "promoted", result.to_dict()
        at = {e.state: e.at for e in events_of(ws, "churn", attempt=result.attempt.id)}
        return {
            "trigger": at["triggered"] - start,
            "training": at["gating"] - at["training"],
            "gate": at["rolling_out"] - at["gating"],
            "rollout": at["promoted"] - at["rolling_out"],
            "total": end - start,
            "failures": float(traffic.failures),
        }
    finally:
        stop_server(server)
        ws.close()


def breaches(root: Path, count: int) -> list[dict[str, float]]:
    """``count`` canaries of a challenger that turns slow on a signal; each one's breach
    computable time, the server's rollback, and the last challenger answer."""
    import numpy as np
    import pandas as pd

    import keel
    from keel.cli.quickstart.serve import free_port, start_server, stop_server
    from keel.deploy import Guardrails, current_deployment, start_deployment
    from keel.deploy.records import deployment_history

    ws, month, champion = _world(root)
    flag = root / "slow-now"
    (root / "slow_model.py").write_text(SLOW_MODEL.replace("FLAG", repr(str(flag))))
    sys.path.insert(0, str(root))
    from slow_model import FlagSlow  # type: ignore[import-not-found]

    example = pd.DataFrame(month)[["tenure", "monthly_charges", "plan"]].head(5)
    with keel.start_run(workspace=ws, capture_code=False) as run:
        slow = run.log_model(FlagSlow(champion.weights), "churn", input_example=example)
    rails = Guardrails.parse({"max_p99_latency_ms": 25, "min_requests": 40})
    port = free_port()
    server, _ = start_server(port)
    out = []
    try:
        traffic = Traffic(port, month, threads=3)
        with traffic:
            for i in range(count):
                flag.unlink(missing_ok=True)
                dep = start_deployment(ws, "churn", slow.number, mode="canary", share=0.5, guardrails=rails)
                time.sleep(1.2)  # every server follows within a second
                flag.touch()
                touched = time.time()
                deadline = time.monotonic() + 30
                while current_deployment(ws, "churn") is not None and time.monotonic() < deadline:
                    time.sleep(0.02)
                time.sleep(0.5)
                event = next(e for e in deployment_history(ws, "churn", limit=5) if e.action == "rollback")
                ref = slow.ref
                mine = [a for a in traffic.snapshot() if a[2] == ref and a[0] >= dep.created_at]
                computable = None
                for k in range(39, len(mine)):
                    lat = [e - s for s, e, _ in mine[: k + 1]]
                    if float(np.percentile(lat, 99)) > 0.025:
                        computable = mine[k][1]
                        break
                assert computable is not None, f"breach {i}: never computable"
                out.append(
                    {
                        "rollback": event.at - computable,
                        "last_answer": max(a[0] for a in mine) - computable,
                        "signal_to_rollback": event.at - touched,
                    }
                )
                log(f"  breach {i + 1}/{count}: rolled back {out[-1]['rollback'] * 1000:.0f} ms after it was computable")
        out.append({"failures": float(traffic.failures)})
    finally:
        flag.unlink(missing_ok=True)
        stop_server(server)
        ws.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3, help="Trigger-to-promotion rounds.")
    ap.add_argument("--breaches", type=int, default=20, help="Breaches to roll back.")
    args = ap.parse_args()
    med = statistics.median
    here = os.getcwd()
    with bench_lock(), tempfile.TemporaryDirectory(prefix="keel-bench-loop-") as tmp:
        rounds = []
        for i in range(args.rounds):
            log(f"[promote {i + 1}/{args.rounds}] trigger to promotion ...")
            rounds.append(promote_round(Path(tmp) / f"round{i}"))
            os.chdir(here)
        log(f"[rollback] {args.breaches} breaches ...")
        found = breaches(Path(tmp) / "breaches", args.breaches)
        os.chdir(here)
    failures = found.pop()["failures"]
    total = med(r["total"] for r in rounds)
    rows = [
        [phase, f"{med(r[phase] for r in rounds):.2f} s", f"{med(r[phase] for r in rounds) / total:.0%}"]
        for phase in ("trigger", "training", "gate", "rollout")
    ]
    rows.append(["total, trigger look to promotion", f"{total:.2f} s", "100%"])
    print(f"\n### loop benchmark, {time.strftime('%Y-%m-%d %H:%M')}; {args.rounds} rounds, "
          f"{args.breaches} breaches\n")  # fmt: skip
    print(markdown_table(["phase (median)", "seconds", "share"], rows))
    print(f"\nfailed requests during the rollouts: {sum(r['failures'] for r in rounds):.0f}")
    rb = [b["rollback"] for b in found]
    last = [b["last_answer"] for b in found]
    print(
        f"\nbreach to rollback over {len(rb)} breaches: median {med(rb) * 1000:.0f} ms, "
        f"max {max(rb) * 1000:.0f} ms; last challenger request began {med(last) * 1000:.0f} ms "
        f"(max {max(last) * 1000:.0f} ms) after the breach was computable; "
        f"{failures:.0f} failed requests. Flagger: interval x threshold (documented 1 m x 5-10: "
        "5-10 min); Argo Rollouts: (failureLimit + 1) x interval (the docs' example: >= 20 min)."
    )


if __name__ == "__main__":
    main()
