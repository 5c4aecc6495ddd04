"""``keel features …``: feature definitions as versioned code."""

from __future__ import annotations

from typing import Any

import click

from keel.cli.output import emit_json, table, when

__all__ = ["features"]


@click.group("features")
def features() -> None:
    """Feature views as versioned code: apply, list, show, diff, build, training-set."""


def _ttl(definition: dict[str, Any]) -> str:
    seconds = definition.get("ttl_seconds")
    if seconds is None:
        return "-"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _reads(v: Any) -> str:
    if v.kind == "on_demand":
        return ", ".join(sorted(v.inputs.values()))
    return v.source or "-"


@features.command("apply")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--message", "-m", default="", help="Why (kept with each new version).")
@click.option("--json", "as_json", is_flag=True, help="Print what was applied as JSON.")
def apply_cmd(file: str, message: str, as_json: bool) -> None:
    """Record a version of each definition in FILE whose code, parameters or source changed."""
    from keel.features.versions import apply
    from keel.workspace import connect

    done = apply(connect(), file, message)
    if as_json:
        emit_json([a.to_dict() for a in done])
        return
    for a in done:
        if a.status == "unchanged":
            click.echo(f"{a.version.ref}  unchanged")
        else:
            was = f" (was v{a.previous})" if a.previous else ""
            click.echo(f"{a.version.ref}  created{was}  reads {_reads(a.version)}")


@features.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the features as JSON.")
def list_cmd(as_json: bool) -> None:
    """Every feature definition with its latest version."""
    from keel.features.online_table import current_builds
    from keel.features.versions import list_features
    from keel.workspace import connect

    ws = connect()
    found = list_features(ws)
    online = current_builds(ws)
    if as_json:
        emit_json(
            [
                {**v.to_dict(), "online": online[v.name].to_dict() if v.name in online else None}
                for v in found
            ]
        )
        return
    if not found:
        click.echo("no features yet: `keel features apply features.py`")
        return
    table(
        ["feature", "latest", "kind", "entity", "ttl", "reads", "applied"],
        [
            (
                v.name,
                f"v{v.number}",
                v.kind.replace("_", "-"),
                v.definition.get("entity") or "-",
                _ttl(v.definition),
                _reads(v),
                when(v.created_at),
            )
            for v in found
        ],
    )
    for _, build in sorted(online.items()):
        click.echo(
            f"online: {build.ref}, {build.entities:,} entities, built {when(build.built_at)}"
        )


@features.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the version (and history) as JSON.")
def show_cmd(ref: str, as_json: bool) -> None:
    """One feature version (REF: spend, its latest, or spend@v2), its code and its history."""
    from keel.features.versions import history, resolve_feature
    from keel.workspace import connect

    ws = connect()
    version = resolve_feature(ws, ref)
    versions = history(ws, version.name)
    from keel.features.online_table import current_builds

    build = current_builds(ws, [version.name]).get(version.name)
    if as_json:
        doc = version.to_dict()
        doc["online"] = build.to_dict() if build is not None else None
        doc["versions"] = [
            {"ref": v.ref, "digest": v.digest, "created_at": v.created_at, "message": v.message}
            for v in versions
        ]
        emit_json(doc)
        return
    d = version.definition
    click.echo(f"{version.ref}  {version.kind.replace('_', '-')}  digest {version.digest[:16]}")
    click.echo(f"  applied {when(version.created_at)} by {version.created_by}"
               + (f": {version.message}" if version.message else ""))  # fmt: skip
    if version.kind == "view":
        click.echo(
            f"  entity {d.get('entity')}; time {d.get('timestamp')}; ttl {_ttl(d)}"
            + (f"; created {d['created']}" if d.get("created") else "")
        )
        click.echo(f"  reads {version.source}")
        if build is not None:
            click.echo(
                f"  online: {build.ref}, {build.entities:,} entities, built {when(build.built_at)} "
                f"by {build.built_by}"
            )
        if d.get("default") is not None:
            click.echo(f"  default {d['default']!r}")
    else:
        click.echo(f"  reads {', '.join(sorted(version.inputs.values()))}")
    click.echo("")
    click.echo(version.code.rstrip())
    if len(versions) > 1:
        click.echo("")
        table(
            ["version", "digest", "applied", "message"],
            [(v.ref, v.digest[:12], when(v.created_at), v.message) for v in versions],
            title="versions, newest first",
        )


@features.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def diff_cmd(a: str, b: str, as_json: bool) -> None:
    """What changed from feature version A to B: parameters, source data, code."""
    from keel.features.versions import diff_versions
    from keel.workspace import connect

    doc = diff_versions(connect(), a, b)
    if as_json:
        emit_json(doc)
        return
    if doc["same"]:
        click.echo(f"{doc['from']} and {doc['to']} are the same definition on the same data")
        return
    for key, change in doc["changed"].items():
        click.echo(f"{key}: {change['from']} -> {change['to']}")
    if doc["code"]:
        click.echo("\n".join(doc["code"]))


