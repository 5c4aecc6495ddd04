"""``keel run FILE:NAME`` runs a pipeline; ``keel pipelines`` lists what ran."""

from __future__ import annotations

import sys
from typing import Any

import click

from keel.cli.output import ago, emit_json, table
from keel.errors import InvalidInput
from keel.pipeline.loading import load_pipeline

__all__ = ["load_pipeline", "pipelines", "run_cmd"]


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"invalid --param {pair!r}: expected NAME=VALUE")
        out[key.strip()] = value
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


@click.command("run")
@click.argument("target", metavar="FILE:NAME")
@click.option("--param", "params", multiple=True, help="A parameter: NAME=VALUE (repeatable).")
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="Where the steps run: in this process, one at a time (local), or as tasks on a "
    "Dask cluster, independent steps side by side (dask; needs keel-mlops[dask]).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="The Dask scheduler to run on, e.g. tcp://10.0.0.5:8786 (default: a local "
    "cluster, one worker per core, started for the run).",
)
@click.option("--explain", is_flag=True, help="Say which steps would run and why; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the pipeline run as JSON.")
@click.option("--verbose", is_flag=True, help="On a failed step, print its traceback.")
def run_cmd(
    target: str,
    params: tuple[str, ...],
    executor: str,
    scheduler: str | None,
    explain: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Run the pipeline NAME defined in FILE; each step is a run, unchanged steps are reused.

    Exit 0 when every step finished (or was reused), 1 when a step failed, 2 on bad input.
    """
    from keel.workspace import connect

    pipe = load_pipeline(target)
    values = _params(params)
    ws = connect()
    pipe.resolve_params(values)  # bad parameters are bad input before anything is recorded
    if scheduler is not None and executor != "dask":
        raise InvalidInput("--scheduler is for the dask executor: add --executor dask")
    result = pipe.run(
        values, executor=executor, scheduler=scheduler, workspace=ws, explain=explain
    )
    if as_json:
        emit_json(result.to_dict())
    elif explain:
        table(
            ["step", "would", "why"],
            [(s.name, "reuse" if s.cached else "run", s.error or "-") for s in result.steps],
        )
    else:
        table(
            ["step", "status", "run", "seconds"],
            [
                (s.name, s.status, (s.run or "-")[:8], _ms(s.seconds) if s.status != "skipped" else "-")
                for s in result.steps
            ],
        )
        reused = sum(s.cached for s in result.steps)
        click.echo(
            f"{result.status.upper()}: pipeline {pipe.name}, run {result.run[:8]}: "
            f"{len(result.steps)} steps, {reused} reused, in {_ms(result.seconds)}"
        )
    if result.status == "failed":
        failed = next(s for s in result.steps if s.status == "failed")
        if verbose:
            from keel.track.records import get_run

            assert failed.run is not None
            sys.stderr.write(get_run(ws, failed.run).error or "")
        sys.stderr.write(f"keel: error: {result.error}\n")
        raise SystemExit(1)


@click.group("pipelines")
def pipelines() -> None:
    """Pipelines that ran here: list, show, runs."""


def _pipeline_runs(ws: Any, name: str | None = None) -> list[Any]:
    from sqlalchemy import select

    from keel.store.db import run_tags, runs

    query = (
        select(
            run_tags.c.value.label("pipeline"),
            runs.c.id,
            runs.c.status,
            runs.c.created_at,
            runs.c.ended_at,
            runs.c.error,
        )
        .join(runs, runs.c.pk == run_tags.c.run_pk)
        .where(run_tags.c.key == "keel.pipeline", runs.c.name == "pipeline " + run_tags.c.value)
        .order_by(runs.c.created_at.desc())
    )
    if name is not None:
        query = query.where(run_tags.c.value == name)
    with ws.db.read() as conn:
        return list(conn.execute(query).all())


def _steps_of(ws: Any, run_id: str) -> list[dict[str, Any]]:
    """Each step of a pipeline run, as its run recorded them (``keel.steps``)."""
    from keel.track.records import run_steps

    with ws.db.read() as conn:
        steps = run_steps(conn, run_id)
    return [{"step": n, "status": status, "run": run} for n, status, run in steps]


def _run_doc(r: Any) -> dict[str, Any]:
    return {
        "pipeline": r.pipeline,
        "run": r.id,
        "status": r.status,
        "created_at": r.created_at,
        "seconds": (r.ended_at - r.created_at) if r.ended_at else None,
        "error": r.error,
    }


@pipelines.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(as_json: bool) -> None:
    """Every pipeline that ran here, with its newest run."""
    from keel.workspace import connect

    newest: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for r in _pipeline_runs(connect()):
        newest.setdefault(r.pipeline, r)
        counts[r.pipeline] = counts.get(r.pipeline, 0) + 1
    docs = [{**_run_doc(r), "runs": counts[p]} for p, r in sorted(newest.items())]
    if as_json:
        emit_json(docs)
        return
    table(
        ["pipeline", "runs", "newest", "status", "when"],
        [(d["pipeline"], d["runs"], d["run"][:8], d["status"], ago(d["created_at"])) for d in docs],
    )


@pipelines.command("runs")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def runs_cmd(name: str, as_json: bool) -> None:
    """The runs of pipeline NAME, newest first."""
    from keel.workspace import connect

    rows = _pipeline_runs(connect(), name)
    if not rows:
        raise InvalidInput(f"no pipeline named {name!r} has run here")
    docs = [_run_doc(r) for r in rows]
    if as_json:
        emit_json(docs)
        return
    table(
        ["run", "status", "when", "seconds", "error"],
        [
            (d["run"][:8], d["status"], ago(d["created_at"]), _ms(d["seconds"] or 0.0), (d["error"] or "-")[:80])
            for d in docs
        ],
    )


@pipelines.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def show_cmd(name: str, as_json: bool) -> None:
    """Pipeline NAME's newest run, step by step."""
    from keel.workspace import connect

    ws = connect()
    rows = _pipeline_runs(ws, name)
    if not rows:
        raise InvalidInput(f"no pipeline named {name!r} has run here")
    doc = {**_run_doc(rows[0]), "runs": len(rows), "steps": _steps_of(ws, rows[0].id)}
    if as_json:
        emit_json(doc)
        return
    click.echo(
        f"pipeline {name}: {len(rows)} run(s); newest {doc['run'][:8]} {doc['status']} "
        f"{ago(doc['created_at'])}"
    )
    table(
        ["step", "status", "run"],
        [(s["step"], s["status"], (s["run"] or "-")[:8]) for s in doc["steps"]],
    )
