"""The metadata store: records, pointers and the event log, on SQLite or PostgreSQL."""

from __future__ import annotations

from keel.store.db.engine import Database, normalize_url
from keel.store.db.migrate import HEAD_REVISION, current_revision, ensure_schema
from keel.store.db.pointers import Event, actor, get_pointer, history, move_pointer
from keel.store.db.schema import (
    dataset_versions,
    datasets,
    events,
    metadata,
    object_refs,
    pointers,
)

__all__ = [
    "HEAD_REVISION",
    "Database",
    "Event",
    "actor",
    "current_revision",
    "dataset_versions",
    "datasets",
    "ensure_schema",
    "events",
    "get_pointer",
    "history",
    "metadata",
    "move_pointer",
    "normalize_url",
    "object_refs",
    "pointers",
]
