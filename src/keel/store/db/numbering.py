"""Named things with numbered versions: claim the name, lock it, take the next number.

Datasets and models both keep immutable versions numbered 1, 2, 3 per name.
Two writers adding to one name at once must get distinct, gapless numbers:
the name's row is created if missing (a no-op when it exists), then locked
for the rest of the transaction (``FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serializes writers), and the next number is read
under that lock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, Table, func, select

__all__ = ["claim_name", "next_number"]


def claim_name(conn: Connection, table: Table, name: str, **values: Any) -> int:
    """The id of ``table``'s row named ``name`` (created with ``values`` if missing), locked."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        insert(table).values(name=name, **values).on_conflict_do_nothing(index_elements=["name"])
    )
    return int(
        conn.execute(select(table.c.id).where(table.c.name == name).with_for_update()).scalar_one()
    )


def next_number(conn: Connection, number: Column[Any], owner: Column[Any], owner_id: int) -> int:
    """One past the highest ``number`` of ``owner_id`` (1 for the first)."""
    return (
        int(
            conn.execute(
                select(func.coalesce(func.max(number), 0)).where(owner == owner_id)
            ).scalar_one()
        )
        + 1
    )
