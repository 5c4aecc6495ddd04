"""Tracking tests share one rule: no run stays active past the test that started it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_leftover_runs() -> Iterator[None]:
    from keel.track.run import _ACTIVE, _ACTIVE_LOCK

    yield
    with _ACTIVE_LOCK:
        left = list(reversed(_ACTIVE))
    for run in left:
        try:
            run.end("killed", error="left active by a test")
        except Exception:
            pass
    with _ACTIVE_LOCK:
        _ACTIVE.clear()
