"""Opening the metadata store: SQLite in WAL mode by default, PostgreSQL for teams.

Writers never see "database is locked": on SQLite a write transaction starts
with ``BEGIN IMMEDIATE`` (so it waits for the lock up front under a long busy
timeout instead of failing when it upgrades), and :meth:`Database.write`
retries a transaction that still lost a race.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from keel.errors import StorageError

__all__ = ["Database", "normalize_url"]

T = TypeVar("T")
_BUSY_MS = 120_000
_RETRIES = 12


def normalize_url(url: str) -> str:
    """Pick keel's drivers: ``postgresql://`` means psycopg 3.

    >>> normalize_url("postgresql://u@h/db")
    'postgresql+psycopg://u@h/db'
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _is_transient(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(
        s in text
        for s in ("database is locked", "deadlock detected", "could not serialize", "busy")
    )


class Database:
    """The metadata store behind one URL."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine: Engine = self._make_engine()
        # A forked child must not use its parent's pooled connections.
        os.register_at_fork(after_in_child=lambda: self.engine.dispose(close=False))

    def _make_engine(self) -> Engine:
        if not self.is_sqlite:
            if self.url.startswith("postgresql"):
                try:
                    import psycopg  # noqa: F401
                except ImportError as exc:
                    raise StorageError(
                        "a PostgreSQL metadata store needs psycopg: pip install 'keel-mlops[postgres]'"
                    ) from exc
            return create_engine(self.url, pool_pre_ping=True)
        # Pooled: opening and closing a connection per transaction made SQLite checkpoint and
        # delete the WAL each time (five fsyncs per metric flush instead of one).
        engine = create_engine(
            self.url,
            connect_args={"timeout": _BUSY_MS / 1000, "check_same_thread": False},
            pool_size=4,
            max_overflow=8,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # keel emits BEGIN itself (below)
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
            try:
                cur.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:  # another process is switching it; it persists
                pass
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("keel_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: a consistent snapshot."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def write(
        self,
        fn: Callable[[Connection], T],
        *,
        retry_integrity: bool = False,
        durable: bool = True,
    ) -> T:
        """Run ``fn`` in one write transaction, retrying transient lock conflicts.

        ``fn`` may run more than once, so it must only touch the database.
        With ``retry_integrity`` a unique-key race (two writers numbering the
        same version) is retried too. ``durable=False`` commits without waiting
        for the disk (SQLite ``synchronous=NORMAL``, PostgreSQL
        ``synchronous_commit=off``): for a record that a later durable write makes
        durable with it, as both logs are written in order. A killed process loses
        nothing; a power cut can lose the transaction whole, never part of it.
        """
        delay = 0.01
        for attempt in range(_RETRIES):
            try:
                with self.engine.connect() as conn:
                    conn = conn.execution_options(keel_write=True)
                    if durable:
                        with conn.begin():
                            return fn(conn)
                    return self._lazily(conn, fn)
            except IntegrityError:
                if not retry_integrity or attempt == _RETRIES - 1:
                    raise
            except (OperationalError, DBAPIError) as exc:
                if not _is_transient(exc) or attempt == _RETRIES - 1:
                    raise StorageError(f"metadata store error: {exc.orig}") from exc
            time.sleep(delay * (1 + random.random()))  # noqa: S311 - jitter, not security
            delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _lazily(self, conn: Connection, fn: Callable[[Connection], T]) -> T:
        if not self.is_sqlite:
            with conn.begin():
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                return fn(conn)
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA synchronous=NORMAL")  # outside the transaction, as SQLite asks
        try:
            with conn.begin():
                return fn(conn)
        finally:
            raw.execute("PRAGMA synchronous=FULL")  # the pool's connections stay durable

    def fetch_all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of one read statement (``?`` placeholders), on a pooled connection of the
        driver itself: a fraction of what SQLAlchemy's statement machinery costs, for a read
        on a request's path. One statement reads one snapshot."""
        if self.engine.dialect.paramstyle in ("format", "pyformat"):
            sql = sql.replace("?", "%s")
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(sql, tuple(params))
                rows = cursor.fetchall()
            finally:
                cursor.close()
            if not self.is_sqlite:
                raw.rollback()  # end the read the driver began
            return list(rows)
        finally:
            raw.close()  # back to the pool

    def dispose(self) -> None:
        self.engine.dispose()
