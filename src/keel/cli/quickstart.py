"""``keel quickstart``: the lifecycle on the embedded default, narrated, in the current folder.

Each capability adds its chapter here as it lands. Today: the foundation (a
workspace, two versions of a churn table, what changed, an exact restore,
proof that every byte is whole), experiment tracking (two tracked training
runs from a git repository with uncommitted changes, compared, and the best
one reproduced from its record), the registry (each run registers its
model; the better one is promoted, serves a prediction, and is rolled back),
evaluation on value with the gate, and serving (a real `keel serve` process
answers traffic, takes outcomes back, and runs a sticky canary judged online),
and monitoring (drifted traffic through that server, caught from the log lake).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from keel.workspace import Workspace

__all__ = ["quickstart"]


def _churn_table(path: Path, rows: int, seed: int, shift: float = 0.0) -> None:
    """A synthetic customer table: tenure, monthly charges, plan, region, churned."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    plans = rng.choice(["basic", "pro", "team"], rows, p=[0.5, 0.35, 0.15])
    region = rng.choice(["north", "south", "east", "west"], rows)
    charges = np.round(
        20 + 30 * (plans == "pro") + 60 * (plans == "team") + rng.normal(shift, 8, rows), 2
    )
    logit = 1.2 - 0.06 * tenure + 0.02 * charges
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    pacsv.write_csv(
        pa.table(
            {
                "customer_id": np.arange(rows),
                "tenure": tenure,
                "monthly_charges": charges,
                "plan": plans,
                "region": region,
                "churned": churned,
            }
        ),
        path,
    )


