"""Where segments live, and reading them back with DuckDB."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

__all__ = ["STREAMS", "LogLake", "hour_of", "parse_since", "segment_glob"]

STREAMS = ("predictions", "outcomes")


def hour_of(ts: float) -> str:
    """The hour partition a timestamp (seconds since the epoch, UTC) falls in.

    >>> hour_of(0.0), hour_of(1764640000.0)
    ('1970-01-01T00', '2025-12-02T01')
    """
    return time.strftime("%Y-%m-%dT%H", time.gmtime(ts))


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> float:
    """``90s``, ``15m``, ``1h``, ``2d``, ``1w`` before now, or an ISO time (UTC unless it says).

    >>> parse_since("1h", now=7200.0), parse_since("1970-01-01T01:00:00")
    (3600.0, 3600.0)
    """
    from datetime import UTC, datetime

    from keel.errors import InvalidInput

    raw = text.strip()
    now = time.time() if now is None else now
    number, unit = raw[:-1], raw[-1:].lower()
    # ASCII digits only: str.isdigit() takes "²", which float() refuses
    if unit in _UNITS and re.fullmatch(r"(?=.*[0-9])[0-9]*\.?[0-9]*", number):
        return now - float(number) * _UNITS[unit]
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            f"invalid time {text!r}: expected a duration such as 90s, 15m, 1h, 2d, 1w "
            "or an ISO time such as 2026-12-01T09:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def segment_glob(root: Path, stream: str, model: str) -> str:
    return str(root / stream / f"model={model}" / "hour=*" / "*.parquet")


@dataclass(frozen=True)
class LogLake:
    """The log lake under one folder (``.keel/logs``)."""

    root: Path

    def has(self, stream: str, model: str) -> bool:
        folder = self.root / stream / f"model={model}"
        return folder.is_dir() and any(folder.glob("hour=*/*.parquet"))

    def segments(self, stream: str, model: str, since: float | None = None) -> list[Path]:
        """Segment files of one model, oldest hour first, from the hour ``since`` falls in."""
        folder = self.root / stream / f"model={model}"
        if not folder.is_dir():
            return []
        first = f"hour={hour_of(since)}" if since is not None else ""
        hours = sorted(
            p for p in folder.iterdir() if p.name.startswith("hour=") and p.name >= first
        )
        return [seg for h in hours for seg in sorted(h.glob("*.parquet"))]

    def scan(
        self,
        stream: str,
        model: str,
        since: float | None = None,
        conn: duckdb.DuckDBPyConnection | None = None,
    ) -> duckdb.DuckDBPyRelation | None:
        """A DuckDB relation over the stream's rows (``ts >= since``), or None when there are none.

        Segments of different schemas (model versions with other inputs) are
        unioned by column name.
        """
        import duckdb

        files = self.segments(stream, model, since)
        if not files:
            return None
        db = conn if conn is not None else duckdb.connect()
        rel = db.read_parquet([str(f) for f in files], union_by_name=True)
        if since is not None:
            rel = rel.filter(f"ts >= to_timestamp({float(since)!r})")
        return rel

    def to_arrow(self, stream: str, model: str, since: float | None = None) -> Any:
        """The rows as a pyarrow Table (empty when there are none)."""
        rel = self.scan(stream, model, since)
        if rel is None:
            import pyarrow as pa

            return pa.table({})
        return rel.to_arrow_table()
