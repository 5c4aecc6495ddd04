"""The loop's records: who holds a model's loop, its attempts, and every decision as an event.

- A **lease** (``loop_leases``) lets one ``keel watch`` act for a model; another one
  sees who holds it (:class:`LoopHeld`). It expires unless renewed, so a killed
  holder is replaced once its lease runs out, or at once when it was a process on
  this machine that is gone.
- An **attempt** (``loop_attempts``) is one retraining, started by one trigger firing.
  Its trigger id is unique: evaluating the same firing again starts nothing. A model
  has at most one attempt that is not over, and none starts within the cooldown of
  the last one.
- An **event** (``loop_events``) records each decision with its evidence, in the same
  transaction as the state it moves the attempt to, so a loop killed at any point
  resumes from the last recorded state.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import KeelError

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from keel.workspace import Workspace

__all__ = [
    "ACTIVE",
    "ENDED",
    "Attempt",
    "Lease",
    "LoopEvent",
    "LoopHeld",
    "acquire",
    "active_attempt",
    "attempts_of",
    "events_of",
    "holder_id",
    "move",
    "record",
    "release",
    "renew",
    "start_attempt",
]

LEASE_SECONDS = 30.0
# An attempt's states: the first five are not over.
ACTIVE = ("triggered", "training", "gating", "rolling_out", "paused")
ENDED = ("promoted", "rejected", "rolled_back", "aborted", "failed")


class LoopHeld(KeelError):
    """Another ``keel watch`` holds this model's loop."""

    exit_code = 1


class StaleAttempt(KeelError):
    """An attempt was moved by someone else since it was read (a second loop, a resume)."""


def holder_id() -> str:
    """This process, as a lease names it: host, pid and a token."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead(holder: str) -> bool:
    """Whether ``holder`` was a process on this machine that is gone (killed): its lease need
    not be waited out."""
    parts = holder.rsplit(":", 2)  # host, pid, token
    if len(parts) != 3 or parts[0] != socket.gethostname()[:120] or not parts[1].isdecimal():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


@dataclass(frozen=True)
class Lease:
    model: str
    holder: str
    expires_at: float


def _upsert_lease(conn: Connection, model: str, holder: str, now: float, seconds: float) -> Any:
    from sqlalchemy import select

    from keel.store.db import loop_leases

    row = conn.execute(
        select(loop_leases).where(loop_leases.c.model == model).with_for_update()
    ).first()
    if row is not None and row.holder != holder and row.expires_at > now and not _dead(row.holder):
        return row  # someone else's, still alive
    if row is None:
        conn.execute(
            loop_leases.insert(),
            {"model": model, "holder": holder, "acquired_at": now, "expires_at": now + seconds},
        )
    else:
        acquired = row.acquired_at if row.holder == holder else now
        conn.execute(
            loop_leases.update().where(loop_leases.c.model == model),
            {"holder": holder, "acquired_at": acquired, "expires_at": now + seconds},
        )
    return None


def acquire(
    ws: Workspace, model: str, holder: str | None = None, seconds: float = LEASE_SECONDS
) -> Lease:
    """Hold ``model``'s loop for ``seconds`` (renew before they pass), or :class:`LoopHeld`
    naming the live holder."""
    me = holder or holder_id()
    now = time.time()
    other = ws.db.write(lambda conn: _upsert_lease(conn, model, me, now, seconds), retry_integrity=True)
    if other is not None:
        raise LoopHeld(
            f"the loop of {model} is held by {other.holder} (since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(other.acquired_at))}); its lease "
            f"ends in {max(0.0, other.expires_at - now):.0f} s unless renewed"
        )
    return Lease(model, me, now + seconds)


def renew(ws: Workspace, lease: Lease, seconds: float = LEASE_SECONDS) -> Lease:
    """The lease again for ``seconds`` more; :class:`LoopHeld` when another took it (this
    one had expired)."""
    return acquire(ws, lease.model, lease.holder, seconds)


def release(ws: Workspace, lease: Lease) -> None:
    """Give the loop up (only if still held by ``lease``'s holder)."""
    from keel.store.db import loop_leases

    ws.db.write(
        lambda conn: conn.execute(
            loop_leases.delete().where(
                (loop_leases.c.model == lease.model) & (loop_leases.c.holder == lease.holder)
            )
        )
    )


# -- events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopEvent:
    id: int
    model: str
    attempt: str | None
    at: float
    kind: str
    state: str | None
    message: str
    evidence: dict[str, Any]
    actor: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "attempt": self.attempt,
            "at": self.at,
            "kind": self.kind,
            "state": self.state,
            "message": self.message,
            "evidence": self.evidence,
            "actor": self.actor,
        }


