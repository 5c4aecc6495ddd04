"""Deployment records and the pointer that names the live one; every change is an event."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, or_, select

from keel.deploy.fields import check_key
from keel.deploy.guardrails import Guardrails
from keel.errors import AlreadyExists, InvalidInput, NotFound
from keel.registry.names import check_alias
from keel.registry.versions import check_not_archived, model_id
from keel.store.db import (
    Event,
    actor,
    deployments,
    event_from_row,
    events,
    get_pointer,
    model_versions,
    move_pointer,
    pointers,
)

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = [
    "DEPLOYMENT",
    "MODES",
    "Deployment",
    "current_deployment",
    "deployment_history",
    "end_deployment",
    "end_in",
    "promote_challenger",
    "promote_in",
    "routing_state",
    "start_deployment",
    "start_in",
]

DEPLOYMENT = "deployment"
MODES = ("shadow", "canary", "ab")
_ALIAS = "model.alias"


@dataclass(frozen=True)
class Deployment:
    """A challenger version meeting traffic beside ``model@alias``."""

    id: str
    model: str
    alias: str
    challenger: int  # version number
    mode: str
    share: float
    key: str | None
    guardrails: Guardrails
    outcome: dict[str, Any] | None
    message: str
    created_at: float
    created_by: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def challenger_ref(self) -> str:
        return f"{self.model}/v{self.challenger}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "alias": self.alias,
            "challenger": self.challenger_ref,
            "challenger_version": self.challenger,
            "mode": self.mode,
            "share": self.share,
            "key": self.key,
            "guardrails": self.guardrails.to_dict(),
            "outcome": self.outcome,
            "message": self.message,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


def _from_row(row: Any, model: str) -> Deployment:
    return Deployment(
        id=row.id,
        model=model,
        alias=row.alias,
        challenger=int(row.number),
        mode=row.mode,
        share=float(row.share),
        key=row.sticky_key,
        guardrails=Guardrails.parse(json.loads(row.guardrails)),
        outcome=json.loads(row.outcome) if row.outcome else None,
        message=row.message,
        created_at=float(row.created_at),
        created_by=row.created_by,
    )


def _load(conn: Connection, model: str, deployment_id: str) -> Deployment:
    row = conn.execute(
        select(deployments, model_versions.c.number)
        .join(model_versions, model_versions.c.id == deployments.c.challenger_version_id)
        .where(deployments.c.id == deployment_id)
    ).first()
    if row is None:  # pragma: no cover - the pointer only ever names a committed record
        raise NotFound(f"deployment {deployment_id} of {model} is missing")
    return _from_row(row, model)


def start_deployment(
    ws: Workspace,
    model: str,
    challenger: int,
    *,
    mode: str,
    share: float | None = None,
    key: str | None = None,
    guardrails: Guardrails | None = None,
    outcome: dict[str, Any] | None = None,
    alias: str = "champion",
    message: str = "",
) -> Deployment:
    """Start routing traffic to ``model/v{challenger}`` beside ``model@alias``.

    Shadow mode scores every request with the challenger and answers none
    (share is 1.0 of the scoring, 0 of the answers); canary and A/B answer a
    ``share`` of requests (or of sticky keys) with it.
    """
    if mode not in MODES:
        raise InvalidInput(f"invalid mode {mode!r}: expected one of {', '.join(MODES)}")
    check_alias(alias)
    if mode == "shadow":
        if share not in (None, 1.0):
            raise InvalidInput(
                "--share does not apply to shadow mode: the challenger scores every request and answers none"
            )
        share = 1.0
    else:
        if share is None:
            share = 0.1 if mode == "canary" else 0.5
        if not 0.0 < share < 1.0:
            raise InvalidInput(
                f"invalid share {share!r}: expected a fraction between 0 and 1 (exclusive)"
            )
    if key is not None and not key.strip():
        raise InvalidInput("invalid sticky key '': expected the name of an input field")
    rails = guardrails if guardrails is not None else Guardrails.default()
    return ws.db.write(
        lambda conn: start_in(
            conn, model, challenger, mode=mode, share=share, key=key, guardrails=rails,
            outcome=outcome, alias=alias, message=message,
        )
    )


def start_in(
    conn: Connection,
    model: str,
    challenger: int,
    *,
    mode: str,
    share: float,
    key: str | None,
    guardrails: Guardrails,
    outcome: dict[str, Any] | None,
    alias: str,
    message: str,
) -> Deployment:
    """:func:`start_deployment`'s records, checked values given, in the caller's transaction."""
    rails = guardrails
    mid = model_id(conn, model, lock=True)
    row = conn.execute(
        select(model_versions.c.id).where(
            and_(model_versions.c.model_id == mid, model_versions.c.number == challenger)
        )
    ).first()
    if row is None:
        raise NotFound(f"model {model} has no version v{challenger}")
    check_not_archived(conn, model, challenger, "a deployment")
    champion = get_pointer(conn, _ALIAS, f"{model}@{alias}")
    if champion is None:
        raise InvalidInput(
            f"{model}@{alias} points nowhere: promote a champion first (`keel models promote {model} N`)"
        )
    if int(champion) == challenger:
        raise InvalidInput(
            f"v{challenger} is already {model}@{alias}; choose another version as challenger"
        )
    if key is not None:
        sig = conn.execute(
            select(model_versions.c.signature).where(
                and_(model_versions.c.model_id == mid, model_versions.c.number == int(champion))
            )
        ).scalar()
        check_key(conn, model, key, json.loads(sig) if sig else None)
    live = get_pointer(conn, DEPLOYMENT, model)
    if live is not None:
        raise AlreadyExists(
            f"{model} already has a live deployment ({live[:8]}); `keel deploy stop {model}` or "
            f"`keel deploy promote {model}` first"
        )
    did = uuid.uuid4().hex
    now = time.time()
    conn.execute(
        deployments.insert().values(
            id=did,
            model_id=mid,
            alias=alias,
            challenger_version_id=int(row[0]),
            mode=mode,
            share=share,
            sticky_key=key,
            guardrails=json.dumps(rails.to_dict(), sort_keys=True),
            outcome=json.dumps(outcome, sort_keys=True) if outcome else None,
            message=message,
            created_at=now,
            created_by=actor(),
        )
    )
    what = f"{mode} v{challenger}" + (f" at {share:g}" if mode != "shadow" else "")
    move_pointer(
        conn, DEPLOYMENT, model, did, message or f"start {what} beside v{champion}", "start"
    )
    return _load(conn, model, did)



def current_deployment(ws: Workspace, model: str) -> Deployment | None:
    """The live deployment of ``model``, or None."""
    with ws.db.read() as conn:
        model_id(conn, model)  # a typo is "no model named", not "no live deployment"
        did = get_pointer(conn, DEPLOYMENT, model)
        return None if did is None else _load(conn, model, did)


def end_deployment(
    ws: Workspace, model: str, *, action: str = "stop", message: str = "", only: str | None = None
) -> Event | None:
    """End the live deployment (all traffic back to the champion).

    ``only`` names the deployment id that must still be live (a guardrail
    rolling back what it judged, not a newer one); returns None when it is not.
    """
    return ws.db.write(lambda conn: end_in(conn, model, action=action, message=message, only=only))


def end_in(
    conn: Connection, model: str, *, action: str = "stop", message: str = "", only: str | None = None
) -> Event | None:
    """:func:`end_deployment` in the caller's transaction."""
    model_id(conn, model, lock=True)
    live = get_pointer(conn, DEPLOYMENT, model)
    if live is None:
        if only is not None:
            return None
        raise InvalidInput(f"{model} has no live deployment")
    if only is not None and live != only:
        return None
    return move_pointer(conn, DEPLOYMENT, model, None, message or action, action)


