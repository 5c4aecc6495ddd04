"""keel watch against a live keel serve under load: a challenger as accurate as the champion
passes the gate and canary step 1, turns slow at step 2, and is rolled back there by the
servers' latency guardrail within a second of the breach being computable, with no failed
request; the loop records the rollback and promotes nothing."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import KEEL
from tests.e2e.serve_helpers import (
    MODEL,
    Load,
    keel_env,
    keel_json,
    record,
    serving,
    wait_for_log,
)

PIPELINE = '''
from keel.pipeline import pipeline, step
from sklearn.linear_model import LogisticRegression
from tests.e2e.serve_helpers import Degrading, _pipeline, training_frame


@step
def data(n: int = 400):
    return training_frame(n)


@step
def train(data):
    X, y = data
    return Degrading(_pipeline(LogisticRegression(max_iter=500)).fit(X, y), "FLAG")


retrain = pipeline("slow-retrain", [data, train], register="churn")
'''

POLICY = """
[trigger]
drift = false
every = "1s"
cooldown = "1h"

[retrain]
pipeline = "pipeline.py:retrain"

[gate.primary]
metric = "accuracy"
min_improvement = -0.05

[rollout]
steps = [0.1, 0.5, 1.0]
min_requests = 40
min_duration = "0"
guardrails = { max_p99_latency_ms = 25, min_requests = 40 }
"""


@pytest.mark.slow
@pytest.mark.serial
def test_a_slower_challenger_is_rolled_back_at_step_two_without_a_failed_request(root: Path) -> None:
    flag = root / "slow-now"
    (root / "pipeline.py").write_text(PIPELINE.replace("FLAG", str(flag)))
    (root / "loop.toml").write_text(POLICY)
    with serving(root) as server:
        ids, truth = [], []
        for i in range(150):  # labelled traffic for the gate
            r = server.predict([record(i)])
            assert r.status == 200, r.text
            ids.append(r.json["prediction_ids"][0])
            truth.append(int(r.json["predictions"][0]))
        assert server.feedback({"outcomes": [{"prediction_id": p, "outcome": t} for p, t in zip(ids, truth, strict=True)]}).status == 200
        wait_for_log(root, 150)
        time.sleep(1.0)  # "every 1s" is due
        with Load(server.port, threads=3) as load:
            watching = subprocess.Popen(
                [KEEL, "watch", MODEL, "--policy", "loop.toml", "--once", "--poll", "0.2s", "--json"],
                cwd=root, env=keel_env(root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            deadline = time.monotonic() + 90
            while watching.poll() is None and time.monotonic() < deadline:
                dep = server.get("/healthz").json["deployment"]
                if dep is not None and dep["share"] == 0.5:  # step 2: the challenger turns slow
                    flag.touch()
                    break
                time.sleep(0.05)
            out, err = watching.communicate(timeout=90)
            time.sleep(1.5)  # what came after the rollback
        done = subprocess.CompletedProcess(watching.args, watching.returncode, out, err)
        assert done.returncode == 1, done.stderr  # the attempt ended rolled back
        tick = json.loads(done.stdout)
        assert tick["attempt"]["state"] == "rolled_back"
    assert load.failures == []  # not one request failed
    status = keel_json(root, "watch", "status", MODEL)
    events = status["attempts"][0]["events"]
    kinds = [(e["kind"], e["state"]) for e in events]
    assert ("rollout", "rolling_out") in kinds and kinds[-1] == ("rollback", "rolled_back")
    steps = [e for e in events if e["kind"] == "rollout"]
    assert len(steps) == 2  # the canary started, then passed step 1 into step 2
    assert "p99 latency" in events[-1]["message"]
    challenger = f"churn/v{tick['attempt']['version']}"
    step_two = steps[1]["at"]
    answered = sorted(
        (r for r in load.snapshot() if r[3] == challenger and r[0] >= step_two), key=lambda r: r[1]
    )
    assert len(answered) >= 40, len(answered)
    # the breach is computable at the first answer after which the step's challenger requests
    # are 40 or more and their p99 latency is over 25 ms (as the client saw it: no later
    # than the server, which does not count the network)
    computable = next(
        done
        for k, (_, done, _, _) in enumerate(answered)
        if k >= 39 and float(np.percentile([e - s for s, e, _, _ in answered[: k + 1]], 99)) > 0.025
    )
    last = max(r[0] for r in answered)
    print(f"{len(answered)} challenger answers at step 2; the last began {last - computable:.2f} s after the breach was computable")
    assert last - computable < 1.2
    assert keel_json(root, "models", "show", MODEL)["aliases"]["champion"] == 1
