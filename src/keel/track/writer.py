"""Buffered metric writing: ``log_metric`` costs an append; a thread writes in batches.

Points go into one flat list, four items a point: the caller extends it with
a 4-tuple (one C call, atomic under the GIL, so threads never interleave),
and the flusher copies the first n items and deletes them (two C calls), so
no lock is needed and no point is lost or written twice. Columns then come
out with strided slices, in C.
A daemon thread wakes every ``flush_interval`` seconds, takes what is there
and writes it in one transaction: each metric's new points as one columnar
chunk (see :mod:`keel.track.chunks`), and its latest, lowest and highest
value into ``run_metrics``. The same thread beats the run's
heartbeat. On kill -9, at most the last flush interval of points is lost.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from sqlalchemy import Connection, select, update

from keel.store.db import Database, metric_chunks, metric_keys, run_metrics, runs
from keel.track.chunks import pack

__all__ = ["MetricWriter"]


class MetricWriter:
    """One run's point buffer and its flushing thread."""

    def __init__(
        self,
        db: Database,
        run_pk: int,
        *,
        flush_interval: float = 1.0,
        heartbeat_interval: float = 10.0,
    ) -> None:
        self.db = db
        self.run_pk = run_pk
        self.flush_interval = flush_interval
        self.heartbeat_interval = heartbeat_interval
        self.points: list[Any] = []  # key, step, timestamp, value, key, step, …
        self._key_ids: dict[str, int] = {}
        self._seq: dict[int, int] = {}  # key id -> next chunk number
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._last_beat = time.time()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="keel-metrics", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except BaseException as exc:  # noqa: BLE001 - kept and raised at the run's end
                self.error = exc

    def flush(self) -> int:
        """Write every buffered point now; returns how many were written."""
        with self._flush_lock:
            points = self.points
            n = len(points)  # a multiple of 4: each point arrives in one extend
            batch = points[:n]
            del points[:n]  # only this thread removes, and only from the front
            n //= 4
            now = time.time()
            beat = now - self._last_beat >= self.heartbeat_interval
            if not batch and not beat:
                return 0
            try:
                ids, seq = self.db.write(lambda conn: self._write(conn, batch, now))
            except BaseException:
                points[:0] = batch  # not written: back to the front, in order (one C call)
                raise
            # Only once committed: a retried transaction learns them again.
            self._key_ids.update(ids)
            self._seq.update(seq)
            self._last_beat = now
            return n

    def _ids(self, conn: Connection, keys: set[str]) -> dict[str, int]:
        ids = dict(self._key_ids)
        missing = keys - ids.keys()
        if missing:
            from sqlalchemy.dialects import postgresql, sqlite

            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            conn.execute(
                insert(metric_keys).on_conflict_do_nothing(index_elements=["key"]),
                [{"key": k} for k in sorted(missing)],
            )
            rows = conn.execute(
                select(metric_keys.c.key, metric_keys.c.id).where(metric_keys.c.key.in_(missing))
            )
            ids.update({str(k): int(i) for k, i in rows})
        return ids

    def _write(
        self, conn: Connection, batch: list[Any], now: float
    ) -> tuple[dict[str, int], dict[int, int]]:
        ids = self._key_ids
        seq = dict(self._seq)
        if batch:
            groups = _columns(batch)
            ids = self._ids(conn, set(groups))
            chunk_rows = []
            for key, (steps, stamps, values) in groups.items():
                kid = ids[key]
                n = seq.get(kid, 0)
                seq[kid] = n + 1
                s_blob, t_blob, v_blob = pack(steps, stamps, values)
                chunk_rows.append(
                    {
                        "run_pk": self.run_pk,
                        "key_id": kid,
                        "seq": n,
                        "count": len(steps),
                        "steps": s_blob,
                        "timestamps": t_blob,
                        "values": v_blob,
                    }
                )
                self._update_latest(conn, kid, steps, stamps, values)
            conn.execute(metric_chunks.insert(), chunk_rows)
        conn.execute(update(runs).where(runs.c.pk == self.run_pk).values(heartbeat_at=now))
        return ids, seq

    def _update_latest(
        self, conn: Connection, kid: int, steps: Any, stamps: Any, values: Any
    ) -> None:
        top = max(steps)
        last = len(steps) - 1
        if steps[last] != top:  # logged out of order: the latest is the highest (step, time)
            last = max(range(len(steps)), key=lambda i: (steps[i], stamps[i]))
        finite = values
        if math.isnan(sum(values)):  # only then look for NaN (sum is NaN iff a NaN, or inf - inf)
            finite = [v for v in values if v == v]
        lo = min(finite) if finite else None
        hi = max(finite) if finite else None
        step, ts, value = steps[last], stamps[last], values[last]
        stored = None if value != value else value
        old = conn.execute(
            select(run_metrics).where(
                run_metrics.c.run_pk == self.run_pk, run_metrics.c.key_id == kid
            )
        ).first()
        if old is None:
            conn.execute(
                run_metrics.insert().values(
                    run_pk=self.run_pk,
                    key_id=kid,
                    value=stored,
                    step=step,
                    ts=ts,
                    min_value=lo,
                    max_value=hi,
                    count=len(steps),
                )
            )
            return
        newer = (step, ts) >= (old.step, old.ts)
        conn.execute(
            update(run_metrics)
            .where(run_metrics.c.run_pk == self.run_pk, run_metrics.c.key_id == kid)
            .values(
                value=stored if newer else old.value,
                step=step if newer else old.step,
                ts=ts if newer else old.ts,
                min_value=_pick(min, old.min_value, lo),
                max_value=_pick(max, old.max_value, hi),
                count=old._mapping["count"] + len(steps),  # Row.count is tuple.count
            )
        )

    def close(self) -> None:
        """Stop the thread and write what is left. Raises what a background flush raised."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)
        self.flush()
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def _columns(batch: list[Any]) -> dict[str, tuple[Any, Any, Any]]:
    """Split a flat batch into (steps, timestamps, values) per metric, in C where possible."""
    keys, steps, stamps, values = batch[0::4], batch[1::4], batch[2::4], batch[3::4]
    first = keys[0]
    if keys.count(first) == len(keys):  # the common case: one metric in this flush
        return {first: (steps, stamps, values)}
    index: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        index.setdefault(key, []).append(i)
    return {
        key: ([steps[i] for i in rows], [stamps[i] for i in rows], [values[i] for i in rows])
        for key, rows in index.items()
    }


def _pick(fn: Any, a: float | None, b: float | None) -> float | None:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b
    if b is None:
        return a
    return float(fn(a, b))
