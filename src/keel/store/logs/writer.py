"""Buffered, atomic Parquet writing: rows in, whole segments out, off the caller's path."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from keel.store.logs.lake import STREAMS, hour_of

__all__ = ["LogWriter"]

_seq = itertools.count(1)


class _Batch:
    """Rows of one stream, model and column set, kept as columns (appending is a list extend)."""

    __slots__ = ("columns", "rows")

    def __init__(self, names: Sequence[str]) -> None:
        self.columns: dict[str, list[Any]] = {n: [] for n in names}
        self.rows = 0


class LogWriter:
    """Collects rows and writes them as Parquet segments every ``flush_seconds`` or ``max_rows``.

    ``append`` costs a few list extends under a lock; a daemon thread does the
    Parquet encoding and the file writes. ``close`` (and ``flush``) write what
    is buffered synchronously. A process killed with ``kill -9`` loses at most
    the rows of the last flush interval. If a write fails, its rows stay
    buffered for the next try, up to ``max_buffered`` rows; past that the
    oldest are dropped and counted in ``dropped``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        flush_seconds: float = 1.0,
        max_rows: int = 50_000,
        max_buffered: int = 2_000_000,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.flush_seconds = flush_seconds
        self.max_rows = max_rows
        self.max_buffered = max_buffered
        self.on_error = on_error
        self.written = 0
        self.dropped = 0
        self.segments = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._batches: dict[tuple[str, str, tuple[str, ...]], _Batch] = {}
        self._buffered = 0
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> LogWriter:
        """Start the background flusher (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="keel-log-writer", daemon=True)
            self._thread.start()
        return self

    def append(self, stream: str, model: str, columns: Mapping[str, Sequence[Any]]) -> None:
        """Buffer rows given as equal-length columns; ``columns["ts"]`` holds epoch seconds."""
        if stream not in STREAMS:
            raise ValueError(f"unknown log stream {stream!r}; expected one of {STREAMS}")
        n = len(columns["ts"])
        key = (stream, model, tuple(columns))
        with self._lock:
            batch = self._batches.get(key)
            if batch is None:
                batch = self._batches[key] = _Batch(key[2])
            for name, values in columns.items():
                batch.columns[name].extend(values)
            batch.rows += n
            self._buffered += n
            full = self._buffered >= self.max_rows
        if full:
            self._wake.set()

    @property
    def buffered(self) -> int:
        return self._buffered

    def flush(self) -> int:
        """Write everything buffered now; returns the rows written."""
        with self._flush_lock:
            with self._lock:
                batches, self._batches, self._buffered = self._batches, {}, 0
            written = 0
            failed: dict[tuple[str, str, tuple[str, ...]], _Batch] = {}
            for key, batch in batches.items():
                try:
                    self._write(key[0], key[1], batch)
                    written += batch.rows
                except Exception as exc:  # noqa: BLE001 - keep the rows; report, retry next time
                    failed[key] = batch
                    (self.on_error or _log_error)(exc)
            if failed:
                self._requeue(failed)
            self.written += written
            return written

    def _requeue(self, failed: dict[tuple[str, str, tuple[str, ...]], _Batch]) -> None:
        with self._lock:
            for key, old in failed.items():
                batch = self._batches.get(key)
                if batch is None:
                    self._batches[key] = old
                else:  # older rows first
                    for name, values in old.columns.items():
                        batch.columns[name][:0] = values
                    batch.rows += old.rows
                self._buffered += old.rows
            while self._buffered > self.max_buffered and self._batches:
                key = next(iter(self._batches))
                gone = self._batches.pop(key)
                self._buffered -= gone.rows
                self.dropped += gone.rows

    def _write(self, stream: str, model: str, batch: _Batch) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        columns = dict(batch.columns)
        ts = pa.array(columns.pop("ts"), pa.float64())
        table = pa.table(
            {
                "ts": pc.cast(pc.round(pc.multiply(ts, 1e6)), pa.int64()).cast(
                    pa.timestamp("us", tz="UTC")
                )
            }
            | {name: _column(values) for name, values in columns.items()}
        )
        hours = [hour_of(t) for t in (ts[0].as_py(), ts[len(ts) - 1].as_py())]
        if hours[0] == hours[1]:
            self._write_segment(pq, stream, model, hours[0], table)
            return
        labels = pa.array([hour_of(t) for t in ts.to_pylist()])
        for hour in sorted(set(labels.to_pylist())):
            self._write_segment(pq, stream, model, hour, table.filter(pc.equal(labels, hour)))

    def _write_segment(self, pq: Any, stream: str, model: str, hour: str, table: Any) -> None:
        folder = self.root / stream / f"model={model}" / f"hour={hour}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{int(time.time() * 1000)}-{os.getpid()}-{next(_seq):06d}.parquet"
        tmp = folder / f".{name}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, folder / name)
        self.segments += 1

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._buffered:
                self.flush()

    def close(self) -> None:
        """Stop the flusher and write what is left."""
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()


def _log_error(exc: BaseException) -> None:
    import logging

    logging.getLogger("keel.logs").error("writing a log segment failed (rows kept): %s", exc)


def _column(values: list[Any]) -> Any:
    """An Arrow array; a column whose values pyarrow cannot unify is kept as text."""
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
