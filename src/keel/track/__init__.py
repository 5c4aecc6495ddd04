"""Experiment tracking: runs that record code, data, params, environment and results.

``start_run`` records the code (commit, uncommitted patch, untracked files)
and environment at once, and what you log as you go; metrics are buffered
and written in batches off the caller's path. ``get_run`` and
``search_runs`` read runs back; ``reproduce`` re-runs one from its record.
"""

from __future__ import annotations

from keel.track.keys import KEY_RULE, check_key
from keel.track.query import FilterSyntaxError, parse_filter
from keel.track.run import Run, active_run, start_run

__all__ = [
    "KEY_RULE",
    "FilterSyntaxError",
    "Run",
    "active_run",
    "check_key",
    "parse_filter",
    "start_run",
]
