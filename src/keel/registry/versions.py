"""Model versions in the metadata store: register, resolve, list, aliases, promote, roll back.

A version is immutable; an alias (``churn@champion``) is a pointer whose every
move is an event. Rolling back walks the alias's own history as a stack:
promotions push, rollbacks pop, so rolling back twice goes two steps back,
and each rollback is itself an event that can be undone by moving the alias.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, insert, select

from keel.errors import InvalidInput, NotFound
from keel.names import check_name
from keel.registry.names import ModelRef, check_alias, parse_model_ref
from keel.store.db import (
    Event,
    actor,
    event_from_row,
    events,
    get_pointer,
    model_versions,
    models,
    move_pointer,
    object_refs,
    pointers,
    runs,
)
from keel.store.db.numbering import claim_name, next_number
from keel.track.records import ARCHIVED

if TYPE_CHECKING:
    from keel.registry.signature import Signature
    from keel.workspace import Workspace

__all__ = [
    "ALIAS",
    "ModelSummary",
    "ModelVersion",
    "alias_history",
    "archive",
    "archive_history",
    "archived_versions",
    "check_not_archived",
    "list_models",
    "model_aliases",
    "model_id",
    "model_versions_of",
    "promote",
    "promote_in",
    "record_model_version",
    "require_model",
    "resolve_model",
    "rollback",
    "set_alias",
    "unarchive",
    "version_pk",
]

ALIAS = "model.alias"
_MV = model_versions.c


@dataclass
class ModelVersion:
    """An immutable model version: ``name/vN``, its files (a tree) and where it came from."""

    name: str
    number: int
    flavor: str
    format: str
    oid: str
    size: int
    signature: dict[str, Any] | None
    frameworks: dict[str, str]
    details: dict[str, Any]
    message: str
    created_at: float
    created_by: str
    run_id: str | None = None
    aliases: list[str] = field(default_factory=list)
    workspace: Workspace | None = field(default=None, repr=False, compare=False)
    # False: a reproduction's model, recorded with its run but not a version (number 0)
    registered: bool = True
    archived: bool = False  # hidden from lists and "latest"; no alias may point at it

    @property
    def ref(self) -> str:
        if not self.registered:
            return f"{self.name} (unregistered, run {(self.run_id or '')[:8]})"
        return f"{self.name}/v{self.number}"

    def __repr__(self) -> str:
        """One line: ``<ModelVersion churn/v4 sklearn 10.2 KiB>`` (the signature is in
        ``.signature``)."""
        size = float(self.size)
        for unit in ("B", "KiB", "MiB", "GiB"):
            if size < 1024 or unit == "GiB":
                shown = f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
                break
            size /= 1024
        marks = "".join(f" @{a}" for a in self.aliases) + (" archived" if self.archived else "")
        return f"<ModelVersion {self.ref} {self.flavor} {shown}{marks}>"

    def load(self) -> Any:
        """The model, loaded from its verified files."""
        from keel.registry.loading import load_version

        assert self.workspace is not None
        return load_version(self.workspace, self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "name": self.name,
            "version": self.number,
            "flavor": self.flavor,
            "format": self.format,
            "digest": self.oid,
            "size": self.size,
            "signature": self.signature,
            "frameworks": self.frameworks,
            "message": self.message,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "run": self.run_id,
            "aliases": self.aliases,
            "registered": self.registered,
            "archived": self.archived,
        }


@dataclass
class ModelSummary:
    name: str
    versions: int  # not counting archived ones
    latest: int | None  # the newest version not archived
    aliases: dict[str, int]
    updated_at: float
    archived: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": self.versions,
            "latest": self.latest,
            "aliases": self.aliases,
            "updated_at": self.updated_at,
            "archived": self.archived,
        }


def _version(
    row: Any,
    name: str,
    ws: Workspace,
    run_id: str | None,
    aliases: list[str],
    archived: bool = False,
) -> ModelVersion:
    return ModelVersion(
        name=name,
        number=row.number,
        flavor=row.flavor,
        format=row.format,
        oid=row.oid,
        size=row.size,
        signature=json.loads(row.signature) if row.signature else None,
        frameworks=json.loads(row.frameworks),
        details=json.loads(row.details),
        message=row.message,
        created_at=row.created_at,
        created_by=row.created_by,
        run_id=run_id,
        aliases=aliases,
        workspace=ws,
        archived=archived,
    )


def archived_versions(conn: Connection, name: str) -> set[int]:
    """The numbers of the versions of ``name`` that are archived."""
    prefix = f"{name}/v"
    found = conn.execute(
        select(pointers.c.name).where(
            and_(
                pointers.c.kind == ARCHIVED,
                func.substr(pointers.c.name, 1, len(prefix)) == prefix,
            )
        )
    ).scalars()
    return {int(n[len(prefix) :]) for n in found if n[len(prefix) :].isdecimal()}


def _is_archived(conn: Connection, name: str, number: int) -> bool:
    return get_pointer(conn, ARCHIVED, f"{name}/v{number}") is not None


def check_not_archived(conn: Connection, name: str, number: int, what: str) -> None:
    """Refuse to point ``what`` (an alias, a deployment) at an archived version."""
    if _is_archived(conn, name, number):
        raise InvalidInput(
            f"{name}/v{number} is archived: {what} cannot point at it "
            f"(`keel models unarchive {name} {number}` first)"
        )


def archive(ws: Workspace, name: str, number: int, message: str = "") -> Event | None:
    """Hide ``name/v{number}`` from lists, "latest" and aliases; its record, lineage and
    events stay. Refused while an alias or a live deployment points at it. Returns the
    event (None when it was archived already)."""
    from keel.store.db import deployments

    def txn(conn: Connection) -> Event | None:
        model_id(conn, name, lock=True)
        version = _load_version(conn, ws, name, number)
        if version.aliases:
            held = ", ".join(f"{name}@{a}" for a in version.aliases)
            raise InvalidInput(
                f"{name}/v{number} is {held}: move the alias first, then archive it"
            )
        live = get_pointer(conn, "deployment", name)
        if live is not None:
            challenger = conn.execute(
                select(_MV.number)
                .join(deployments, deployments.c.challenger_version_id == _MV.id)
                .where(deployments.c.id == live)
            ).scalar()
            if challenger == number:
                raise InvalidInput(
                    f"{name}/v{number} is the challenger of a live deployment: "
                    f"`keel deploy stop {name}` first"
                )
        return move_pointer(
            conn, ARCHIVED, f"{name}/v{number}", "archived", message or "archived", "archive"
        )

    return ws.db.write(txn)


def unarchive(ws: Workspace, name: str, number: int, message: str = "") -> Event | None:
    """Show an archived version again. Returns the event (None when it was not archived)."""

    def txn(conn: Connection) -> Event | None:
        model_id(conn, name, lock=True)
        _load_version(conn, ws, name, number)
        return move_pointer(
            conn, ARCHIVED, f"{name}/v{number}", None, message or "unarchived", "unarchive"
        )

    return ws.db.write(txn)


def model_id(conn: Connection, name: str, *, lock: bool = False) -> int:
    """The row id of model ``name``; ``lock`` holds its row until commit (PostgreSQL; SQLite
    writers are serialized). A name no model has is :class:`NotFound`, never "nothing there"."""
    query = select(models.c.id).where(models.c.name == name)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no model named {name!r}; `keel models list` shows the models")
    return int(row[0])


def require_model(ws: Workspace, name: str) -> None:
    """Raise :class:`NotFound` unless a model is named ``name`` (so a typo is not "no data")."""
    with ws.db.read() as conn:
        model_id(conn, name)


def version_pk(conn: Connection, mv: Any) -> int:
    """The row id of model version ``mv`` (a ModelVersion, or anything with name and number),
    for the records that link to it."""
    return int(
        conn.execute(
            select(_MV.id)
            .join(models, models.c.id == _MV.model_id)
            .where(and_(models.c.name == mv.name, _MV.number == mv.number))
        ).scalar_one()
    )


def _alias_of(column: Any, name: str) -> Any:
    """``column`` names an alias of model ``name``: ``name@…``, with the case as written.

    Not ``LIKE 'name@%'``: SQLite's LIKE ignores case, so ``Cancer`` would show the aliases and
    the history of ``cancer``. Names are case-sensitive everywhere, as ``=`` compares them.
    """
    prefix = f"{name}@"
    return func.substr(column, 1, len(prefix)) == prefix


def model_aliases(conn: Connection, name: str) -> dict[str, int]:
    rows = conn.execute(
        select(pointers.c.name, pointers.c.target).where(
            and_(pointers.c.kind == ALIAS, _alias_of(pointers.c.name, name))
        )
    ).all()
    return {str(n).split("@", 1)[1]: int(t) for n, t in rows}


def _load_version(conn: Connection, ws: Workspace, name: str, number: int) -> ModelVersion:
    mid = model_id(conn, name)
    row = conn.execute(
        select(model_versions, runs.c.id.label("run_id"))
        .outerjoin(runs, runs.c.pk == _MV.run_pk)
        .where(and_(_MV.model_id == mid, _MV.number == number))
    ).first()
    if row is None:
        latest = conn.execute(select(func.max(_MV.number)).where(_MV.model_id == mid)).scalar()
        known = f"its only version is v{latest}" if latest == 1 else f"its versions are v1..v{latest}"
        raise NotFound(f"model {name} has no version v{number}; {known}")
    aliases = sorted(a for a, n in model_aliases(conn, name).items() if n == number)
    return _version(row, name, ws, row.run_id, aliases, _is_archived(conn, name, number))


def resolve_model(ws: Workspace, ref: str | ModelRef) -> ModelVersion:
    """The version ``churn``, ``churn/v4`` or ``churn@champion`` names."""
    parsed = ref if isinstance(ref, ModelRef) else parse_model_ref(ref)
    with ws.db.read() as conn:
        found = _resolve_fast(conn, ws, parsed)
        if found is not None:
            return found
        mid = model_id(conn, parsed.name)
        if parsed.alias is not None:
            target = get_pointer(conn, ALIAS, f"{parsed.name}@{parsed.alias}")
            if target is None:
                have = ", ".join(sorted(model_aliases(conn, parsed.name))) or "none"
                raise NotFound(
                    f"model {parsed.name} has no alias {parsed.alias!r}; its aliases: {have}"
                )
            number = int(target)
        elif parsed.number is not None:
            number = parsed.number
        else:
            hidden = archived_versions(conn, parsed.name)
            number = int(
                conn.execute(
                    select(func.max(_MV.number)).where(
                        _MV.model_id == mid, _MV.number.notin_(sorted(hidden))
                    )
                ).scalar()
                or 0
            )
            if number == 0:
                more = f" not archived ({len(hidden)} archived)" if hidden else ""
                raise NotFound(f"model {parsed.name} has no versions{more}")
        return _load_version(conn, ws, parsed.name, number)


def _resolve_fast(conn: Connection, ws: Workspace, parsed: ModelRef) -> ModelVersion | None:
    """One query for the common case (the version exists); None sends the caller the slow,
    explaining way."""
    query = (
        select(model_versions, runs.c.id.label("run_id"))
        .join(models, models.c.id == _MV.model_id)
        .outerjoin(runs, runs.c.pk == _MV.run_pk)
        .where(models.c.name == parsed.name)
    )
    if parsed.alias is not None:
        query = query.join(
            pointers,
            and_(
                pointers.c.kind == ALIAS,
                pointers.c.name == f"{parsed.name}@{parsed.alias}",
                func.cast(pointers.c.target, model_versions.c.number.type) == _MV.number,
            ),
        )
    elif parsed.number is not None:
        query = query.where(_MV.number == parsed.number)
    else:
        hidden = archived_versions(conn, parsed.name)
        if hidden:
            query = query.where(_MV.number.notin_(sorted(hidden)))
        query = query.order_by(_MV.number.desc()).limit(1)
    row = conn.execute(query).first()
    if row is None:
        return None
    aliases = sorted(a for a, n in model_aliases(conn, parsed.name).items() if n == row.number)
    archived = parsed.number is not None and _is_archived(conn, parsed.name, row.number)
    return _version(row, parsed.name, ws, row.run_id, aliases, archived)


def record_model_version(
    ws: Workspace,
    *,
    name: str,
    run_pk: int | None,
    flavor: str,
    format: str,
    oid: str,
    size: int,
    signature: Signature | None,
    frameworks: dict[str, str],
    details: dict[str, Any],
    message: str,
) -> ModelVersion:
    """Record a new version of ``name`` (numbered one past the last) whose files are tree ``oid``."""
    check_name(name, "model name")
    who = actor()

    def txn(conn: Connection) -> ModelVersion:
        now = time.time()
        mid = claim_name(conn, models, name, created_at=now, created_by=who)
        number = next_number(conn, _MV.number, _MV.model_id, mid)
        values = dict(
            model_id=mid,
            number=number,
            run_pk=run_pk,
            flavor=flavor,
            format=format,
            oid=oid,
            size=size,
            signature=json.dumps(signature.to_dict()) if signature else None,
            frameworks=json.dumps(frameworks, sort_keys=True),
            details=json.dumps(details, sort_keys=True),
            message=message,
            created_at=now,
            created_by=who,
        )
        pk = conn.execute(insert(model_versions).values(**values)).inserted_primary_key
        assert pk is not None
        vid = pk[0]
        conn.execute(
            insert(object_refs).values(
                owner_kind="model_version",
                owner_id=str(vid),
                role="files",
                oid=oid,
                shape="tree",
                label=f"{name}/v{number}",
            )
        )
        run_id = None
        if run_pk is not None:
            run_id = conn.execute(select(runs.c.id).where(runs.c.pk == run_pk)).scalar()
        row = conn.execute(select(model_versions).where(_MV.id == vid)).one()
        return _version(row, name, ws, run_id, [])

    return ws.db.write(txn, retry_integrity=True)


def set_alias(
    ws: Workspace, name: str, number: int, alias: str, message: str = "", *, action: str = "move"
) -> Event | None:
    """Point ``name@alias`` at version ``number``. Returns the event (None if it pointed there)."""
    check_alias(alias)

    def txn(conn: Connection) -> Event | None:
        model_id(conn, name, lock=True)
        _load_version(conn, ws, name, number)  # exists?
        check_not_archived(conn, name, number, f"{name}@{alias}")
        return move_pointer(conn, ALIAS, f"{name}@{alias}", str(number), message, action)

    return ws.db.write(txn)


def promote(
    ws: Workspace, name: str, number: int, message: str = "", alias: str = "champion"
) -> list[Event]:
    """Point ``alias`` (champion) at version ``number``; the version it left becomes ``previous``."""
    check_alias(alias)
    return ws.db.write(lambda conn: promote_in(conn, ws, name, number, message, alias))


def promote_in(
    conn: Connection, ws: Workspace, name: str, number: int, message: str = "", alias: str = "champion"
) -> list[Event]:
    """:func:`promote` in the caller's transaction (with what else must move with it)."""
    model_id(conn, name, lock=True)
    _load_version(conn, ws, name, number)
    check_not_archived(conn, name, number, f"{name}@{alias}")
    before = get_pointer(conn, ALIAS, f"{name}@{alias}")
    moved = []
    event = move_pointer(
        conn, ALIAS, f"{name}@{alias}", str(number), message or f"promote v{number}", "promote"
    )
    if event is not None:
        moved.append(event)
        if before is not None and alias == "champion":
            prev = move_pointer(
                conn,
                ALIAS,
                f"{name}@previous",
                before,
                f"champion moved to v{number}",
                "promote",
            )
            if prev is not None:
                moved.append(prev)
    return moved


