"""The metadata store: records, pointers and the event log, on SQLite or PostgreSQL.

Names load on first use: ``keel.store.db.peek`` must stay importable without
SQLAlchemy (it answers "is this data unchanged?" faster than SQLAlchemy imports).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.store.db.engine import Database, normalize_url
    from keel.store.db.migrate import HEAD_REVISION, current_revision, ensure_schema
    from keel.store.db.moves import (
        Event,
        actor,
        event_from_row,
        get_pointer,
        history,
        move_pointer,
    )
    from keel.store.db.schema import (
        dataset_versions,
        datasets,
        deployments,
        drift_reports,
        evaluations,
        events,
        feature_lineage,
        feature_view_versions,
        feature_views,
        metadata,
        metric_chunks,
        metric_keys,
        model_versions,
        models,
        object_refs,
        online_builds,
        online_features,
        pointers,
        run_artifacts,
        run_inputs,
        run_metrics,
        run_params,
        run_tags,
        runs,
    )

__all__ = [
    "HEAD_REVISION",
    "Database",
    "Event",
    "actor",
    "current_revision",
    "dataset_versions",
    "datasets",
    "deployments",
    "drift_reports",
    "ensure_schema",
    "evaluations",
    "event_from_row",
    "events",
    "feature_lineage",
    "feature_view_versions",
    "feature_views",
    "get_pointer",
    "history",
    "loop_attempts",
    "loop_events",
    "loop_leases",
    "metadata",
    "metric_chunks",
    "metric_keys",
    "model_versions",
    "models",
    "move_pointer",
    "normalize_url",
    "object_refs",
    "online_builds",
    "online_features",
    "pointers",
    "run_artifacts",
    "run_inputs",
    "run_metrics",
    "run_params",
    "run_tags",
    "runs",
]

_WHERE = {
    "Database": "engine",
    "normalize_url": "engine",
    "HEAD_REVISION": "migrate",
    "current_revision": "migrate",
    "ensure_schema": "migrate",
    "Event": "moves",
    "actor": "moves",
    "event_from_row": "moves",
    "get_pointer": "moves",
    "history": "moves",
    "move_pointer": "moves",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None and name in __all__:
        module = "schema"  # every table
    if module is None:
        raise AttributeError(f"module 'keel.store.db' has no attribute {name!r}")
    return getattr(importlib.import_module(f"keel.store.db.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
