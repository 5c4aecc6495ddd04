"""A small registry world shared by the CLI and lineage tests (one per test module)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import keel
from keel.registry.logging import log_model
from keel.registry.versions import promote, set_alias
from keel.workspace import Workspace
from tests.conftest import write_files
from tests.registry.helpers import EXAMPLE, Const, make_repo, wait_for


@dataclass
class World:
    root: Path
    ws: Workspace
    commit: str
    run_a: str  # in the git repo (uncommitted change), used customers@v1; made churn v1, v2
    run_b: str  # in the git repo, used customers@v1 and customers@v2; made churn v3
    run_c: str  # no code capture, no inputs; made churn v4 and fraud v1..v3
    digest_v1: str
    digest_v2: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("registry")
    ws = keel.init(tmp / "ws")
    repo = tmp / "repo"
    commit = make_repo(repo, {"train.py": "print('v1')\n"})
    data = write_files(tmp / "data", {"customers.csv": "id,spend\n1,10\n2,20\n"})
    d1 = keel.data.add(data / "customers.csv", name="customers", workspace=ws)
    (data / "customers.csv").write_text("id,spend\n1,10\n2,20\n3,30\n")
    d2 = keel.data.add(data / "customers.csv", name="customers", workspace=ws)
    assert (d1.number, d2.number) == (1, 2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEEL_USER", "alice")
        mp.chdir(repo)
        (repo / "train.py").write_text("print('v2')\n")  # an uncommitted change
        with keel.start_run(name="train-a", workspace=ws) as a:
            a.use("customers@v1")
            a.log_model(Const(1.0), "churn", input_example=EXAMPLE)
            a.log_model(Const(2.0), "churn", input_example=EXAMPLE)
        with keel.start_run(name="train-b", workspace=ws) as b:
            b.use("customers@v1")
            b.use("customers@v2")
            b.log_model(Const(3.0), "churn", input_example=EXAMPLE, message="more data")
        with keel.start_run(name="train-c", workspace=ws, capture_code=False) as c:
            c.log_model(Const(4.0), "churn", input_example=EXAMPLE)
            for value in (1.0, 2.0, 3.0):
                c.log_model(Const(value), "fraud", input_example=EXAMPLE)
        log_model(ws, Const(9.0), name="orphan", input_example=EXAMPLE)  # no run
        promote(ws, "churn", 2)
        promote(ws, "churn", 3, "beats v2 on value")
        set_alias(ws, "churn", 4, "canary", "try v4 on 5%")
    for r in (a, b, c):  # the environment is recorded in the background
        wait_for(lambda r=r: keel.get_run(r.id, workspace=ws).environment_oid)
    yield World(tmp / "ws", ws, commit, a.id, b.id, c.id, d1.digest, d2.digest)
    ws.close()