def record(
    conn: Connection,
    model: str,
    kind: str,
    message: str,
    evidence: Mapping[str, Any] | None = None,
    *,
    attempt: str | None = None,
    state: str | None = None,
) -> int:
    """Append an event in the caller's transaction; its id."""
    from keel.store.db import actor, loop_events

    done = conn.execute(
        loop_events.insert(),
        {
            "model": model,
            "attempt_id": attempt,
            "at": time.time(),
            "kind": kind,
            "state": state,
            "message": message,
            "evidence": json.dumps(dict(evidence or {}), sort_keys=True, default=str),
            "actor": actor(),
        },
    )
    key = done.inserted_primary_key
    assert key is not None
    return int(key[0])


def events_of(
    ws: Workspace, model: str, *, attempt: str | None = None, limit: int = 200
) -> list[LoopEvent]:
    """The newest ``limit`` events of ``model`` (or of one attempt), oldest first."""
    from sqlalchemy import select

    from keel.store.db import loop_events

    query = select(loop_events).where(loop_events.c.model == model)
    if attempt is not None:
        query = query.where(loop_events.c.attempt_id == attempt)
    with ws.db.read() as conn:
        rows = conn.execute(query.order_by(loop_events.c.id.desc()).limit(limit)).all()
    return [
        LoopEvent(
            id=r.id,
            model=r.model,
            attempt=r.attempt_id,
            at=r.at,
            kind=r.kind,
            state=r.state,
            message=r.message,
            evidence=json.loads(r.evidence),
            actor=r.actor,
        )
        for r in reversed(rows)
    ]


