"""The schema revision this keel expects. A leaf: importable without SQLAlchemy."""

from __future__ import annotations

__all__ = ["HEAD_REVISION", "KNOWN_REVISIONS"]

KNOWN_REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009")
HEAD_REVISION = KNOWN_REVISIONS[-1]
