"""``keel data …``: version datasets and look at them."""

from __future__ import annotations

from typing import Any

import click

from keel.cli.output import ago, counted, emit_json, human_size, progress_bar, table, when

__all__ = ["data"]

_BAR_FROM = 64 << 20  # draw a progress bar when there is this much to store


@click.group("data")
def data() -> None:
    """Version datasets: add, list, show, log, diff, get, rm."""


@data.command("add")
@click.argument("path", type=click.Path())
@click.option("--name", "-n", default=None, help="Dataset name: letters, digits, '.', '_', '-'.")
@click.option("--message", "-m", default="", help="Why this version exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def add_cmd(path: str, name: str | None, message: str, as_json: bool) -> None:
    """Version the file or folder PATH as dataset NAME (prints NAME@vN and its digest)."""
    from keel.data import add

    if name is None:
        from pathlib import Path

        stem = Path(path).resolve().name.split(".")[0] or "data"
        raise click.UsageError(
            f"Missing option '--name': the dataset to add {path} to, for example --name {stem}"
        )

    with progress_bar(f"adding {name}") as bar:
        version = add(path, name=name, message=message, progress=bar)
    if as_json:
        emit_json({**version.to_dict(), "status": "created" if version.is_new else "unchanged"})
    elif version.is_new:
        click.echo(
            f"{version.ref}  {version.digest}  ({counted(version.file_count, 'file')}, "
            f"{human_size(version.size)})"
        )
        if version.profile_error:
            click.echo(f"note: {version.profile_error}", err=True)
    else:
        click.echo(f"unchanged, {version.ref}")


@data.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the datasets as JSON.")
def list_cmd(as_json: bool) -> None:
    """Every dataset with its head version."""
    from keel.data import list_datasets

    found = list_datasets()
    if as_json:
        emit_json([d.to_dict() for d in found])
        return
    if not found:
        click.echo("no datasets yet: keel data add PATH --name NAME")
        return
    table(
        ["dataset", "head", "versions", "files", "size", "updated"],
        [
            (
                d.name,
                f"v{d.head}" if d.head else "-",
                d.versions,
                d.files,
                human_size(d.size),
                ago(d.updated_at),
            )
            for d in found
        ],
    )


@data.command("show")
@click.argument("ref")
@click.option("--files", "show_files", is_flag=True, help="List every file.")
@click.option("--json", "as_json", is_flag=True, help="Print the version as JSON.")
def show_cmd(ref: str, show_files: bool, as_json: bool) -> None:
    """One version: its record, files and column profile (REF: name, name@vN or digest prefix)."""
    from keel.data import get

    v = get(ref)
    profile = v.profile
    if as_json:
        doc: dict[str, Any] = v.to_dict()
        doc["profile"] = profile
        doc["files_list"] = (
            [
                {
                    "path": e.path,
                    "oid": e.oid,
                    "size": e.size,
                    "mode": oct(e.mode),
                    "chunked": e.chunked,
                }
                for e in v.files()
            ]
            if (show_files or v.file_count <= 1000)
            else None
        )
        emit_json(doc)
        return
    click.echo(f"{v.ref}  {v.digest}")
    click.echo(f"  {v.kind}, {counted(v.file_count, 'file')}, {human_size(v.size)}")
    click.echo(f"  added {when(v.created_at)} by {v.created_by} from {v.source}")
    if v.message:
        click.echo(f"  message: {v.message}")
    if v.deleted_at:
        click.echo(f"  REMOVED {when(v.deleted_at)}")
    if v.profile_error:
        click.echo(f"  profile: {v.profile_error}")
    if show_files:
        for e in v.files():
            click.echo(f"  {e.oid[:12]}  {human_size(e.size):>10}  {e.path}")
    for tab in (profile or {}).get("tables", []):
        rows = []
        # in the file's order (profiles before it was kept: by name)
        order = [c for c in tab.get("order", []) if c in tab["columns"]] or list(tab["columns"])
        for col in order:
            c = tab["columns"][col]
            if c["kind"] == "numeric" and "mean" in c:
                summary = (
                    f"mean {c['mean']:.4g}  std {c['std']:.4g}  [{c['min']:.4g}, {c['max']:.4g}]"
                )
            elif c["kind"] == "categorical":
                top = ", ".join(f"{val} ({n})" for val, n in c["top"][:3])
                summary = f"{c['distinct']} distinct; top: {top}"
            else:
                summary = f"min {c.get('min', '-')}  max {c.get('max', '-')}"
            rows.append((col, c["type"], c["nulls"], summary))
        table(
            ["column", "type", "nulls", "statistics"],
            rows,
            title=f"{tab['name']}: {tab['rows']} rows",
        )


@data.command("log")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the versions and head moves as JSON.")
def log_cmd(name: str, as_json: bool) -> None:
    """The versions of dataset NAME, newest first, and every move of its head."""
    from keel.data import head_history, log

    versions = log(name)
    moves = head_history(name)
    if as_json:
        emit_json(
            {
                "versions": [v.to_dict() for v in versions],
                "head_moves": [
                    {
                        "at": m.at,
                        "actor": m.actor,
                        "from": m.from_target,
                        "to": m.to_target,
                        "message": m.message,
                    }
                    for m in moves
                ],
            }
        )
        return
    for v in versions:
        gone = "  (removed)" if v.deleted_at else ""
        click.echo(
            f"{v.ref:<24} {v.digest[:12]}  {when(v.created_at)}  {v.created_by:<10} "
            f"{counted(v.file_count, 'file'):>12} {human_size(v.size):>10}  {v.message}{gone}"
        )


@data.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def diff_cmd(a: str, b: str, as_json: bool) -> None:
    """What changed from version A to version B: files, schema, rows, statistics."""
    from keel.data import diff

    d = diff(a, b)
    if as_json:
        emit_json(d.to_dict())
        return
    click.echo(
        f"{d.a} -> {d.b}: {len(d.added)} added, {len(d.removed)} removed, "
        f"{len(d.changed)} changed, {d.unchanged} unchanged"
    )
    for f in d.added[:50]:
        click.echo(f"  + {f['path']}")
    for f in d.removed[:50]:
        click.echo(f"  - {f['path']}")
    for f in d.changed[:50]:
        click.echo(
            f"  ~ {f['path']}  {human_size(f['size_before'])} -> {human_size(f['size_after'])}"
        )
    for t in d.tables:
        click.echo(
            f"table {t['table']}: rows {t['rows_before']} -> {t['rows_after']} "
            f"({t['rows_change']:+d})"
        )
        for c in t["columns_added"]:
            click.echo(f"  + column {c}")
        for c in t["columns_removed"]:
            click.echo(f"  - column {c}")
        for c in t["type_changes"]:
            click.echo(f"  ~ column {c['column']}: {c['before']} -> {c['after']}")
        for col, shift in t["columns"].items():
            parts = []
            if "mean" in shift:
                parts.append(f"mean {shift['mean'][0]:.4g} -> {shift['mean'][1]:.4g}")
            if "mean_shift_in_std" in shift:
                parts.append(f"({shift['mean_shift_in_std']:+.3g} sd)")
            if "null_rate" in shift:
                parts.append(f"nulls {shift['null_rate'][0]:.2%} -> {shift['null_rate'][1]:.2%}")
            if "new_values" in shift:
                parts.append("new: " + ", ".join(map(str, shift["new_values"][:5])))
            if "vanished_values" in shift:
                parts.append("gone: " + ", ".join(map(str, shift["vanished_values"][:5])))
            if "share" in shift:
                parts.append(f"{len(shift['share'])} value share(s) moved")
            if "distinct" in shift:
                parts.append(f"distinct {shift['distinct'][0]} -> {shift['distinct'][1]}")
            if parts:
                click.echo(f"  {col}: " + "; ".join(parts))


@data.command("get")
@click.argument("ref")
@click.option("--out", "-o", required=True, type=click.Path(), help="Where to put the files.")
@click.option(
    "--copy",
    "force_copy",
    is_flag=True,
    help="Always make independent copies (never hard links to the store).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def get_cmd(ref: str, out: str, force_copy: bool, as_json: bool) -> None:
    """Restore version REF into OUT, byte for byte (reflink, else hard link, else copy)."""
    from keel.data import get

    version = get(ref)
    methods = version.materialize(out, link="copy" if force_copy else "auto")
    if as_json:
        emit_json(
            {
                "ref": version.ref,
                "digest": version.digest,
                "out": out,
                "files": version.file_count,
                "methods": methods,
            }
        )
        return
    how = ", ".join(f"{n} by {m}" for m, n in sorted(methods.items()))
    click.echo(f"{version.ref} -> {out}: {counted(version.file_count, 'file')} ({how})")
    if methods.get("hardlink"):
        click.echo(
            "note: hard-linked files are the store's read-only objects; "
            "copy before editing them in place, or use --copy",
            err=True,
        )


@data.command("rm")
@click.argument("ref")
@click.option("--message", "-m", default="", help="Why it is removed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def rm_cmd(ref: str, message: str, as_json: bool) -> None:
    """Mark version REF removed; `keel gc` then reclaims its space. The record stays."""
    from keel.data import remove

    version = remove(ref, message=message)
    if as_json:
        emit_json(version.to_dict())
    else:
        click.echo(f"removed {version.ref}; run `keel gc` to reclaim its space")