def promote_challenger(ws: Workspace, model: str, message: str = "") -> list[Event]:
    """Move the alias to the live deployment's challenger and end the deployment, in one commit."""
    live = current_deployment(ws, model)
    if live is None:
        raise InvalidInput(f"{model} has no live deployment to promote")
    return ws.db.write(lambda conn: promote_in(conn, ws, live, message))


def promote_in(conn: Connection, ws: Workspace, live: Deployment, message: str = "") -> list[Event]:
    """:func:`promote_challenger` of ``live`` in the caller's transaction: the alias moves and
    the deployment ends together, or neither does."""
    from keel.registry.versions import promote_in as move_alias

    model_id(conn, live.model, lock=True)
    if get_pointer(conn, DEPLOYMENT, live.model) != live.id:  # a guardrail ended it first
        raise InvalidInput(
            f"deployment {live.id[:8]} of {live.model} is no longer live: nothing promoted"
        )
    moved = move_alias(
        conn,
        ws,
        live.model,
        live.challenger,
        message or f"promote challenger v{live.challenger} ({live.mode})",
        alias=live.alias,
    )
    ended = end_in(
        conn, live.model, action="promote", message=f"promoted v{live.challenger}", only=live.id
    )
    return moved + ([ended] if ended is not None else [])


def routing_state(ws: Workspace, model: str, alias: str) -> tuple[str | None, str | None]:
    """(the alias's version number, the live deployment id): what a server polls, in one query."""
    with ws.db.read() as conn:
        rows = conn.execute(
            select(pointers.c.kind, pointers.c.target).where(
                or_(
                    and_(pointers.c.kind == _ALIAS, pointers.c.name == f"{model}@{alias}"),
                    and_(pointers.c.kind == DEPLOYMENT, pointers.c.name == model),
                )
            )
        ).all()
    found = {str(k): str(t) for k, t in rows}
    return found.get(_ALIAS), found.get(DEPLOYMENT)


def deployment_history(ws: Workspace, model: str, limit: int = 50) -> list[Event]:
    """Starts, stops, promotions and rollbacks of ``model``'s deployments, newest first."""
    with ws.db.read() as conn:
        rows = conn.execute(
            select(events)
            .where(and_(events.c.kind == DEPLOYMENT, events.c.name == model))
            .order_by(events.c.id.desc())
            .limit(limit)
        ).all()
    return [event_from_row(r) for r in rows]
