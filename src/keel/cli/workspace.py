"""``keel init``, ``keel verify``, ``keel gc``."""

from __future__ import annotations

import click

from keel.cli.output import emit_json, human_size, progress_bar

__all__ = ["gc_cmd", "init_cmd", "verify_cmd"]


@click.command("init")
@click.argument("path", default=".", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init_cmd(path: str, as_json: bool) -> None:
    """Create a keel workspace in PATH (default: here). Running it again changes nothing."""
    from pathlib import Path

    from keel.config import KEEL_DIR
    from keel.workspace import init

    existed = Path(path, KEEL_DIR).is_dir()
    ws = init(path)
    git = ws.git_exclude
    if as_json:
        emit_json(
            {
                "workspace": str(ws.root),
                "created": not existed,
                "metadata": ws.settings.db_url,
                "objects": ws.settings.store_url,
                "git_exclude": git,
            }
        )
        return
    if existed:
        click.echo(f"workspace already here: {ws.root / KEEL_DIR} (nothing changed)")
    else:
        click.echo(f"created workspace {ws.root / KEEL_DIR}")
    if git is not None and git["status"] == "added":
        click.echo(f"kept out of git: {git['line']} added to {git['file']}")
    elif git is not None and git["status"] == "failed":
        click.echo(f"keep it out of git: add the line {git['line']} to {git['file']} (keel could not)")


@click.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_cmd(as_json: bool) -> None:
    """Rehash every object and check every record's objects; exit 1 if anything is wrong."""
    from keel.data.catalog import check_heads
    from keel.store.verify import verify
    from keel.workspace import connect

    ws = connect()
    with progress_bar("verifying", unit="objects") as progress:
        report = verify(ws.db, ws.objects, progress)
    report.problems += check_heads(ws)
    if as_json:
        emit_json(report.to_dict())
    else:
        for m in report.missing:
            click.echo(f"missing object {m['oid']} (used by {', '.join(m['used_by'])})")
        for c in report.corrupt:
            users = ", ".join(c["used_by"]) or "no record"
            click.echo(
                f"corrupt object {c['oid']}: bytes hash to {c['actual'][:16]}… (used by {users})"
            )
        for u in report.unreadable:
            click.echo(f"unreadable {u['shape']} {u['oid']}: {u['error']}")
        for p in report.problems:
            click.echo(p)
        if report.stray_temporaries:
            click.echo(
                f"{report.stray_temporaries} temporary file(s) from interrupted writes "
                "(harmless; `keel gc` removes them)"
            )
        status = "ok" if report.ok else "PROBLEMS FOUND"
        click.echo(f"{status}: {report.objects_checked} objects checked")
    if not report.ok:
        raise SystemExit(1)


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def gc_cmd(dry_run: bool, as_json: bool) -> None:
    """Remove objects that no record needs (and temporaries crashed writers left)."""
    from keel.store.gc import collect
    from keel.workspace import connect

    ws = connect()
    with ws.collecting_garbage():
        report = collect(ws.db, ws.objects, dry_run=dry_run)
    if as_json:
        emit_json(report.to_dict())
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {len(report.objects)} unreferenced object(s), {human_size(report.bytes)}; "
        f"{len(report.temporaries)} temporary file(s); kept {report.kept}"
    )
