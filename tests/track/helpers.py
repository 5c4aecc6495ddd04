"""Helpers shared by the tracking tests: throwaway git repositories and polling."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.conftest import run_keel

T = TypeVar("T")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "keel tests",
    "GIT_AUTHOR_EMAIL": "tests@keel.invalid",
    "GIT_COMMITTER_NAME": "keel tests",
    "GIT_COMMITTER_EMAIL": "tests@keel.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return its stdout; fail loudly."""
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def make_repo(repo: Path, files: dict[str, str], branch: str = "main") -> str:
    """A git repository with ``files`` committed on ``branch``; returns the commit."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", branch)
    for rel, text in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return git(repo, "rev-parse", "HEAD")


def wait_for(fn: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll ``fn`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def keel_ok(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    """Run keel, insist it succeeded, and return the parsed JSON when --json was given."""
    proc = run_keel(*args, cwd=cwd, env=env)
    assert proc.returncode == 0, f"keel {' '.join(args)} -> {proc.returncode}\n{proc.stderr}"
    return json.loads(proc.stdout) if "--json" in args else proc.stdout


def one_error_line(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The command failed with ``code`` and printed exactly one ``keel: error:`` line."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{proc.stderr}"
    assert lines[0].startswith("keel: error: "), lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


def keel_many(
    calls: list[tuple[str, ...]], cwd: Path, workers: int = 4
) -> list[subprocess.CompletedProcess[str]]:
    """Run several independent keel commands at once (each start costs a Python import)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda args: run_keel(*args, cwd=cwd), calls))
