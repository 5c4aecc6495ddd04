"""Helpers for the registry tests: a tiny model, version logging, child processes, git repos."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import keel
from keel.registry.versions import ModelVersion
from keel.store.db import Event
from keel.workspace import Workspace
from tests.track.helpers import make_repo as make_repo  # one way to make a test repository

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]


class Const(keel.PythonModel):
    """Predicts the same number for every row: cheap to save, and its value tells versions apart."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, inputs: Any) -> Any:
        return [self.value] * len(inputs)


EXAMPLE = [{"x": 1.0}, {"x": 2.0}]


def log_versions(ws: Workspace, name: str, count: int, start: float = 1.0) -> list[ModelVersion]:
    """``count`` new versions of ``name`` (each predicting its own constant), from one run."""
    with keel.start_run(workspace=ws, capture_code=False) as run:
        return [run.log_model(Const(start + i), name, input_example=EXAMPLE) for i in range(count)]


def child_env(root: Path) -> dict[str, str]:
    """The environment of a child process working in the workspace at ``root``."""
    env = {**os.environ, "KEEL_HOME": str(root), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("KEEL_DEBUG", None)
    return env


def start_python(code: str, root: Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """Start ``python -c code args…`` against the workspace at ``root``."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=child_env(root),
        text=True,
        **popen,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{err}"
    return out or ""


def wait_for(fn: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.02) -> T:
    """Poll ``fn`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def one_error_line(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The command failed with ``code`` and printed exactly one ``keel: error:`` line."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{proc.stderr}"
    assert lines[0].startswith("keel: error: "), lines[0]
    return lines[0]


def chain_is_consistent(moves: list[Event]) -> None:
    """Per alias, oldest first: each move starts where the one before it ended."""
    by_alias: dict[str, list[Event]] = {}
    for e in sorted(moves, key=lambda e: e.id):
        by_alias.setdefault(e.name, []).append(e)
    for alias, seq in by_alias.items():
        assert seq[0].from_target is None, (alias, seq[0])
        for before, after in itertools.pairwise(seq):
            assert after.from_target == before.to_target, (alias, before, after)
            assert after.from_target != after.to_target, (alias, after)