def _stack(moves: list[Event]) -> list[str]:
    """Replay an alias's moves (oldest first): promotions and moves push, rollbacks pop."""
    stack: list[str] = []
    for event in moves:
        if event.action == "rollback":
            if stack:
                stack.pop()
        elif event.to_target is None:
            stack.clear()
        else:
            stack.append(event.to_target)
    return stack


def _top_two(conn: Connection, key: str) -> list[str]:
    """The alias's current and previous stack entries, reading its history newest first only
    as far as needed (the same answer as replaying it all with :func:`_stack`)."""
    found: list[str] = []
    pops = 0
    before: int | None = None
    while len(found) < 2:
        query = select(events).where(and_(events.c.kind == ALIAS, events.c.name == key))
        if before is not None:
            query = query.where(events.c.id < before)
        page = conn.execute(query.order_by(events.c.id.desc()).limit(200)).all()
        if not page:
            break
        for e in page:
            if (e.action or "move") == "rollback":
                pops += 1
            elif e.to_target is None:
                return found  # the alias was removed: nothing earlier counts
            elif pops:
                pops -= 1
            else:
                found.append(e.to_target)
                if len(found) == 2:
                    break
        before = page[-1].id
    return found


def rollback(ws: Workspace, name: str, alias: str = "champion", message: str = "") -> Event:
    """Move ``alias`` back to where it pointed before its last move (repeatable)."""
    check_alias(alias)

    def txn(conn: Connection) -> Event:
        model_id(conn, name, lock=True)
        key = f"{name}@{alias}"
        top = _top_two(conn, key)
        if len(top) < 2:
            raise InvalidInput(f"{key} has no earlier version to roll back to")
        current, target = top
        event = move_pointer(
            conn, ALIAS, key, target, message or f"roll back v{current} -> v{target}", "rollback"
        )
        if event is None:  # pragma: no cover - the stack top is the pointer
            raise InvalidInput(f"{key} already points at v{target}")
        if alias == "champion":
            move_pointer(
                conn, ALIAS, f"{name}@previous", current, f"rolled back from v{current}", "rollback"
            )
        return event

    return ws.db.write(txn)