# -- attempts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    id: str
    model: str
    trigger_id: str
    trigger: dict[str, Any]
    state: str
    version: int | None = None
    step: int | None = None
    step_started_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "trigger_id": self.trigger_id,
            "trigger": self.trigger,
            "state": self.state,
            "version": self.version,
            "step": self.step,
            "step_started_at": self.step_started_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _attempt(row: Any) -> Attempt:
    return Attempt(
        id=row.id,
        model=row.model,
        trigger_id=row.trigger_id,
        trigger=json.loads(row.trigger),
        state=row.state,
        version=row.version,
        step=row.step,
        step_started_at=row.step_started_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _serialise(conn: Connection, model: str) -> None:
    """One writer at a time for ``model``'s attempts until this transaction ends: SQLite's
    BEGIN IMMEDIATE already is; on PostgreSQL, a transaction-scoped advisory lock."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import text

        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:m))"), {"m": f"keel.loop:{model}"})


def start_attempt(
    ws: Workspace,
    model: str,
    trigger_id: str,
    trigger: Mapping[str, Any],
    *,
    cooldown: float,
) -> tuple[Attempt | None, str]:
    """Start an attempt for a trigger firing, in one transaction with its ``trigger``
    event. ``(None, why)`` when the firing starts nothing: its id started an attempt
    before, an attempt of ``model`` is not over, or the last one began within
    ``cooldown`` seconds."""
    from sqlalchemy import select

    from keel.store.db import loop_attempts

    def txn(conn: Connection) -> tuple[Attempt | None, str]:
        _serialise(conn, model)
        seen = conn.execute(
            select(loop_attempts.c.id).where(loop_attempts.c.trigger_id == trigger_id)
        ).first()
        if seen is not None:
            return None, f"trigger {trigger_id} already started attempt {seen.id[:8]}"
        last = conn.execute(
            select(loop_attempts)
            .where(loop_attempts.c.model == model)
            .order_by(loop_attempts.c.created_at.desc())
            .limit(1)
        ).first()
        now = time.time()
        if last is not None and last.state in ACTIVE:
            return None, f"attempt {last.id[:8]} is {last.state}"
        if last is not None and now - last.created_at < cooldown:
            wait = cooldown - (now - last.created_at)
            return None, f"cooling down: the last attempt began {now - last.created_at:.0f} s ago ({wait:.0f} s left)"
        aid = uuid.uuid4().hex
        conn.execute(
            loop_attempts.insert(),
            {
                "id": aid,
                "model": model,
                "trigger_id": trigger_id,
                "trigger": json.dumps(dict(trigger), sort_keys=True, default=str),
                "state": "triggered",
                "created_at": now,
                "updated_at": now,
            },
        )
        record(
            conn,
            model,
            "trigger",
            str(trigger.get("message", trigger_id)),
            {**trigger, "trigger_id": trigger_id},
            attempt=aid,
            state="triggered",
        )
        row = conn.execute(select(loop_attempts).where(loop_attempts.c.id == aid)).one()
        return _attempt(row), "started"

    return ws.db.write(txn, retry_integrity=True)


def move(
    ws: Workspace,
    attempt: Attempt,
    state: str,
    kind: str,
    message: str,
    evidence: Mapping[str, Any] | None = None,
    *,
    also: Any = None,
    **fields: Any,
) -> Attempt:
    """Move ``attempt`` to ``state`` with an event, in one transaction; only from the state
    it was read in (else :class:`StaleAttempt`: someone else moved it). ``fields`` set
    ``version``, ``step`` or ``step_started_at``; ``also(conn)`` writes more in the same
    transaction (an alias move, a deployment)."""
    from sqlalchemy import select

    from keel.store.db import loop_attempts

    if state not in ACTIVE + ENDED:
        raise ValueError(f"unknown attempt state {state!r}")
    unknown = set(fields) - {"version", "step", "step_started_at"}
    if unknown:
        raise ValueError(f"unknown attempt fields {sorted(unknown)}")

    def txn(conn: Connection) -> Attempt:
        _serialise(conn, attempt.model)
        changed = conn.execute(
            loop_attempts.update()
            .where((loop_attempts.c.id == attempt.id) & (loop_attempts.c.state == attempt.state)),
            {"state": state, "updated_at": time.time(), **fields},
        ).rowcount
        if changed != 1:
            raise StaleAttempt(
                f"attempt {attempt.id[:8]} of {attempt.model} is no longer {attempt.state}"
            )
        if also is not None:
            also(conn)
        record(conn, attempt.model, kind, message, evidence, attempt=attempt.id, state=state)
        return _attempt(conn.execute(select(loop_attempts).where(loop_attempts.c.id == attempt.id)).one())

    return ws.db.write(txn)


def active_attempt(ws: Workspace, model: str) -> Attempt | None:
    """The attempt of ``model`` that is not over, if any."""
    from sqlalchemy import select

    from keel.store.db import loop_attempts

    with ws.db.read() as conn:
        row = conn.execute(
            select(loop_attempts)
            .where((loop_attempts.c.model == model) & loop_attempts.c.state.in_(ACTIVE))
            .order_by(loop_attempts.c.created_at.desc())
            .limit(1)
        ).first()
    return None if row is None else _attempt(row)


def attempts_of(ws: Workspace, model: str, limit: int = 50) -> list[Attempt]:
    """The newest ``limit`` attempts of ``model``, newest first."""
    from sqlalchemy import select

    from keel.store.db import loop_attempts

    with ws.db.read() as conn:
        rows = conn.execute(
            select(loop_attempts)
            .where(loop_attempts.c.model == model)
            .order_by(loop_attempts.c.created_at.desc())
            .limit(limit)
        ).all()
    return [_attempt(r) for r in rows]