def _enter_empty_folder(directory: str) -> Path:
    """Move into ``directory``, creating it; refuse one that holds anything.

    The quickstart writes train.py, .gitignore and data/ and commits to a git
    repository of its own: in a folder that holds a user's project it would
    overwrite their files and commit on their branch.
    """
    import os

    from keel.errors import InvalidInput

    folder = Path(directory).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"{directory} is a file; keel quickstart needs an empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        where = "the current folder" if directory == "." else directory
        raise InvalidInput(
            f"{where} is not empty: keel quickstart writes files and commits to a git repository "
            f"of its own, so it runs only in an empty folder (`keel quickstart NEW_FOLDER`, or "
            f"`make demo` from keel's checkout)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    return folder.resolve()


@click.command("quickstart")
@click.argument("directory", default=".", required=False)
@click.option(
    "--rows",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=2000),
    help="Rows in the demo table (the canary alone meets 1,500 customers).",
)
def quickstart(directory: str, rows: int) -> None:
    """Walk through keel's lifecycle in DIRECTORY (default: here), narrated.

    DIRECTORY must be empty or new: the quickstart writes its own files there and
    commits them to a git repository it creates."""
    _enter_empty_folder(directory)
    from rich.console import Console

    from keel import data
    from keel.data.catalog import check_heads
    from keel.store.verify import verify
    from keel.workspace import init

    con = Console(highlight=False)

    def step(title: str, text: str) -> None:
        con.print(f"\n[bold cyan]▶ {title}[/]\n  {text}")

    start = time.perf_counter()
    con.print("[bold]keel quickstart[/]: the foundation, on SQLite + a local object folder.")

    step(
        "Workspace",
        "`keel init` makes .keel/: a SQLite metadata store (WAL) and a "
        "content-addressed object folder. No server.",
    )
    ws = init(".")
    con.print(f"  workspace: {ws.root / '.keel'}")

    step(
        "Version the data",
        "`keel data add data/ --name churn` hashes every file (BLAKE3), stores "
        "each once, records the version and profiles every table while it reads it.",
    )
    folder = Path("data")
    folder.mkdir(exist_ok=True)
    _churn_table(folder / "customers.csv", rows, seed=1)
    (folder / "README.txt").write_text("Customer export, one row per customer.\n")
    v1 = data.add(folder, name="churn", message="first export", workspace=ws)
    con.print(f"  {v1.ref}  {v1.digest[:16]}…  {v1.file_count} files, {v1.size:,} bytes")
    table = v1.profile["tables"][0] if v1.profile else None
    if table:
        tenure = table["columns"]["tenure"]
        con.print(
            f"  profile: {table['rows']:,} rows; tenure mean {tenure['mean']:.1f}, "
            f"median {tenure['quantiles'][50]:.0f}"
        )

    step(
        "Nothing changed, nothing stored",
        "Adding the same folder again costs a stat per file "
        "(the stat cache) and makes no new version.",
    )
    again = data.add(folder, name="churn", workspace=ws)
    con.print(f"  {'new version' if again.is_new else 'unchanged'}: {again.ref}")

    step(
        "A new export",
        "Next month's export: prices went up and a new plan appeared. "
        "Only the changed file is stored again.",
    )
    _churn_table(folder / "customers.csv", rows, seed=2, shift=6.0)
    with (folder / "customers.csv").open("a") as fh:
        fh.write(f"{rows},3,49.0,student,north,0\n")
    v2 = data.add(folder, name="churn", message="monthly export", workspace=ws)
    con.print(f"  {v2.ref}  {v2.digest[:16]}…")

    step(
        "What changed",
        "`keel data diff churn@v1 churn@v2`: files, rows, and how each column moved.",
    )
    d = data.diff(v1, v2, workspace=ws)
    con.print(f"  files: {len(d.changed)} changed, {d.unchanged} unchanged")
    for t in d.tables:
        con.print(f"  rows {t['rows_before']:,} -> {t['rows_after']:,}")
        charges = t["columns"].get("monthly_charges", {})
        if "mean_shift_in_std" in charges:
            con.print(f"  monthly_charges mean moved {charges['mean_shift_in_std']:+.2f} sd")
        plan = t["columns"].get("plan", {})
        if plan.get("new_values"):
            con.print(f"  plan has a new value: {', '.join(plan['new_values'])}")

    step(
        "Restore exactly",
        "`keel data get churn@v1 --out restored/` puts v1 back byte for byte, "
        "linking to the verified objects where the file system allows.",
    )
    out = Path("restored")
    if out.exists():
        import shutil

        shutil.rmtree(out)
    methods = data.get("churn@v1", workspace=ws).materialize(str(out))
    con.print(f"  restored {sum(methods.values())} files ({', '.join(methods)})")

    step("Trust, but verify", "`keel verify` rehashes every object and checks every record.")
    report = verify(ws.db, ws.objects)
    problems = check_heads(ws)
    state = "[green]ok[/]" if report.ok and not problems else "[red]problems[/]"
    con.print(f"  {state}: {report.objects_checked} objects checked")

    runs = _tracking_chapter(step, con, ws)
    _registry_chapter(step, con, ws, runs)
    _evaluation_chapter(step, con, ws, runs)
    _serving_chapter(step, con, ws, runs)
    _pipeline_chapter(step, con, ws, runs)

    con.print(
        f"\n[bold]Done in {time.perf_counter() - start:.1f} s.[/] Try: keel data log churn · "
        "keel runs list · keel runs show RUN --patch · keel run pipeline.py:retrain · "
        "keel models show churn · "
        "keel lineage churn@champion · keel logs churn · keel deploy status churn"
    )
    ws.close()


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
    df = run.use("churn@v2").to_pandas()
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


