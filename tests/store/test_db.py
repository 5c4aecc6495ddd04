"""The metadata store: migrations match the schema, migrate once under a race, pointers, retries."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, inspect, text
from sqlalchemy.exc import IntegrityError, OperationalError

from keel.errors import StorageError
from keel.store.db import (
    HEAD_REVISION,
    Database,
    current_revision,
    ensure_schema,
    get_pointer,
    history,
    metadata,
    move_pointer,
    normalize_url,
)

WORKERS = 8


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return _sqlite_url(tmp_path / "keel.db")


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A freshly migrated metadata store on each backend."""
    if request.param == "sqlite":
        url = _sqlite_url(tmp_path / "keel.db")
    else:
        url = request.getfixturevalue("pg_url")
    database = Database(url)
    ensure_schema(database)
    yield database
    database.dispose()


def _table_names(database: Database) -> set[str]:
    with database.engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def _revisions(database: Database) -> list[str]:
    with database.read() as conn:
        return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


# -- (a) the migrations create exactly the schema ----------------------------------------


def test_migrations_create_exactly_the_schema(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert _table_names(db) == set(metadata.tables) | {"alembic_version"}
    assert _revisions(db) == [HEAD_REVISION]


# -- (b) ensure_schema is idempotent and cheap when done ---------------------------------


def test_ensure_schema_is_idempotent(db):
    ensure_schema(db)
    ensure_schema(db)
    assert _revisions(db) == [HEAD_REVISION]
    with db.engine.connect() as conn:
        assert current_revision(conn) == HEAD_REVISION
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_current_revision_of_an_empty_database(sqlite_url):
    database = Database(sqlite_url)
    try:
        with database.engine.connect() as conn:
            assert current_revision(conn) is None
    finally:
        database.dispose()


def test_ensure_schema_fast_path_runs_no_migration(db):
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        ensure_schema(db)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    queries = [s for s in statements if s.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE")]
    assert queries == ["SELECT version_num FROM alembic_version"]


def test_ensure_schema_fast_path_imports_no_alembic(tmp_path):
    url = _sqlite_url(tmp_path / "keel.db")
    database = Database(url)
    ensure_schema(database)
    database.dispose()
    code = (
        "import sys\n"
        "from keel.store.db import Database, ensure_schema\n"
        f"db = Database({url!r})\n"
        "ensure_schema(db)\n"
        "db.dispose()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_ensure_schema_refuses_a_newer_schema(sqlite_url):
    database = Database(sqlite_url)
    try:
        ensure_schema(database)
        database.write(lambda c: c.execute(text("UPDATE alembic_version SET version_num='9999'")))
        with pytest.raises(StorageError, match="newer than this keel knows"):
            ensure_schema(database)
    finally:
        database.dispose()


# -- (c) many processes migrating one fresh database at once -----------------------------


# The child runs this source (through the builtin ``exec``, which spawn can pickle by name):
# pytest imports test modules under names a spawned interpreter cannot import again.
_RACE_WORKER = """
from keel.store.db import Database, ensure_schema

database = Database(url)
try:
    barrier.wait(timeout=60)
    ensure_schema(database)
except BaseException as exc:
    errors.put(f"{type(exc).__name__}: {exc}")
    raise
finally:
    database.dispose()
"""


def _race(url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    errors = ctx.Queue()
    scope = {"url": url, "barrier": barrier, "errors": errors}
    procs = [ctx.Process(target=exec, args=(_RACE_WORKER, scope)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    codes = [p.exitcode for p in procs]
    found = []
    while not errors.empty():
        found.append(errors.get())
    errors.close()
    errors.join_thread()
    assert codes == [0] * WORKERS, found
    assert found == []


def _assert_migrated_once(url: str) -> None:
    database = Database(url)
    try:
        assert _revisions(database) == [HEAD_REVISION]
        names = _table_names(database)
        assert not [n for n in names if n.startswith("_alembic_tmp")]
        assert names == set(metadata.tables) | {"alembic_version"}
        with database.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        database.dispose()


def test_parallel_ensure_schema_on_fresh_sqlite(tmp_path):
    path = tmp_path / "fresh.db"
    _race(_sqlite_url(path))
    _assert_migrated_once(_sqlite_url(path))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_parallel_ensure_schema_on_fresh_postgres(pg_url):
    _race(pg_url)
    _assert_migrated_once(pg_url)


# -- (d) pointers and the event log ------------------------------------------------------


def test_move_get_and_history(db, monkeypatch):
    monkeypatch.setenv("KEEL_USER", "ada")
    assert db.write(lambda c: get_pointer(c, "dataset.head", "churn")) is None

    first = db.write(lambda c: move_pointer(c, "dataset.head", "churn", "1", "first"))
    assert first is not None
    assert (first.actor, first.kind, first.name) == ("ada", "dataset.head", "churn")
    assert (first.from_target, first.to_target, first.message) == (None, "1", "first")

    second = db.write(lambda c: move_pointer(c, "dataset.head", "churn", "2"))
    assert second is not None and (second.from_target, second.to_target) == ("1", "2")
    assert second.id > first.id

    with db.read() as conn:
        assert get_pointer(conn, "dataset.head", "churn") == "2"
        assert get_pointer(conn, "model.alias", "churn") is None  # kinds are separate
        events = history(conn, "dataset.head", "churn")
        assert [e.to_target for e in events] == ["2", "1"]  # newest first
        assert events == [second, first]
        assert history(conn, "dataset.head", "churn", limit=1) == [second]
        assert history(conn, "dataset.head", "other") == []


def test_a_no_op_move_logs_nothing(db):
    db.write(lambda c: move_pointer(c, "dataset.head", "churn", "1"))
    assert db.write(lambda c: move_pointer(c, "dataset.head", "churn", "1", "again")) is None
    assert db.write(lambda c: move_pointer(c, "dataset.head", "ghost", None)) is None
    with db.read() as conn:
        assert len(history(conn, "dataset.head", "churn")) == 1
        assert history(conn, "dataset.head", "ghost") == []


def test_removing_a_pointer_logs_an_event(db):
    db.write(lambda c: move_pointer(c, "model.alias", "prod", "m1"))
    removed = db.write(lambda c: move_pointer(c, "model.alias", "prod", None, "retire"))
    assert removed is not None
    assert (removed.from_target, removed.to_target, removed.message) == ("m1", None, "retire")
    with db.read() as conn:
        assert get_pointer(conn, "model.alias", "prod") is None
        assert [(e.from_target, e.to_target) for e in history(conn, "model.alias", "prod")] == [
            ("m1", None),
            (None, "m1"),
        ]


def test_a_failed_transaction_moves_nothing(db):
    def move_then_fail(conn):
        move_pointer(conn, "dataset.head", "churn", "1")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        db.write(move_then_fail)
    with db.read() as conn:
        assert get_pointer(conn, "dataset.head", "churn") is None
        assert history(conn, "dataset.head", "churn") == []


def test_a_write_that_does_not_wait_for_the_disk_is_still_one_transaction(db):
    db.write(lambda conn: move_pointer(conn, "dataset.head", "churn", "1"), durable=False)

    def move_then_fail(conn):
        move_pointer(conn, "dataset.head", "churn", "2")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        db.write(move_then_fail, durable=False)
    with db.read() as conn:
        assert get_pointer(conn, "dataset.head", "churn") == "1"
        if db.is_sqlite:  # the pooled connection waits for the disk again
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        else:  # SET LOCAL ended with its transaction
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


# -- (e) Database.write retries and serialises writers -----------------------------------


def test_concurrent_increments_lose_no_update(sqlite_url):
    database = Database(sqlite_url)
    database.write(
        lambda c: c.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INT)"))
    )
    database.write(lambda c: c.execute(text("INSERT INTO counter VALUES (1, 0)")))

    def bump(conn) -> None:
        n = conn.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
        conn.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})

    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(200):
                database.write(bump)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with database.read() as conn:
            assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 400
    finally:
        database.dispose()


def _locked() -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))


def test_write_retries_transient_errors(sqlite_url, monkeypatch):
    monkeypatch.setattr("keel.store.db.engine.time.sleep", lambda s: None)
    database = Database(sqlite_url)
    calls = []

    def flaky(conn):
        calls.append(1)
        if len(calls) < 3:
            raise _locked()
        return "done"

    try:
        assert database.write(flaky) == "done"
        assert len(calls) == 3
    finally:
        database.dispose()


def test_write_gives_up_as_storage_error(sqlite_url, monkeypatch):
    monkeypatch.setattr("keel.store.db.engine.time.sleep", lambda s: None)
    database = Database(sqlite_url)
    calls = []

    def always_locked(conn):
        calls.append(1)
        raise _locked()

    def broken(conn):
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: nowhere"))

    try:
        with pytest.raises(StorageError, match="database is locked"):
            database.write(always_locked)
        assert len(calls) > 1
        calls.clear()
        with pytest.raises(StorageError, match="no such table"):
            database.write(broken)  # not transient: no retry
    finally:
        database.dispose()


def test_write_retries_integrity_errors_only_when_asked(sqlite_url, monkeypatch):
    monkeypatch.setattr("keel.store.db.engine.time.sleep", lambda s: None)
    database = Database(sqlite_url)
    calls = []

    def racing(conn):
        calls.append(1)
        if len(calls) == 1:
            raise IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
        return len(calls)

    try:
        assert database.write(racing, retry_integrity=True) == 2
        calls.clear()
        with pytest.raises(IntegrityError):
            database.write(racing)
        assert len(calls) == 1
    finally:
        database.dispose()


# -- (f) URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("sqlite:///tmp/keel.db", "sqlite:///tmp/keel.db"),
        ("sqlite://", "sqlite://"),
        ("mysql://u@h/db", "mysql://u@h/db"),
    ],
)
def test_normalize_url(url, expected):
    assert normalize_url(url) == expected
    assert normalize_url(expected) == expected


def test_database_normalizes_and_detects_sqlite(sqlite_url):
    database = Database(sqlite_url)
    assert database.is_sqlite
    assert database.url == sqlite_url
    database.dispose()
