"""Shared fixtures: workspaces on SQLite (always) and PostgreSQL (when KEEL_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import keel
from keel.workspace import Workspace

KEEL = str(Path(sys.executable).with_name("keel"))
PG_SKIP = "KEEL_TEST_POSTGRES_URL is not set (CI sets it; start PostgreSQL to run these here)"


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """A fresh embedded workspace (SQLite + a local object folder)."""
    workspace = keel.init(tmp_path / "ws")
    yield workspace
    workspace.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped afterwards."""
    base = os.environ.get("KEEL_TEST_POSTGRES_URL")
    if not base:
        pytest.skip(PG_SKIP)
    from sqlalchemy import create_engine, text

    from keel.store.db import normalize_url

    base = normalize_url(base)
    name = f"keel_test_{secrets.token_hex(6)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_ws(tmp_path: Path, pg_url: str) -> Iterator[Workspace]:
    """A workspace whose metadata store is a fresh PostgreSQL database."""
    root = tmp_path / "pgws"
    (root / ".keel").mkdir(parents=True)
    (root / ".keel" / "config.toml").write_text(f'[metadata]\nurl = "{pg_url}"\n')
    workspace = keel.init(root)
    yield workspace
    workspace.close()


def run_keel(
    *args: str, cwd: Path | str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real `keel` executable."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("KEEL_DEBUG", None)
    return subprocess.run(
        [KEEL, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def write_files(root: Path, files: dict[str, bytes | str]) -> Path:
    """Create files under ``root`` from a {relative path: content} mapping."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    return root


def age(path: Path, seconds: float = 10.0) -> None:
    """Backdate every file under ``path`` so the stat cache trusts it (it distrusts fresh mtimes)."""
    import time

    past = time.time() - seconds
    targets = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for p in targets:
        os.utime(p, (past, past))