PIPELINE_MODULE = '''\
"""Retraining churn as a pipeline: each step a plain function, each a keel run."""
import numpy as np

import keel
from churn_model import FEATURES, ChurnModel, design
from keel.pipeline import pipeline, step


@step
def load(data: str = "churn@v2"):
    return keel.data.get(data).to_pandas()


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


def _pipeline_chapter(
    say: Callable[[str, str], None], out: Console, ws: Workspace, runs: tuple[str, str] | None
) -> None:
    """Retraining as a pipeline: every step a run, then an unchanged rerun that reuses all."""
    if runs is None:  # the model module comes with the tracking chapter (git)
        return
    from keel.cli.pipeline import load_pipeline

    say(
        "Retrain as a pipeline",
        "When drift says retrain, retraining is `keel run pipeline.py:retrain`: plain-function "
        "steps (load, split, train, evaluate), each recorded as a run, each output kept as an "
        "object, the model registered with its metrics. Unchanged steps are reused.",
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


def _tracking_chapter(
    say: Callable[[str, str], None], out: Console, ws: Workspace
) -> tuple[str, str] | None:
    """Two tracked runs and a reproduction; returns (worse run id, better run id)."""
    from keel.track.reproduce import reproduce
    from keel.track.search import search_runs

    say(
        "Track training runs",
        "train.py trains on churn@v2 inside keel.start_run(): keel records the commit, the "
        "uncommitted diff, the data version, params, every epoch's loss, and the model.",
    )
    if shutil.which("git") is None:
        out.print("  (git is not installed: skipping the tracking chapter)")
        return None
    Path("train.py").write_text(TRAIN_SCRIPT)
    Path("churn_model.py").write_text(MODEL_MODULE)
    Path(".gitignore").write_text(".keel/\ndata/\nrestored/\n*.npy\n__pycache__/\n")
    _git("init", "-q")  # its own repository, never one the folder sits in
    _git("add", "train.py", "churn_model.py", ".gitignore")
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
    return page.runs[-1].id, best.id


def _registry_chapter(
    say: Callable[[str, str], None], out: Console, ws: Workspace, runs: tuple[str, str] | None
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
    promote(ws, "churn", second, "higher AUC on churn@v2")
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


def _evaluation_chapter(
    say: Callable[[str, str], None], out: Console, ws: Workspace, runs: tuple[str, str] | None
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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Client:
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


def _drift_chapter(
    say: Callable[[str, str], None],
    out: Console,
    ws: Workspace,
    client: _Client,
    customers: list[dict[str, Any]],
) -> None:
    """Drifted traffic through the live server, caught by the live monitor from the log lake."""
    from keel.monitor import check
    from keel.monitor.html import write_report

    say(
        "Watch for drift",
        "Next month the traffic changes: bills are 25 higher and more customers are on the team "
        "plan. `keel monitor churn --window 10m` reads the served predictions back from the log "
        "lake (DuckDB, a uniform sample of at most a million rows) and judges them against "
        "churn@champion's training data (churn@v2, found through lineage): no reference to name.",
    )
    time.sleep(1.0)  # every server follows the canary's stop within a second
    since = time.time()
    features = ("tenure", "monthly_charges", "plan")
    for i in range(800):
        row = customers[(1500 + i) % len(customers)]
        record = {f: row[f] for f in features}
        record["monthly_charges"] = round(float(row["monthly_charges"]) + 25.0, 2)
        if i % 3 == 0:
            record["plan"] = "team"
        client.post("/predict", {"inputs": [record]})
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


def _serving_chapter(
    say: Callable[[str, str], None], out: Console, ws: Workspace, runs: tuple[str, str] | None
) -> None:
    import os
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
    port = _free_port()
    say(
        "Serve it",
        f"`keel serve churn --extra-field customer_id` answers POST /predict (and the Open "
        f"Inference Protocol v2 routes) with churn@champion on 127.0.0.1:{port}, checks every "
        "request against the model's signature (customer_id rides along, logged, never given "
        "to the model), and logs every prediction to Parquet under .keel/logs, off the request "
        "path.",
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])),
    }
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "keel.cli.main", "serve", "churn"),
            *("--port", str(port), "--extra-field", "customer_id"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = time.perf_counter()
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None or time.perf_counter() - started > 60:
                    raise RuntimeError(
                        f"keel serve did not start: {server.stderr.read() if server.stderr else ''}"
                    ) from None
                time.sleep(0.05)
        out.print(f"  up in {time.perf_counter() - started:.1f} s")
        customers = pacsv.read_csv("data/customers.csv").to_pylist()
        features = ("tenure", "monthly_charges", "plan")
        client = _Client(port)

        def traffic(
            rows: list[dict[str, Any]], key: bool = False
        ) -> tuple[list[dict[str, Any]], dict[str, int]]:
            feedback: list[dict[str, Any]] = []
            models: dict[str, int] = {}
            for row in rows:
                record = {f: row[f] for f in features} | (
                    {"customer_id": str(row["customer_id"])} if key else {}
                )
                answer = client.post("/predict", {"inputs": [record]})
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
        feedback, models = traffic(customers[300:1500], key=True)
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
        _drift_chapter(say, out, ws, client, customers)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
