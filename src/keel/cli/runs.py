"""``keel runs …`` and ``keel reproduce``: look at runs, compare them, re-create them."""

from __future__ import annotations

import math
import sys
from typing import Any

import click

from keel.cli.output import counted, emit_json, human_size, table, when

__all__ = ["reproduce_cmd", "runs"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return "-" if value is None else str(value)


@click.group("runs")
def runs() -> None:
    """Experiment runs: list, show, compare, metrics."""


@runs.command("list")
@click.option(
    "--filter", "-f", "filter_", default=None, help='e.g. "metrics.auc > 0.9 and params.depth = 6".'
)
@click.option("--sort", "-s", default=None, help="e.g. -metrics.auc (descending) or created.")
@click.option("--limit", "-n", default=50, show_default=True, type=int)
@click.option("--offset", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def list_cmd(filter_: str | None, sort: str | None, limit: int, offset: int, as_json: bool) -> None:
    """Runs, newest first (or as sorted), filtered by params, metrics, tags, status, data, time."""
    from keel.track.search import search_runs
    from keel.workspace import connect

    page = search_runs(connect(), filter_, sort, limit, offset)
    if as_json:
        emit_json(page.to_dict())
        return
    if not page.runs:
        click.echo(
            "no runs match" if filter_ else "no runs yet: keel.start_run() in your training code"
        )
        return
    keys: list[str] = []
    if sort and sort.lstrip("+-").startswith("metrics."):
        keys.append(sort.lstrip("+-").split(".", 1)[1])
    for r in page.runs:
        for k in r.metrics:
            if k not in keys and len(keys) < 4:
                keys.append(k)
    table(
        ["id", "name", "status", "created", *keys],
        [
            (
                r.id[:8],
                r.name,
                r.status,
                when(r.created_at),
                *(_fmt(r.metrics.get(k)) for k in keys),
            )
            for r in page.runs
        ],
    )
    if page.next_offset is not None:
        click.echo(f"more: --offset {page.next_offset}", err=True)


@runs.command("show")
@click.argument("run")
@click.option("--patch", is_flag=True, help="Print the recorded uncommitted diff.")
@click.option(
    "--code",
    "show_code",
    is_flag=True,
    help="Print the code the run recorded: the notebook's cells, or the script and its "
    "local modules.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@click.option("--latest", is_flag=True, help="When several runs carry the name RUN, the newest.")
def show_cmd(run: str, patch: bool, show_code: bool, as_json: bool, latest: bool) -> None:
    """One run: params, last and best metrics, inputs, code, environment, artifacts, status."""
    from keel.track.records import MODEL_TAG, get_run
    from keel.workspace import connect

    rec = get_run(connect(), run, latest=latest)
    if patch:
        data = rec.patch()
        if data is None:
            click.echo(
                f"run {rec.id[:8]} recorded no uncommitted changes to tracked files", err=True
            )
        else:
            sys.stdout.buffer.write(data)
        return
    if show_code:
        _print_code(rec)
        return
    env = rec.environment
    if as_json:
        doc = rec.to_dict()
        doc["environment"] = env
        emit_json(doc)
        return
    click.echo(f"run {rec.id}  {rec.name}  [{rec.status}]")
    duration = f", {rec.duration:.1f} s" if rec.duration is not None else ""
    click.echo(
        f"  experiment {rec.experiment}; started {when(rec.created_at)} by {rec.user} "
        f"on {rec.host}{duration}"
    )
    if rec.reproduction_of:
        click.echo(f"  reproduction of {rec.reproduction_of[:8]}")
    code = rec.code
    if code["commit"]:
        dirty = " + uncommitted changes" if code["dirty"] else ""
        click.echo(f"  code: {code['commit'][:12]} ({code['branch'] or 'detached'}){dirty}")
    elif code["kind"] == "folder" and (code["files"] or not code["notebook"]):
        skipped = f", {len(code['files_skipped'])} over the size limit" if code["files_skipped"] else ""
        click.echo(
            f"  code: outside git: {counted(len(code['files']), 'file')} from {code['files_root']}{skipped} "
            "(--code prints them)"
        )
    elif not code["notebook"]:
        click.echo("  code: none recorded (no git repository, script or notebook)")
    nb = code["notebook"]
    if nb:
        how = "the file" if nb["source"] == "file" else "its cells as executed"
        click.echo(f"  notebook: {nb['path'] or nb['name']} ({how}, {nb['cells']} code cells)")
    click.echo(f"  command: {' '.join(rec.command.get('argv') or [])}  (in {code['cwd']})")
    if env:
        click.echo(
            f"  environment: Python {env.get('python')}, {env.get('platform')}, "
            f"{len(env.get('packages', {}))} packages"
        )
    if rec.seeds:
        click.echo(f"  seeds: {rec.seeds}")
    for item in rec.inputs:
        click.echo(f"  input: {item['ref']}  {item['digest'][:12]}")
    if rec.params:
        table(["param", "value"], [(k, _fmt(v)) for k, v in sorted(rec.params.items())])
    if rec.metrics:
        table(
            ["metric", "last", "min", "max", "steps"],
            [
                (k, _fmt(m["last"]), _fmt(m["min"]), _fmt(m["max"]), m["count"])
                for k, m in rec.metrics.items()
            ],
        )
    for m in rec.models:
        if m["registered"]:
            archived = " (archived)" if m["archived"] else ""
            click.echo(f"  model: {m['ref']}{archived}  {m['digest'][:12]}")
        else:
            click.echo(f"  model: {m['name']} (recorded by this reproduction, not registered)  "
                       f"{m['digest'][:12]}")
    for k, v in sorted(rec.tags.items()):
        if k.startswith(MODEL_TAG):
            continue  # listed above as a model
        click.echo(f"  tag {k} = {v}")
    for a in rec.artifacts:
        click.echo(f"  artifact {a['path']}  {a['oid'][:12]}  {human_size(a['size'])}")
    if rec.error:
        click.echo("  error:\n    " + rec.error.strip().replace("\n", "\n    "))


@runs.command("compare")
@click.argument("run_refs", nargs=-1, required=True, metavar="RUN RUN...")
@click.option("--all", "show_all", is_flag=True, help="Show rows that do not differ too.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_cmd(run_refs: tuple[str, ...], show_all: bool, as_json: bool) -> None:
    """Side by side: what differs in params, data, code, environment, metrics."""
    from keel.errors import InvalidInput
    from keel.track.compare import compare_runs
    from keel.track.records import get_run
    from keel.workspace import connect

    if len(run_refs) < 2:
        raise InvalidInput("compare needs at least two runs")
    ws = connect()
    result = compare_runs([get_run(ws, r) for r in run_refs])
    if as_json:
        emit_json(result)
        return
    rows = []
    for section in ("status", "params", "metrics", "inputs", "code", "command", "environment"):
        for row in result[section]:
            if row["differs"] or show_all:
                mark = "≠" if row["differs"] else " "
                rows.append((mark, section, row["key"], *(_fmt(v) for v in row["values"])))
    if not rows:
        click.echo("the runs do not differ")
        return
    table(["", "what", "key", *(r[:8] for r in result["runs"])], rows)


@runs.command("metrics")
@click.argument("run")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print the history as JSON.")
@click.option("--latest", is_flag=True, help="When several runs carry the name RUN, the newest.")
def metrics_cmd(run: str, key: str, as_json: bool, latest: bool) -> None:
    """The whole history of one metric: step, time, value."""
    from keel.track.records import get_run
    from keel.workspace import connect

    history = get_run(connect(), run, latest=latest).history(key)
    if as_json:
        emit_json(history.to_dict())
        return
    out = sys.stdout
    out.write("step\ttime\tvalue\n")
    out.writelines(
        f"{s}\t{when(t)}\t{_fmt(v)}\n"
        for s, t, v in zip(history.steps, history.timestamps, history.values, strict=True)
    )


def _print_code(rec: Any) -> None:
    """The notebook's code cells, then the files recorded outside git (or where git has them)."""
    from keel.store.objects import Tree, iter_content
    from keel.track.notebook import cell_sources

    assert rec.workspace is not None
    objects = rec.workspace.objects
    code = rec.code
    printed = False
    if code["notebook"]:
        nb = code["notebook"]
        click.echo(f"# notebook {nb['path'] or nb['name']}")
        for count, source in cell_sources(objects.get(nb["oid"])):
            click.echo(f"\n# In[{count if count is not None else ' '}]:\n{source.rstrip()}")
        printed = True
    if code["files_oid"]:
        for entry in Tree.decode(objects.get(code["files_oid"])):
            data = b"".join(iter_content(objects, entry.oid, entry.chunked))
            click.echo(f"\n# ---- {entry.path} ----\n{data.decode(errors='replace').rstrip()}")
        printed = True
    if code["commit"]:
        click.echo(
            f"\n# git: commit {code['commit']} in {code['repo_root']}"
            + ("; uncommitted changes: keel runs show RUN --patch" if code["dirty"] else "")
        )
        printed = True
    if not printed:
        from keel.errors import NotFound

        raise NotFound(
            f"run {rec.id[:8]} recorded no code (no git repository, script or notebook)"
        )


@click.command("reproduce")
@click.argument("run")
@click.option(
    "--tolerance",
    default=1e-9,
    show_default=True,
    type=float,
    help="Relative and absolute tolerance for metrics to count as reproduced.",
)
@click.option("--keep", is_flag=True, help="Keep the temporary checkout.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--latest", is_flag=True, help="When several runs carry the name RUN, the newest.")
@click.option(
    "--register",
    is_flag=True,
    help="Register the models the reproduction logs as new versions (by default they are "
    "recorded with the reproduction run only).",
)
def reproduce_cmd(
    run: str, tolerance: float, keep: bool, as_json: bool, latest: bool, register: bool
) -> None:
    """Re-run RUN from its record (code, patch, data) and compare; exit 1 if it differs."""
    from keel.track.reproduce import reproduce
    from keel.workspace import connect

    # The training output goes to stderr with --json, so stdout stays machine-readable.
    result = reproduce(
        connect(),
        run,
        tolerance=tolerance,
        keep=keep,
        output=sys.stderr if as_json else None,
        latest=latest,
        register=register,
    )
    if as_json:
        emit_json(result.to_dict())
    else:
        for line in result.environment_differences[:20]:
            click.echo(f"warning: environment differs: {line}", err=True)
        for note in result.notes:
            click.echo(f"note: {note}")
        for diff in result.differences:
            click.echo(f"differs: {diff}")
        new = result.reproduction[:8] if result.reproduction else "-"
        click.echo(f"{result.verdict}: run {result.original[:8]} -> {new}")
    if not result.ok:
        raise SystemExit(1)
