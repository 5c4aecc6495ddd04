"""Bring the schema to the head revision, once, however many processes try at once.

The fast path reads one row (``alembic_version``) and imports nothing more.
Only when the schema is behind does a process take a lock (a file lock next
to a SQLite database, an advisory lock on PostgreSQL), look again, and run
the Alembic migrations; the others wait and then find the work done. This is
what keeps parallel jobs on a fresh workspace from racing each other's DDL.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from keel.errors import StorageError
from keel.store.db.engine import Database
from keel.store.db.revision import HEAD_REVISION, KNOWN_REVISIONS

__all__ = ["HEAD_REVISION", "current_revision", "ensure_schema"]

_PG_LOCK_KEY = 0x6B65656C  # "keel"
MIGRATIONS = Path(__file__).parent / "migrations"


def current_revision(conn: Connection) -> str | None:
    try:
        with conn.begin_nested() if conn.in_transaction() else _null():
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except DBAPIError:
        return None
    return None if row is None else str(row[0])


@contextmanager
def _null() -> Iterator[None]:
    yield


def ensure_schema(db: Database) -> None:
    """Migrate ``db`` to :data:`HEAD_REVISION` if it is behind; safe to call from many processes."""
    with db.engine.connect() as conn:
        rev = current_revision(conn)
        conn.rollback()
    if rev == HEAD_REVISION:
        return
    _refuse_newer(rev)
    with _migration_lock(db):
        _upgrade(db)


def _refuse_newer(rev: str | None) -> None:
    if rev is not None and rev not in KNOWN_REVISIONS:
        raise StorageError(
            f"the metadata store is at schema revision {rev}, newer than this keel knows "
            f"({HEAD_REVISION}); upgrade keel"
        )


@contextmanager
def _migration_lock(db: Database) -> Iterator[None]:
    if db.is_sqlite:
        path = db.url.split("///", 1)[-1]
        lock_path = f"{path}.migrate.lock" if path and path != ":memory:" else None
        if lock_path is None:
            yield
            return
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    else:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()


def _upgrade(db: Database) -> None:
    with db.engine.connect() as conn:
        rev = current_revision(conn)
        conn.rollback()
        if rev == HEAD_REVISION:
            return  # another process finished while we waited for the lock
        _refuse_newer(rev)
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        conn = conn.execution_options(keel_write=True)
        with conn.begin():
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, HEAD_REVISION)
