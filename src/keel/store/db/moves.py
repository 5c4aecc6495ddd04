"""Pointers and the event log: the only mutable state keel has.

A pointer (a dataset's head, a model alias, a deployment's routing) names a
record. Moving it writes the new target and appends an event in the same
transaction, so every state the system was ever in can be named and restored.
"""

from __future__ import annotations

import functools
import getpass
import os
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from keel.store.db.schema import events, pointers

__all__ = ["Event", "actor", "event_from_row", "get_pointer", "history", "move_pointer"]


@dataclass(frozen=True)
class Event:
    """One pointer move."""

    id: int
    at: float
    actor: str
    kind: str
    name: str
    from_target: str | None
    to_target: str | None
    message: str
    action: str = "move"


def actor() -> str:
    """Who is acting: ``KEEL_USER`` or the login name."""
    name = os.environ.get("KEEL_USER")
    return name[:128] if name else _login()


@functools.lru_cache(maxsize=1)
def _login() -> str:
    try:
        return getpass.getuser()[:128]
    except (KeyError, OSError):  # pragma: no cover - no passwd entry in some containers
        return "unknown"


def get_pointer(conn: Connection, kind: str, name: str) -> str | None:
    row = conn.execute(
        select(pointers.c.target).where(and_(pointers.c.kind == kind, pointers.c.name == name))
    ).first()
    return None if row is None else str(row[0])


def move_pointer(
    conn: Connection,
    kind: str,
    name: str,
    target: str | None,
    message: str = "",
    action: str = "move",
) -> Event | None:
    """Point ``kind``/``name`` at ``target`` (None removes it) and log the move.

    Returns the event, or None when the pointer already pointed there.
    Call inside a write transaction.
    """
    now = time.time()
    before = get_pointer(conn, kind, name)
    if before == target:
        return None
    where = and_(pointers.c.kind == kind, pointers.c.name == name)
    if target is None:
        conn.execute(pointers.delete().where(where))
    elif before is None:
        conn.execute(insert(pointers).values(kind=kind, name=name, target=target, updated_at=now))
    else:
        conn.execute(update(pointers).where(where).values(target=target, updated_at=now))
    who = actor()
    result = conn.execute(
        insert(events).values(
            at=now,
            actor=who,
            kind=kind,
            name=name,
            from_target=before,
            to_target=target,
            message=message,
            action=action,
        )
    )
    pk = result.inserted_primary_key
    return Event(int(pk[0]) if pk else 0, now, who, kind, name, before, target, message, action)


def event_from_row(r: Any) -> Event:
    """An Event from an ``events`` row (rows from before revision 0003 have no action)."""
    return Event(
        r.id,
        r.at,
        r.actor,
        r.kind,
        r.name,
        r.from_target,
        r.to_target,
        r.message,
        r.action or "move",
    )


def history(conn: Connection, kind: str, name: str, limit: int | None = None) -> list[Event]:
    """The moves of one pointer, newest first."""
    query = (
        select(events)
        .where(and_(events.c.kind == kind, events.c.name == name))
        .order_by(events.c.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [event_from_row(r) for r in conn.execute(query)]
