"""The load cache: a skops model is loaded without importing skops once it was rebuilt.

skops imports every estimator module of scikit-learn before it loads anything, most of
a short command's time. keel keeps a pickle of the model skops rebuilt (at logging, from
the round trip it checks, or at a first load) and unpickles that while Python and the
frameworks are the versions it was made under. The original files are still verified on
every load; a cache object altered on disk is refused by its digest and never run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

import keel
from keel.errors import CorruptObject
from keel.registry import loading
from keel.registry.versions import ModelVersion
from keel.store.db import object_refs
from keel.store.gc import collect
from keel.store.objects import Tree
from keel.store.verify import verify
from keel.workspace import Workspace

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]})
Y = np.array([0, 0, 1, 1, 1, 0])


@pytest.fixture
def logged(ws: Workspace) -> ModelVersion:
    from sklearn.linear_model import LogisticRegression

    with keel.start_run(workspace=ws, capture_code=False) as run:
        mv = run.log_model(LogisticRegression().fit(X, Y), "m", input_example=X)
    assert mv.format == "skops"
    return mv


def _entries(ws: Workspace) -> list[Any]:
    with ws.db.read() as conn:
        return list(
            conn.execute(
                select(object_refs.c.owner_id, object_refs.c.role, object_refs.c.oid).where(
                    object_refs.c.owner_kind == "model_load"
                )
            )
        )


def _place(path: Path, data: bytes) -> None:
    os.chmod(path, 0o644)  # objects are read-only on disk
    path.write_bytes(data)
    os.chmod(path, 0o444)


LOAD = textwrap.dedent(
    """
    import sys, numpy as np, pandas as pd, keel
    m = keel.load_model("m/v1")  # the workspace of the current folder
    x = pd.DataFrame({"a": [0.5, 4.5], "b": [1.0, 0.0]})
    print("skops.io" in sys.modules, list(np.round(m.predict_proba(x)[:, 1], 12)))
    """
)


def _load_in_a_new_process(ws: Workspace) -> tuple[bool, str]:
    out = subprocess.run(
        [sys.executable, "-c", LOAD], cwd=ws.root, capture_output=True, text=True, check=True
    )
    imported, probabilities = out.stdout.strip().split(" ", 1)
    return imported == "True", probabilities


def _forget(ws: Workspace) -> None:
    ws.db.write(
        lambda conn: conn.execute(
            object_refs.delete().where(object_refs.c.owner_kind == "model_load")
        )
    )


def test_logging_keeps_the_rebuilt_model_and_loads_skip_skops(
    ws: Workspace, logged: ModelVersion
) -> None:
    (entry,) = _entries(ws)
    assert entry.owner_id == logged.oid and len(entry.role) == 32
    imported, cached = _load_in_a_new_process(ws)
    assert not imported
    # The same model as skops rebuilds it: without the entry, the original format loads.
    _forget(ws)
    imported, original = _load_in_a_new_process(ws)
    assert imported and original == cached
    assert len(_entries(ws)) == 1  # and the first load puts an entry back


def test_the_cache_is_kept_by_gc_and_checked_by_verify(ws: Workspace, logged: ModelVersion) -> None:
    (entry,) = _entries(ws)
    with ws.collecting_garbage():
        report = collect(ws.db, ws.objects)
    assert entry.oid not in report.objects and ws.objects.has(entry.oid)
    assert verify(ws.db, ws.objects).ok


def test_an_altered_original_is_refused_even_with_a_cache(
    ws: Workspace, logged: ModelVersion
) -> None:
    (file_entry,) = list(Tree.decode(ws.objects.get(logged.oid)))
    path = ws.objects.path(file_entry.oid)  # type: ignore[attr-defined]
    _place(path, path.read_bytes() + b"x")
    with pytest.raises(CorruptObject):
        keel.load_model("m/v1", workspace=ws)


def test_an_altered_cache_is_never_run_and_the_original_loads(
    ws: Workspace, logged: ModelVersion, tmp_path: Path
) -> None:
    from tests.registry.test_safety import crafted

    (entry,) = _entries(ws)
    marker = tmp_path / "pwned"
    _place(ws.objects.path(entry.oid), crafted(marker))  # type: ignore[attr-defined]
    model = keel.load_model("m/v1", workspace=ws)
    assert not marker.exists()
    assert list(model.predict(X)) == list(logged.load().predict(X))


def test_another_environment_loads_the_original_and_takes_the_entry_over(
    ws: Workspace, logged: ModelVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    (before,) = _entries(ws)
    monkeypatch.setattr(loading, "_environment", lambda version: "e" * 32)
    calls: list[int] = []
    flavor = loading.get_flavor("sklearn")
    original = flavor.load
    monkeypatch.setattr(
        type(flavor), "load", lambda self, saved: calls.append(1) or original(saved)
    )
    keel.load_model("m/v1", workspace=ws)
    keel.load_model("m/v1", workspace=ws)
    assert calls == [1]  # skops once, then the new entry
    (after,) = _entries(ws)
    assert after.role == "e" * 32 and after.owner_id == before.owner_id


def test_a_cache_that_cannot_be_written_costs_only_speed(
    ws: Workspace, logged: ModelVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.errors import StorageError

    _forget(ws)

    def refuse(data: bytes) -> str:
        raise StorageError("read-only object store")

    monkeypatch.setattr(ws.objects, "put", refuse)
    expected = logged.load().predict(X)  # loads skops too: the cache is still not written
    assert list(keel.load_model("m/v1", workspace=ws).predict(X)) == list(expected)
    assert _entries(ws) == []


def test_on_postgresql_too(pg_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.linear_model import LogisticRegression

    with keel.start_run(workspace=pg_ws, capture_code=False) as run:
        mv = run.log_model(LogisticRegression().fit(X, Y), "m", input_example=X)
    assert [e.owner_id for e in _entries(pg_ws)] == [mv.oid]
    flavor = loading.get_flavor("sklearn")
    monkeypatch.setattr(type(flavor), "load", lambda self, saved: pytest.fail("skops loaded"))
    assert list(keel.load_model("m/v1", workspace=pg_ws).predict(X)) == list(
        LogisticRegression().fit(X, Y).predict(X)
    )