def alias_history(ws: Workspace, name: str) -> list[Event]:
    """Every move of every alias of ``name``, newest first."""
    with ws.db.read() as conn:
        model_id(conn, name)
        rows = conn.execute(
            select(events)
            .where(
                and_(events.c.kind == ALIAS, _alias_of(events.c.name, name))
            )
            .order_by(events.c.id.desc())
        ).all()
    return [event_from_row(r) for r in rows]


def archive_history(ws: Workspace, name: str) -> list[Event]:
    """Every archive and unarchive of a version of ``name``, newest first."""
    prefix = f"{name}/v"
    with ws.db.read() as conn:
        model_id(conn, name)
        rows = conn.execute(
            select(events)
            .where(
                and_(
                    events.c.kind == ARCHIVED,
                    func.substr(events.c.name, 1, len(prefix)) == prefix,
                )
            )
            .order_by(events.c.id.desc())
        ).all()
    return [event_from_row(r) for r in rows]


def model_versions_of(
    ws: Workspace, name: str, *, include_archived: bool = False
) -> list[ModelVersion]:
    """Every version of ``name`` not archived (all with ``include_archived``), newest first,
    with its aliases."""
    with ws.db.read() as conn:
        mid = model_id(conn, name)
        aliases = model_aliases(conn, name)
        hidden = archived_versions(conn, name)
        by_number: dict[int, list[str]] = {}
        for a, n in aliases.items():
            by_number.setdefault(n, []).append(a)
        rows = conn.execute(
            select(model_versions, runs.c.id.label("run_id"))
            .outerjoin(runs, runs.c.pk == _MV.run_pk)
            .where(_MV.model_id == mid)
            .order_by(_MV.number.desc())
        ).all()
    return [
        _version(r, name, ws, r.run_id, sorted(by_number.get(r.number, [])), r.number in hidden)
        for r in rows
        if include_archived or r.number not in hidden
    ]


def list_models(ws: Workspace, *, include_archived: bool = False) -> list[ModelSummary]:
    """Every model: how many versions it has and its latest, archived ones left out unless
    ``include_archived``."""
    with ws.db.read() as conn:
        rows = conn.execute(
            select(
                models.c.name, func.count(_MV.id), func.max(_MV.number), func.max(_MV.created_at)
            )
            .outerjoin(model_versions, _MV.model_id == models.c.id)
            .group_by(models.c.name)
            .order_by(models.c.name)
        ).all()
        out = []
        for n, c, m, t in rows:
            name = str(n)
            hidden = archived_versions(conn, name)
            count, latest = int(c), int(m) if m else None
            if hidden and not include_archived:
                count -= len(hidden)
                latest = conn.execute(
                    select(func.max(_MV.number))
                    .join(models, models.c.id == _MV.model_id)
                    .where(models.c.name == name, _MV.number.notin_(sorted(hidden)))
                ).scalar()
            out.append(
                ModelSummary(
                    name, count, latest, model_aliases(conn, name), float(t or 0), len(hidden)
                )
            )
        return out
