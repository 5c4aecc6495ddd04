"""A public test harness for code that uses keel: run the CLI in-process, make workspaces.

>>> import tempfile
>>> ws = temp_workspace(tempfile.mkdtemp())
>>> result = invoke(["data", "list", "--json"], cwd=ws.root)
>>> result.exit_code, result.stdout.strip()
(0, '[]')
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from keel.workspace import Workspace, init

__all__ = ["CliResult", "invoke", "temp_workspace"]


@dataclass(frozen=True)
class CliResult:
    """What a ``keel`` command printed and how it exited."""

    exit_code: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _chdir(path: str | os.PathLike[str] | None) -> Iterator[None]:
    if path is None:
        yield
        return
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def invoke(args: Sequence[str], *, cwd: str | os.PathLike[str] | None = None) -> CliResult:
    """Run ``keel ARGS`` in this process, as the shell would, and capture its output."""
    from keel.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with _chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


def temp_workspace(path: str | os.PathLike[str]) -> Workspace:
    """A fresh workspace (SQLite + local objects) in ``path``."""
    return init(path)
