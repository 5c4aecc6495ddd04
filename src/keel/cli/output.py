"""Formatting for the terminal: JSON for machines, tables and progress bars for people."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from keel.store.jsondoc import plain

__all__ = ["ago", "counted", "emit_json", "human_size", "progress_bar", "table", "when"]


def emit_json(doc: Any) -> None:
    """Indented for a person at a terminal; compact (and encoded in C, so fast) for a program."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(doc, indent=indent, default=plain, allow_nan=True) + "\n")


def human_size(n: float) -> str:
    """Bytes as a person reads them.

    >>> human_size(1536), human_size(12)
    ('1.5 KiB', '12 B')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def counted(n: int, word: str) -> str:
    """``1 file``, ``2 files``, ``1,204 files``.

    >>> counted(1, "file"), counted(1204, "file")
    ('1 file', '1,204 files')
    """
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def ago(ts: float, now: float | None = None) -> str:
    if ts <= 0:  # no time recorded
        return "-"
    now = dt.datetime.now().timestamp() if now is None else now
    s = max(0.0, now - ts)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if s >= size:
            return f"{int(s // size)}{unit} ago"
    return f"{int(s)}s ago"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, header_style="bold", box=None, pad_edge=False)
    for h in headers:
        t.add_column(h, overflow="fold")
    for row in rows:
        t.add_row(*(str(c) for c in row))
    # to a terminal, as wide as it is; piped (grep, awk, a file), never wrapped: an id or
    # an alias cut in two is no longer found
    width = None if sys.stdout.isatty() else 100_000
    Console(soft_wrap=True, width=width).print(t)


@contextmanager
def progress_bar(description: str, *, unit: str = "bytes", show: bool = True) -> Iterator[Any]:
    """Yield a ``(done, total)`` callback drawing a bar on stderr when it is a terminal."""
    if not (show and sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns: list[Any] = [BarColumn()]
    columns += (
        [DownloadColumn(binary_units=True), TransferSpeedColumn()]
        if unit == "bytes"
        else [MofNCompleteColumn()]
    )
    with Progress(
        "[progress.description]{task.description}",
        *columns,
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
