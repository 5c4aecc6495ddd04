"""``keel models …`` and ``keel lineage``: the registry from the shell."""

from __future__ import annotations

from typing import Any

import click

from keel.cli.output import emit_json, human_size, table, when

__all__ = ["lineage_cmd", "models"]


@click.group("models")
def models() -> None:
    """Model registry: list, show, alias, promote, rollback, archive."""


def _event(e: Any) -> dict[str, Any]:
    """An alias move, or an archive or unarchive (``alias`` None, ``version`` its number)."""
    if e.action in ("archive", "unarchive"):
        return {
            "at": e.at,
            "actor": e.actor,
            "alias": None,
            "version": int(e.name.rsplit("/v", 1)[1]),
            "from": e.from_target,
            "to": e.to_target,
            "action": e.action,
            "message": e.message,
        }
    return {
        "at": e.at,
        "actor": e.actor,
        "alias": e.name.split("@", 1)[1],
        "from": e.from_target,
        "to": e.to_target,
        "action": e.action,
        "message": e.message,
    }


_ALL = click.option("--all", "show_all", is_flag=True, help="Count and show archived versions too.")


@models.command("list")
@_ALL
@click.option("--json", "as_json", is_flag=True, help="Print the models as JSON.")
def list_cmd(show_all: bool, as_json: bool) -> None:
    """Every model with its latest version and aliases (archived versions left out)."""
    from keel.registry.versions import list_models
    from keel.workspace import connect

    found = list_models(connect(), include_archived=show_all)
    if as_json:
        emit_json([m.to_dict() for m in found])
        return
    if not found:
        click.echo("no models yet: run.log_model(model, name=...) in a tracked run")
        return
    table(
        ["model", "versions", "latest", "aliases"],
        [
            (
                m.name,
                f"{m.versions} (+{m.archived} archived)" if m.archived and not show_all else m.versions,
                f"v{m.latest}" if m.latest else "-",
                ", ".join(f"{a}=v{n}" for a, n in sorted(m.aliases.items())),
            )
            for m in found
        ],
    )


@models.command("show")
@click.argument("name")
@click.option("--limit", default=100, show_default=True, help="Newest versions and events to show.")
@_ALL
@click.option("--json", "as_json", is_flag=True, help="Print versions, aliases and events as JSON.")
def show_cmd(name: str, limit: int, show_all: bool, as_json: bool) -> None:
    """Versions, aliases, and who moved them when and why (archived versions left out)."""
    from keel.registry.versions import alias_history, archive_history, model_versions_of
    from keel.workspace import connect

    ws = connect()
    versions = model_versions_of(ws, name, include_archived=show_all)
    moves = sorted(
        alias_history(ws, name) + archive_history(ws, name), key=lambda e: e.id, reverse=True
    )
    aliases = {a: v.number for v in versions for a in v.aliases}
    if as_json:
        emit_json(
            {
                "name": name,
                "aliases": aliases,
                "versions_total": len(versions),
                "events_total": len(moves),
                "versions": [v.to_dict() for v in versions[:limit]],
                "events": [_event(e) for e in moves[:limit]],
            }
        )
        return
    click.echo(
        f"{name}: {len(versions)} versions; "
        + (", ".join(f"{a} -> v{n}" for a, n in sorted(aliases.items())) or "no aliases")
    )
    table(
        ["version", "flavor", "format", "size", "created", "run", "aliases", "message"],
        [
            (
                f"v{v.number}" + (" (archived)" if v.archived else ""),
                v.flavor,
                v.format,
                human_size(v.size),
                when(v.created_at),
                (v.run_id or "-")[:8],
                ", ".join(v.aliases),
                v.message,
            )
            for v in versions[:limit]
        ],
    )
    if moves:
        table(
            ["when", "who", "alias", "move", "action", "why"],
            [
                (
                    when(e.at),
                    e.actor,
                    e.name.split("@", 1)[1] if "@" in e.name else "-",
                    f"{_v(e.from_target)} -> {_v(e.to_target)}"
                    if "@" in e.name
                    else e.name.split("/", 1)[1],
                    e.action,
                    e.message,
                )
                for e in moves[:limit]
            ],
            title=(
                "alias moves and archivings, newest first"
                if any("@" not in e.name for e in moves[:limit])
                else "alias moves, newest first"
            ),
        )


def _parse_version(name: str, text: str) -> int:
    """``4``, ``v4`` or ``NAME/v4``; a version of another model is refused."""
    from keel.errors import BadRef, InvalidInput

    if "/" in text:
        owner, _, text = text.partition("/")
        if owner != name:
            raise InvalidInput(f"{owner}/{text} is a version of model {owner}, not of {name}")
    digits = text[1:] if text.startswith("v") else text
    if not digits.isdecimal() or int(digits) < 1:
        raise BadRef(f"invalid version {text!r}: expected a number like 4 or v4")
    return int(digits)


def _v(target: str | None) -> str:
    return f"v{target}" if target else "(none)"


@models.command("alias")
@click.argument("name")
@click.argument("version")
@click.argument("alias")
@click.option("--message", "-m", default="", help="Why (kept in the event log).")
def alias_cmd(name: str, version: str, alias: str, message: str) -> None:
    """Point NAME@ALIAS at VERSION (set or move any alias)."""
    from keel.registry.versions import set_alias
    from keel.workspace import connect

    number = _parse_version(name, version)
    event = set_alias(connect(), name, number, alias, message)
    if event is None:
        click.echo(f"{name}@{alias} already points at v{number}")
    else:
        click.echo(f"{name}@{alias}: {_v(event.from_target)} -> v{number}")


