"""The loop chapter: drifted traffic through a live server starts `keel watch --once`, which
retrains, gates, canaries and promotes; then a model as accurate but too slow is rolled
back by the servers' guardrail, and `keel watch status` tells the story."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.cli.quickstart.story import Say

if TYPE_CHECKING:
    from rich.console import Console

    from keel.workspace import Workspace

__all__ = ["LOOP_POLICY", "loop_chapter"]

LOOP_POLICY = """\
# keel watch churn --policy loop.toml --once
[trigger]
drift = true                  # the served window drifted from the champion's training data
window = "WINDOW"             # the new month's traffic (in production: 1d)
cooldown = "0"

[retrain]
pipeline = "pipeline.py:retrain"
params = { data = "DATA", features = "FEATURES", lr = 2.0, epochs = 400 }   # the new month

[gate]
data = "recent"               # served predictions whose outcomes came back

[rollout]
steps = [0.5, 1.0]            # a canary at half the traffic, then promotion
min_requests = 100
min_duration = "0"
guardrails = { max_error_rate = 0.05, max_p99_latency_ms = 25, min_requests = 40 }
"""

SLOW_MODEL = '''\
"""A churn model as accurate as the champion, and 40 ms slower per request."""
import time

from churn_model import ChurnModel


class SlowChurnModel(ChurnModel):
    def predict_proba(self, df):
        time.sleep(0.04)
        return super().predict_proba(df)
'''

SLOW_PIPELINE = '''\
"""The same retraining, wrapped in a slow model: the gate cannot see latency."""
from keel.pipeline import pipeline, step
from pipeline import evaluate, load, split, train as fit
from slow_model import SlowChurnModel


@step
def train(split, lr: float = 0.5, epochs: int = 60):
    return SlowChurnModel(fit.fn(split, lr, epochs).weights)


slow = pipeline("churn-retrain-slow", [load, split, train, evaluate], register="churn", target="churned")
'''


class _Traffic:
    """Customers of the new month through the live server, their outcomes sent back, on a
    thread, until stopped."""

    def __init__(self, port: int, rows: list[dict[str, Any]]) -> None:
        from keel.cli.quickstart.serve import Client, request

        self.request = request
        self.client, self.rows = Client(port), rows
        self.sent = 0
        self.answered: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self, n: int) -> None:
        feedback = []
        for _ in range(n):
            row = self.rows[self.sent % len(self.rows)]
            self.sent += 1
            answer = self.client.post("/predict", {"inputs": [self.request(row)]})
            model = str(answer["model"])
            self.answered[model] = self.answered.get(model, 0) + 1
            feedback.append({"prediction_id": answer["prediction_ids"][0], "outcome": row["churned"]})
        self.client.post("/feedback", {"outcomes": feedback})

    def _run(self) -> None:
        while not self._stop.is_set():
            self.send(20)

    def __enter__(self) -> _Traffic:
        self.answered = {}
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="quickstart-traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def loop_chapter(say: Say, out: Console, ws: Workspace, runs: tuple[str, str] | None) -> None:
    import pyarrow.csv as pacsv

    from keel.cli.quickstart.features import FEATURES
    from keel.cli.quickstart.serve import free_port, start_server, stop_server
    from keel.data.catalog import resolve
    from keel.features.versions import resolve_feature
    from keel.loop.policy import load_policy
    from keel.loop.state import events_of
    from keel.loop.watch import watch
    from keel.registry.versions import resolve_model

    if runs is None:  # the model module comes with the tracking chapter (git)
        return
    say(
        "Close the loop",
        "A new month: bills are 25 higher, team plans are common, and a competitor's loyalty "
        "offer makes long-standing customers leave, a change the champion never saw. "
        "`keel watch churn --policy loop.toml --once` looks at the served traffic, and when it "
        "drifted, retrains with the pipeline on the new month's training set, gates the new version against "
        "the champion on the traffic whose outcomes came back, and rolls it out: a canary at "
        "half the traffic, then promotion, with the guardrails and the outcome test watching "
        "every step.",
    )
    folder = Path("data")  # the new month, recorded by the drift chapter
    v3 = resolve(ws, "churn")
    labels = resolve(ws, "churn-labels").ref
    feature_refs = ",".join(resolve_feature(ws, name).ref for name in FEATURES)
    champion = resolve_model(ws, "churn@champion")
    month = pacsv.read_csv(str(folder / "customers.csv")).to_pylist()
    port = free_port()
    server, _ = start_server(port)
    try:
        traffic = _Traffic(port, month)
        began = time.time()
        traffic.send(600)
        time.sleep(1.5)  # one flush of the prediction log
        # The triggers and the gate judge the new month only: the seconds since it began
        # here (the earlier chapters' traffic is the old month).
        window = f"{int(time.time() - began) + 3}s"
        policy_text = (
            LOOP_POLICY.replace("WINDOW", window)
            .replace("DATA", labels)
            .replace("FEATURES", feature_refs)
        )
        Path("loop.toml").write_text(policy_text)
        out.print(
            f"  {v3.ref} recorded, its bills and labels too ({labels}; features re-applied: "
            f"{feature_refs}); churn@champion is {champion.ref}; {traffic.sent} customers of "
            f"the new month served, their outcomes sent back; policy: loop.toml (window {window})"
        )
        shown: set[tuple[Any, ...]] = set()

        def narrate(tick: Any) -> None:
            attempt = tick.attempt
            if attempt is None:
                return
            for event in events_of(ws, "churn", attempt=attempt.id):
                if ("event", event.id) not in shown:
                    shown.add(("event", event.id))
                    out.print(f"  {event.kind:<9} {event.message}", markup=False, highlight=False)

        policy = load_policy("loop.toml")
        with traffic:
            result = watch(ws, "churn", policy, once=True, poll=0.5, on_tick=narrate)
        narrate(result)
        answered = ", ".join(f"{m} {n}" for m, n in sorted(traffic.answered.items()))
        out.print(f"  during the rollout the server answered: {answered}")
        out.print(f"  churn@champion is now {resolve_model(ws, 'churn@champion').ref}")

        say(
            "Roll back, by itself",
            "Next, a retraining that is as accurate, and 40 ms slower per request: the gate "
            "cannot see latency, so it passes. The servers judge the canary's p99 latency "
            "against the guardrail (25 ms) on every request and send everyone back to the "
            "champion at the breach; keel watch records the rollback and never retries that "
            "version.",
        )
        Path("slow_model.py").write_text(SLOW_MODEL)
        Path("slow_pipeline.py").write_text(SLOW_PIPELINE)
        Path("loop-slow.toml").write_text(
            policy_text.replace("pipeline.py:retrain", "slow_pipeline.py:slow").replace(
                'data = "recent"               # served predictions whose outcomes came back',
                'data = "recent"\nprimary = { min_improvement = -0.01 }  # as good is good enough',
            )
        )
        shown.clear()
        slow = load_policy("loop-slow.toml")
        started = time.perf_counter()
        with traffic:
            result = watch(ws, "churn", slow, once=True, poll=0.2, on_tick=narrate)
        narrate(result)
        out.print(
            f"  {result.attempt.state if result.attempt else '-'} in "
            f"{time.perf_counter() - started:.1f} s; churn@champion is still "
            f"{resolve_model(ws, 'churn@champion').ref}"
        )
        say(
            "The story, kept",
            "`keel watch status churn` lists every attempt with its events and their evidence; "
            "`keel lineage churn@champion --at TIME` says what served at any moment and how it "
            "got there.",
        )
        from keel.loop.state import attempts_of

        for attempt in attempts_of(ws, "churn", limit=2):
            steps = " -> ".join(e.state or e.kind for e in events_of(ws, "churn", attempt=attempt.id))
            out.print(f"  attempt {attempt.id[:8]} v{attempt.version}: {steps}", soft_wrap=True)
    finally:
        stop_server(server)
