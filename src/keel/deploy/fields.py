"""Fields outside a model's signature that its servers accept: declared once, kept for good.

A sticky key (a customer id to route canaries by) is usually no model input.
``keel serve MODEL --extra-field customer_id`` declares it: the declaration is a
pointer (``serve.fields/MODEL``, its moves in the event log), so every server
of the model, on any machine and after any restart, accepts the field and
logs it without giving it to the model, also after the keyed deployment that
needed it has ended: clients that keep sending it are never refused for it.

A keyed deployment can start only on a key the servers accept (in the
signature, or declared): otherwise every client that does not send it would be
refused while every status said fine.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.store.db import get_pointer, move_pointer

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from keel.workspace import Workspace

__all__ = ["FIELDS", "check_key", "declare_fields", "declared_fields"]

FIELDS = "serve.fields"
_MAX_TARGET = 300  # the pointers table's target column


def _read(conn: Connection, model: str) -> tuple[str, ...]:
    text = get_pointer(conn, FIELDS, model)
    return tuple(json.loads(text)) if text else ()


def declared_fields(ws: Workspace, model: str) -> tuple[str, ...]:
    """The extra fields declared for ``model``'s servers, sorted."""
    with ws.db.read() as conn:
        return _read(conn, model)


def declare_fields(ws: Workspace, model: str, fields: tuple[str, ...] | list[str]) -> None:
    """Add ``fields`` to what ``model``'s servers accept (nothing is written when none is new)."""
    from keel.registry.versions import model_id

    wanted = {f.strip() for f in fields}
    if "" in wanted:
        raise InvalidInput("invalid --extra-field '': expected the name of an input field")
    if not wanted or wanted <= set(declared_fields(ws, model)):
        return

    def txn(conn: Connection) -> None:
        model_id(conn, model, lock=True)  # concurrent declarations: one union after the other
        before = _read(conn, model)
        after = sorted(set(before) | wanted)
        text = json.dumps(after)
        if len(text) > _MAX_TARGET:
            raise InvalidInput(
                f"too many extra fields declared for {model} ({', '.join(after)}): at most "
                f"{_MAX_TARGET} characters of names in all"
            )
        added = ", ".join(sorted(set(after) - set(before)))
        move_pointer(conn, FIELDS, model, text, f"servers accept {added}", "declare")

    ws.db.write(txn)


def check_key(conn: Connection, model: str, key: str, signature: dict[str, Any] | None) -> None:
    """Refuse a sticky key the servers of ``model`` would refuse or not have (inside a txn)."""
    columns = {c["name"] for c in ((signature or {}).get("inputs") or {}).get("columns", [])}
    # a model served by entity key: requests carry the key its features are looked up by
    columns |= set(((signature or {}).get("features") or {}).get("entities", {}))
    if key in columns or key in _read(conn, model):
        return
    raise InvalidInput(
        f"no server of {model} accepts the sticky key {key!r}: it is not in the champion's "
        f"signature and was never declared, so every request would be refused. Start the "
        f"servers with `keel serve {model} --extra-field {key}`, have clients send {key!r}, "
        "then deploy again"
    )
