"""Serving and drift chapters: a real `keel serve` process answers traffic and takes
outcomes back, a sticky canary is judged online, and drifted traffic is caught from the
log lake."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.cli.quickstart.story import Say

if TYPE_CHECKING:
    from rich.console import Console

    from keel.workspace import Workspace

__all__ = [
    "Client",
    "drift_chapter",
    "free_port",
    "request",
    "serving_chapter",
    "start_server",
    "stop_server",
]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, *args: str) -> tuple[subprocess.Popen[str], float]:
    """`keel serve churn` on 127.0.0.1:``port`` (the folder on its path: the model's class lives
    in churn_model.py), answering /healthz; and when it was started."""
    import os
    import urllib.request

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "keel.cli.main", "serve", "churn", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.perf_counter()
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return server, started
        except OSError:
            if server.poll() is not None or time.perf_counter() - started > 60:
                stop_server(server)
                raise RuntimeError(
                    f"keel serve did not start: {server.stderr.read() if server.stderr else ''}"
                ) from None
            time.sleep(0.05)


def stop_server(server: subprocess.Popen[str]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


class Client:
    """Keep-alive JSON over HTTP to the quickstart's server (standard library only)."""

    def __init__(self, port: int) -> None:
        import http.client

        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path: str, doc: object) -> dict[str, Any]:
        import json

        self.conn.request("POST", path, json.dumps(doc), {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        body = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}: {body}")
        return dict(body)


def request(row: dict[str, Any]) -> dict[str, Any]:
    """What a client sends for a customer: the key and what only the request knows; the
    model's billing feature is looked up by the server."""
    return {"customer_id": int(row["customer_id"]), "tenure": row["tenure"], "plan": row["plan"]}


def drift_chapter(say: Say, out: Console, ws: Workspace, client: Client) -> None:
    """Drifted traffic through the live server, caught by the live monitor from the log lake."""
    import pyarrow.csv as pacsv

    from keel import data
    from keel.cli.quickstart.data import churn_table
    from keel.cli.quickstart.features import NEW_MONTH, new_month
    from keel.features.online_table import build_online
    from keel.monitor import check
    from keel.monitor.html import write_report

    say(
        "Watch for drift",
        "A new month: bills are 25 higher and more customers are on the team plan. Its export, "
        "bills and labels are recorded, the features applied again (billing@v2: the same code "
        f"over the new bills), and `keel features build billing --online --as-of {NEW_MONTH}` "
        "refreshes the online table, so the server looks the new bills up. `keel monitor churn "
        "--window 10m` reads the served predictions back from the log lake (DuckDB, a uniform "
        "sample of at most a million rows) and judges them against churn@champion's training "
        "data (the training set churn-train, found through lineage): no reference to name.",
    )
    folder = Path("data")
    churn_table(folder / "customers.csv", 6000, seed=3, shift=25.0, team_share=0.4, tenure_effect=0.03)
    month = data.add(folder, name="churn", message="the new month's export", workspace=ws)
    new_month(ws, month.ref)
    built = build_online(ws, "billing", as_of=NEW_MONTH)
    out.print(
        f"  {month.ref} recorded with its bills and labels; online: {built.ref}, "
        f"{built.changed:,} of {built.entities:,} customers changed"
    )
    time.sleep(1.0)  # every server follows the canary's stop within a second
    since = time.time()
    rows = pacsv.read_csv(str(folder / "customers.csv")).to_pylist()
    for row in rows[:800]:
        client.post("/predict", {"inputs": [request(row)]})
    time.sleep(1.5)  # one flush of the prediction log
    result = check("churn", since=since, until=time.time() + 1, workspace=ws)
    report = result.report
    if report is None:
        out.print(f"  {result.status}: {result.reason}")
        return
    calm = [name for name, f in report.features.items() if not f.drifted]
    out.print(
        f"  800 drifted requests -> {result.window.rows:,} predictions read from the log lake, "
        f"judged in {result.seconds:.1f} s"
    )
    out.print(f"  {report.headline()}", markup=False, highlight=False)
    for f in sorted(report.features.values(), key=lambda f: -(f.statistic or 0.0)):
        if f.drifted:
            out.print(f"    {f.name}: {'; '.join(f.reasons)}", markup=False, highlight=False)
    if calm:
        out.print(f"  not flagged: {', '.join(calm)} (unchanged, so no false alarm)")
    if report.prediction is not None:
        out.print(
            "  the served predictions are judged against what the model predicts on its own "
            "training data (scored once, kept with their lineage)"
        )
    mv = report.multivariate
    if mv is not None and mv.auc is not None:
        out.print(f"  a classifier tells this traffic from the training data with AUC {mv.auc:.2f}")
    write_report("monitor.html", report)
    out.print(
        f"  report: monitor.html (recorded, linked to {result.version}); in production: "
        "keel monitor churn --every 10m --alert https://hooks.example/... --alert-file alerts.jsonl"
    )


def serving_chapter(
    say: Say, out: Console, ws: Workspace, runs: tuple[str, str] | None
) -> None:
    import urllib.request

    import pyarrow.csv as pacsv

    from keel.deploy import current_deployment, end_deployment, start_deployment
    from keel.deploy.status import deployment_status
    from keel.evaluation.outcomes import ValueMatrix
    from keel.registry.versions import model_aliases, model_versions_of

    if runs is None:
        return
    if current_deployment(ws, "churn") is not None:  # left by an earlier quickstart here
        end_deployment(ws, "churn", message="a new quickstart")
    port = free_port()
    from keel.cli.quickstart.features import LABEL_DAY
    from keel.features.online_table import build_online

    say(
        "Serve it, features looked up",
        f"`keel features build billing --online --as-of {LABEL_DAY}` puts each customer's "
        f"latest bill in the online table. `keel serve churn` answers POST /predict (and the "
        f"Open Inference Protocol v2 routes) with churn@champion on 127.0.0.1:{port}: a client "
        "sends customer_id, tenure and plan; the server looks monthly_charges up by customer_id "
        "with the feature version the model was trained on, checks the row against the "
        "signature, and logs it whole to Parquet under .keel/logs, off the request path.",
    )
    built = build_online(ws, "billing", as_of=LABEL_DAY)
    out.print(f"  online: {built.ref}, {built.entities:,} customers")
    server, started = start_server(port)
    try:
        out.print(f"  up in {time.perf_counter() - started:.1f} s")
        customers = pacsv.read_csv("data/customers.csv").to_pylist()
        client = Client(port)

        def traffic(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
            feedback: list[dict[str, Any]] = []
            models: dict[str, int] = {}
            for row in rows:
                answer = client.post("/predict", {"inputs": [request(row)]})
                models[str(answer["model"])] = models.get(str(answer["model"]), 0) + 1
                feedback.append(
                    {"prediction_id": answer["prediction_ids"][0], "outcome": row["churned"]}
                )
            return feedback, models

        feedback, models = traffic(customers[:300])
        bad = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=b'{"inputs": [{"tenure": "soon"}]}',
            method="POST",
        )
        try:
            urllib.request.urlopen(bad, timeout=5)  # noqa: S310
        except urllib.error.HTTPError as exc:
            out.print(f"  a bad request -> HTTP {exc.code}: {exc.read().decode()[:110]}…")
        out.print(
            f"  300 customers scored by {', '.join(models)}; the real outcomes come back later"
        )
        client.post("/feedback", {"outcomes": feedback})

        with ws.db.read() as conn:
            champion = model_aliases(conn, "churn")["champion"]
        other = next(v.number for v in model_versions_of(ws, "churn") if v.number != champion)
        value = ValueMatrix(tp=120.0, fp=-15.0, fn=-80.0, tn=0.0)
        say(
            "Validate online: a canary",
            f"`keel deploy churn --challenger {other} --mode canary --share 0.3 --key customer_id` "
            "sends 30% of customers (always the same ones) to the challenger. Every server follows "
            "within a second; guardrails (error rate, latency, prediction drift) roll it back on "
            "a breach, and outcomes judge it on value with a test that stays valid however often "
            "you look.",
        )
        start_deployment(
            ws, "churn", other, mode="canary", share=0.3, key="customer_id", outcome=value.to_dict()
        )
        time.sleep(1.0)
        feedback, models = traffic(customers[300:1500])
        client.post("/feedback", {"outcomes": feedback})
        out.print("  " + ", ".join(f"{m} answered {n}" for m, n in sorted(models.items())))
        time.sleep(1.5)  # one flush of the prediction log
        doc = deployment_status(ws, "churn")
        for arm in doc["arms"]:
            lo, hi = arm["interval"] or (float("nan"), float("nan"))
            out.print(
                f"  {arm['ref']} ({arm['arm']}): {arm['requests']} requests, {arm['outcomes']} outcomes, "
                f"value/customer {arm['value']:.1f} (95% {lo:.1f} .. {hi:.1f}), p99 {arm['latency_ms']['p99']:.1f} ms"
            )
        test = doc["test"]
        if test is not None:
            out.print(
                f"  challenger - champion: {test['difference']:.2f} per customer, always-valid interval "
                f"{test['interval'][0]:.1f} .. {test['interval'][1]:.1f}: {test['decision']}"
            )
        end_deployment(ws, "churn", message="quickstart: canary done")
        out.print(
            "  canary stopped: churn@champion answers everyone (keel deploy status churn, keel logs churn)"
        )
        drift_chapter(say, out, ws, client)
    finally:
        stop_server(server)
