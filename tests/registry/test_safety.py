"""Safe loading: a model file crafted to run code when unpickled is never executed.

The crafted bytes are a real exploit (checked first, on its own): unpickling
them writes a marker file. Put in place of a model's file object, keel must
refuse on the digest before deserializing; put at their own digest path, no
record names them, so nothing ever loads them.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import keel
from keel.errors import CorruptObject
from keel.registry.versions import ModelVersion
from keel.store.objects import Tree, hash_bytes
from keel.store.verify import reachable, verify
from keel.workspace import Workspace
from tests.conftest import run_keel
from tests.registry.helpers import EXAMPLE, Const

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
Y = np.array([0, 0, 1, 1])


class Exploit:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        code = f"with open({self.marker!r}, 'w') as f: f.write('pwned')"
        return (exec, (code,))


def crafted(marker: Path) -> bytes:
    return pickle.dumps(Exploit(marker), protocol=5)


def test_the_crafted_bytes_really_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "control"
    pickle.loads(crafted(marker))  # proving the exploit works
    assert marker.read_text() == "pwned"


def _python_model() -> tuple[Any, Any]:
    return Const(3.0), EXAMPLE


def _sklearn_pickle() -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X, Y)
    model.pattern_ = re.compile("x")  # skops refuses this: saved with pickle
    return model, X


def _sklearn_skops() -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(X, Y), X


MODELS: dict[str, tuple[Callable[[], tuple[Any, Any]], str]] = {
    "python": (_python_model, "pickle"),
    "sklearn-pickle": (_sklearn_pickle, "pickle"),
    "sklearn-skops": (_sklearn_skops, "skops"),
}


@pytest.fixture(params=list(MODELS))
def logged(request: pytest.FixtureRequest, ws: Workspace) -> tuple[ModelVersion, Any, Any]:
    build, fmt = MODELS[request.param]
    model, example = build()
    with keel.start_run(workspace=ws, capture_code=False) as run:
        mv = run.log_model(model, "m", input_example=example)
    assert mv.format == fmt
    return mv, model, example


def _model_file(ws: Workspace, mv: ModelVersion) -> str:
    (entry,) = list(Tree.decode(ws.objects.get(mv.oid)))
    assert entry.path.startswith("model.")
    return entry.oid


def _place(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.chmod(path, 0o644)  # objects are read-only on disk
    path.write_bytes(data)
    os.chmod(path, 0o444)


def test_crafted_pickle_in_place_of_the_model_is_never_run(
    ws: Workspace, tmp_path: Path, logged: tuple[ModelVersion, Any, Any]
) -> None:
    mv, _model, _example = logged
    marker = tmp_path / "pwned"
    oid = _model_file(ws, mv)
    _place(ws.objects.path(oid), crafted(marker))  # type: ignore[attr-defined]
    with pytest.raises(CorruptObject) as info:
        keel.load_model("m/v1", workspace=ws)
    assert info.value.oid == oid
    assert "corrupt" in str(info.value) and oid in str(info.value)
    with pytest.raises(CorruptObject):
        mv.load()
    with pytest.raises(CorruptObject):
        keel.load_model("m", workspace=ws)
    assert not marker.exists()
    report = verify(ws.db, ws.objects)
    assert not report.ok
    assert [(c["oid"], c["used_by"]) for c in report.corrupt] == [(oid, ["m/v1"])]
    assert not marker.exists()


def test_keel_verify_names_the_object_and_the_version(
    ws: Workspace, tmp_path: Path, logged: tuple[ModelVersion, Any, Any]
) -> None:
    mv, _model, _example = logged
    marker = tmp_path / "pwned"
    oid = _model_file(ws, mv)
    _place(ws.objects.path(oid), crafted(marker))  # type: ignore[attr-defined]
    proc = run_keel("verify", cwd=ws.root)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if oid in line]
    assert len(lines) == 1 and "corrupt" in lines[0] and "m/v1" in lines[0], proc.stdout
    assert "PROBLEMS FOUND" in proc.stdout
    assert not marker.exists()


def test_crafted_pickle_at_its_own_digest_changes_nothing(
    ws: Workspace, tmp_path: Path, logged: tuple[ModelVersion, Any, Any]
) -> None:
    mv, model, example = logged
    marker = tmp_path / "pwned"
    data = crafted(marker)
    evil = hash_bytes(data)
    _place(ws.objects.path(evil), data)  # type: ignore[attr-defined]
    assert ws.objects.has(evil)
    # no record names it, directly or through a tree
    assert evil not in reachable(ws.db, ws.objects).objects
    assert evil != _model_file(ws, mv)
    # the real model still loads and predicts as before
    loaded = keel.load_model("m@latest", workspace=ws)
    assert loaded.ref == "m/v1"
    expected = model.predict(example)
    np.testing.assert_array_equal(np.asarray(loaded.predict(example)), np.asarray(expected))
    assert verify(ws.db, ws.objects).ok  # whole bytes, simply unused
    assert not marker.exists()