@features.command("build")
@click.argument("ref")
@click.option(
    "--online",
    is_flag=True,
    help="Write each entity's latest row (within the ttl) to the online table instead.",
)
@click.option("--as-of", "as_of", default=None, help="With --online: the build's time (now).")
@click.option("--message", "-m", default="", help="Kept with the dataset version.")
@click.option("--json", "as_json", is_flag=True, help="Print the built dataset version as JSON.")
def build_cmd(ref: str, online: bool, as_of: str | None, message: str, as_json: bool) -> None:
    """Compute feature view REF on its source version; record the rows as NAME.features
    (--online: serve its latest values per entity)."""
    from keel.features.build import build_view
    from keel.workspace import connect

    if as_of is not None and not online:
        raise click.UsageError("--as-of is for --online builds (a training set takes --as-of)")
    if online:
        from keel.features.online_table import build_online

        made = build_online(connect(), ref, as_of=as_of)
        if as_json:
            emit_json(made.to_dict())
            return
        click.echo(
            f"{made.ref}  online  {made.entities} entities, {made.changed} changed  "
            f"({', '.join(made.columns)})"
        )
        return
    version, built = build_view(connect(), ref, message)
    if as_json:
        emit_json({**built.to_dict(), "feature": version.ref, "feature_source": version.source})
        return
    state = "recorded" if built.is_new else "unchanged"
    click.echo(f"{built.ref}  {state}  {version.ref} on {version.source}  {built.digest[:16]}")


@features.command("training-set")
@click.option(
    "--entities",
    required=True,
    help="The entity rows: a .parquet or .csv file, or a dataset version (labels@v2).",
)
@click.option("--features", "names", required=True, help="Comma-separated: spend,spend_ratio.")
@click.option("--as-of", "as_of", default=None, help="Build it as it was then (2026-12-01).")
@click.option(
    "--timestamp", default=None, help="The entity table's time column (when it has several)."
)
@click.option("--name", default="training-set", show_default=True, help="The dataset to record.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write it here.")
@click.option("--message", "-m", default="", help="Kept with the dataset version.")
@click.option("--json", "as_json", is_flag=True, help="Print the dataset version as JSON.")
def training_set_cmd(
    entities: str,
    names: str,
    as_of: str | None,
    timestamp: str | None,
    name: str,
    out: str | None,
    message: str,
    as_json: bool,
) -> None:
    """Join features point in time onto entity rows; record the result as a dataset version."""
    import shutil

    from keel.features.build import training_set
    from keel.workspace import connect

    ws = connect()
    built = training_set(
        ws,
        entities,
        [n for n in names.split(",") if n.strip()],
        as_of=as_of,
        timestamp=timestamp,
        name=name,
        message=message,
    )
    if out is not None:
        [entry] = built.files()
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            built.materialize(tmp, link="copy")
            shutil.move(str(Path(tmp) / entry.path), out)
    if as_json:
        doc = built.to_dict()
        doc["out"] = out
        emit_json(doc)
        return
    state = "recorded" if built.is_new else "unchanged"
    click.echo(f"{built.ref}  {state}  {built.digest[:16]}" + (f"  -> {out}" if out else ""))


@features.command("skew")
@click.argument("model")
@click.option("--since", default=None, help="Requests logged since: 1d, 6h, 30m, or a time.")
@click.option(
    "--sample", default=1000, show_default=True, type=int, help="Requests to recompute at most."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def skew_cmd(model: str, since: str | None, sample: int, as_json: bool) -> None:
    """Served against offline feature values for MODEL (churn@champion): per feature, the share
    of logged requests whose served value differs from what training would have given."""
    from keel.errors import InvalidInput
    from keel.features.skew import measure_skew
    from keel.registry.versions import resolve_model
    from keel.store.logs import parse_since
    from keel.workspace import connect

    ws = connect()
    version = resolve_model(ws, model)
    needs = (version.signature or {}).get("features")
    if not needs:
        raise InvalidInput(
            f"{version.ref} was not trained on a training set of keel features: its inputs "
            "are not looked up, so there is no skew to measure"
        )
    start = parse_since(since) if since else None
    report = measure_skew(ws, version.name, version.number, needs, since=start, sample=sample)
    if as_json:
        emit_json(report)
        return
    if not report["compared"]:
        click.echo(f"{report['model']}: no logged requests" + (f" since {since}" if since else ""))
        return
    click.echo(
        f"{report['model']}: {report['compared']} of {report['logged']} logged requests "
        "recomputed offline"
    )
    table(
        ["feature", "trained on", "offline", "differ", "share", "mean |diff|", "max |diff|"],
        [
            [f["feature"], f["trained_on"], f["offline"], str(f["differ"]),
             f"{f['share']:.1%}", f"{f['mean_abs_diff']:.4g}", f"{f['max_abs_diff']:.4g}"]
            for f in report["features"]
        ],
    )  # fmt: skip
    if report["skewed"]:
        click.echo(f"skew: {', '.join(report['skewed'])} served differently than trained")
    else:
        click.echo("no skew: every served value is the offline one")
