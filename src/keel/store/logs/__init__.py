"""The log lake: prediction logs and outcomes as Parquet segments, partitioned by model and hour.

A :class:`LogWriter` buffers rows in memory and writes them as one segment per
stream, model and hour every flush interval (1 s by default) or when the
buffer grows past a row limit, off the caller's path. Segments are written to
a temporary name, synced, and renamed into place, so a reader sees whole
segments or nothing. :func:`scan` hands a DuckDB relation over the segments
(hive-partitioned, schemas unioned by name) to whoever asks a question of them.

Layout under ``.keel/logs/``::

    predictions/model=churn/hour=2026-12-02T01/1764640000123-4242-0001.parquet
    outcomes/model=churn/hour=2026-12-02T01/…
"""

from __future__ import annotations

from keel.store.logs.lake import LogLake, hour_of, parse_since, segment_glob
from keel.store.logs.writer import LogWriter

__all__ = ["LogLake", "LogWriter", "hour_of", "parse_since", "segment_glob"]