@models.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--message", "-m", default="", help="Why (kept in the event log).")
def promote_cmd(name: str, version: str, message: str) -> None:
    """Make VERSION the champion; the old champion becomes `previous`."""
    from keel.registry.versions import promote
    from keel.workspace import connect

    number = _parse_version(name, version)
    moved = promote(connect(), name, number, message)
    if not moved:
        click.echo(f"{name}@champion already points at v{number}")
    for e in moved:
        click.echo(f"{e.name}: {_v(e.from_target)} -> {_v(e.to_target)}")


@models.command("rollback")
@click.argument("name")
@click.option("--alias", default="champion", show_default=True, help="The alias to move back.")
@click.option("--message", "-m", default="", help="Why (kept in the event log).")
def rollback_cmd(name: str, alias: str, message: str) -> None:
    """Move an alias back to where it pointed before its last move (repeatable)."""
    from keel.registry.versions import rollback
    from keel.workspace import connect

    event = rollback(connect(), name, alias, message)
    click.echo(f"{name}@{alias}: v{event.from_target} -> v{event.to_target} (rolled back)")


@models.command("archive")
@click.argument("name")
@click.argument("version")
@click.option("--message", "-m", default="", help="Why (kept in the event log).")
def archive_cmd(name: str, version: str, message: str) -> None:
    """Hide VERSION from lists, `latest` and aliases; its record, lineage and events stay."""
    from keel.registry.versions import archive
    from keel.workspace import connect

    number = _parse_version(name, version)
    event = archive(connect(), name, number, message)
    if event is None:
        click.echo(f"{name}/v{number} is archived already")
    else:
        click.echo(f"{name}/v{number} archived (`keel models unarchive {name} {number}` undoes it)")


@models.command("unarchive")
@click.argument("name")
@click.argument("version")
@click.option("--message", "-m", default="", help="Why (kept in the event log).")
def unarchive_cmd(name: str, version: str, message: str) -> None:
    """Show an archived VERSION again."""
    from keel.registry.versions import unarchive
    from keel.workspace import connect

    number = _parse_version(name, version)
    event = unarchive(connect(), name, number, message)
    if event is None:
        click.echo(f"{name}/v{number} is not archived")
    else:
        click.echo(f"{name}/v{number} unarchived")


def _moment(text: str) -> float:
    """``2026-12-01T12:00`` (local time unless it names a zone), or seconds since the epoch."""
    from datetime import datetime

    from keel.errors import InvalidInput

    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise InvalidInput(
            f"invalid --at {text!r}: expected a time such as 2026-12-01T12:00 or 2026-12-01 12:00:00+00:00"
        ) from None


@click.command("lineage")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the graph (nodes, edges) as JSON.")
@click.option(
    "--at",
    "at_text",
    default=None,
    metavar="TIME",
    help="Read the alias REF (MODEL@ALIAS) as it was at TIME: what served, trained on what, "
    "gated how, rolled out how.",
)
def lineage_cmd(ref: str, as_json: bool, at_text: str | None) -> None:
    """Where REF came from and what it fed: data -> run -> code -> environment -> model."""
    from keel.registry.lineage import lineage
    from keel.workspace import connect

    at = _moment(at_text) if at_text is not None else None
    graph = lineage(connect(), ref, at=at)
    if as_json:
        emit_json(graph)
        return
    if "at" in graph:
        _say_at(graph["at"])
    nodes = {n["id"]: n for n in graph["nodes"]}
    incoming: dict[str, list[tuple[str, str]]] = {}
    outgoing: dict[str, list[tuple[str, str]]] = {}
    for e in graph["edges"]:
        incoming.setdefault(e["to"], []).append((e["from"], e["relation"]))
        outgoing.setdefault(e["from"], []).append((e["to"], e["relation"]))

    def label(node_id: str) -> str:
        n = nodes[node_id]
        extra = ""
        if n["kind"] == "run" and n.get("name"):
            extra = f" {n['name']} [{n.get('status')}]"
        elif n["kind"] == "code":
            extra = f" ({n.get('branch') or 'detached'}{', uncommitted changes' if n.get('dirty') else ''})"
        elif n["kind"] == "environment":
            extra = f" (Python {n.get('python')}, {n.get('packages')} packages)"
        elif n["kind"] == "model" and n.get("aliases"):
            extra = f" [{', '.join(n['aliases'])}]"
        elif n["kind"] == "gate":
            extra = " promote" if n.get("promote") else " reject"
        elif n["kind"] == "evaluation" and n.get("data"):
            extra = f" on {n['data']}"
        elif n["kind"] == "drift report":
            extra = f" {n.get('status')}"
        elif n["kind"] == "feature" and n.get("feature_kind") == "on_demand":
            extra = " (on-demand)"
        return f"{n['kind']} {n['ref']}{extra}"

    root = graph["root"]
    click.echo(label(root))

    def walk(
        node_id: str, depth: int, seen: set[str], links: dict[str, list[tuple[str, str]]]
    ) -> None:
        for other, relation in links.get(node_id, []):
            click.echo("  " * depth + f"└─ {relation}: {label(other)}")
            if other not in seen:
                walk(other, depth + 1, seen | {other}, links)

    walk(root, 1, {root}, incoming)
    walk(root, 1, {root}, outgoing)


def _say_at(info: dict[str, Any]) -> None:
    import time

    def when(ts: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))

    click.echo(
        f"{info['alias']} at {when(info['time'])}: {info['version']} "
        f"(since {when(info['since'])}, {info['action']} by {info['by']}: {info['message']})"
    )
    attempt = info.get("attempt")
    if attempt is None:
        click.echo("  not rolled out by keel watch")
        return
    click.echo(f"  rolled out by keel watch, attempt {attempt['id'][:8]} (trigger {attempt['trigger_id']}):")
    for e in attempt["events"]:
        click.echo(f"    {when(e['at'])}  {e['kind']:<12} {e['message']}")
