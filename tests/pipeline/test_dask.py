"""The Dask executor on a real ``LocalCluster`` (worker processes on 127.0.0.1): the same
results and records as the local executor, independent steps side by side, task keys
that are cache keys, failures that stop only what follows them, and the CLI's flags."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from keel.errors import InvalidInput
from keel.store.db import run_tags, runs
from keel.workspace import Workspace
from tests.conftest import run_keel
from tests.pipeline.test_pipeline import FLOWS, _statuses, flows  # noqa: F401 - a fixture

distributed = pytest.importorskip(
    "distributed", reason="the dask executor needs keel-mlops[dask] (make test installs it)"
)

WIDE = '''
import time
from keel.pipeline import pipeline, step


@step
def seed(n: int = 3):
    return list(range(n))


def branch(values, pause, by):
    time.sleep(pause)
    return [v * by for v in values]


@step
def a(seed, pause: float = 0.6):
    return branch(seed, pause, 2)


@step
def b(seed, pause: float = 0.6):
    return branch(seed, pause, 3)


@step(cache=False)
def stamp(seed):
    return time.time()


@step
def total(a, b):
    return {"total": sum(a) + sum(b)}


wide = pipeline("wide", [seed, a, b, stamp, total])
'''


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as made:
        yield made


@pytest.fixture
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster.scheduler_address) as made:
        yield made


def _children(ws: Workspace, parent: str) -> dict[str, tuple[str, float, float]]:
    with ws.db.read() as conn:
        rows = conn.execute(
            select(runs.c.name, runs.c.status, runs.c.created_at, runs.c.ended_at)
            .join(run_tags, run_tags.c.run_pk == runs.c.pk)
            .where(run_tags.c.key == "keel.parent", run_tags.c.value == parent)
        ).all()
    return {r.name.split(".", 1)[1]: (r.status, r.created_at, r.ended_at) for r in rows}


def test_dask_gives_the_local_executors_results_and_records(
    ws: Workspace, flows: Any, cluster: Any  # noqa: F811
) -> None:
    mod = flows()
    on_dask = mod.flow.run(workspace=ws, executor="dask", scheduler=cluster.scheduler_address)
    assert on_dask.status == "finished", on_dask.error
    assert _statuses(on_dask) == dict.fromkeys(["load", "features", "train", "report"], "finished")
    assert mod.CALLS == []  # the steps ran on the workers, not here
    assert on_dask.output("report") == {"rows": 6, "weight": 3.0}
    with ws.db.read() as conn:
        where = conn.execute(
            select(run_tags.c.value)
            .join(runs, runs.c.pk == run_tags.c.run_pk)
            .where(runs.c.id == on_dask.run, run_tags.c.key == "keel.executor")
        ).scalar()
    assert where == f"dask {cluster.scheduler_address}"
    children = _children(ws, on_dask.run)
    assert {k: v[0] for k, v in children.items()} == dict.fromkeys(
        ["load", "features", "train", "report"], "finished"
    )
    # the local executor finds every step in the cache the workers wrote, and so does Dask
    local = flows().flow.run(workspace=ws)
    assert set(_statuses(local).values()) == {"cached"}
    assert [s.run for s in local.steps] == [s.run for s in on_dask.steps]
    again = flows().flow.run(workspace=ws, executor="dask", scheduler=cluster.scheduler_address)
    assert set(_statuses(again).values()) == {"cached"}


def test_a_changed_parameter_reruns_on_the_workers_only_what_depends_on_it(
    ws: Workspace, flows: Any, cluster: Any  # noqa: F811
) -> None:
    flows().flow.run(workspace=ws, executor="dask", scheduler=cluster.scheduler_address)
    result = flows().flow.run(
        {"lr": 0.5}, workspace=ws, executor="dask", scheduler=cluster.scheduler_address
    )
    assert _statuses(result) == {
        "load": "cached", "features": "cached", "train": "finished", "report": "finished"
    }  # fmt: skip
    assert result.output("train")["weight"] == 15.0


def test_independent_steps_run_side_by_side_and_task_keys_are_cache_keys(
    ws: Workspace, flows: Any, client: Any  # noqa: F811
) -> None:
    mod = flows(WIDE)
    address = client.scheduler.address
    with distributed.get_task_stream(client) as stream:
        result = mod.wide.run(workspace=ws, executor="dask", scheduler=address)
    assert result.status == "finished", result.error
    assert result.output("total") == {"total": 15}
    children = _children(ws, result.run)
    (_, a_start, a_end), (_, b_start, b_end) = children["a"], children["b"]
    assert a_start < b_end and b_start < a_end  # the two branches overlapped
    keys = {str(t["key"]) for t in stream.data}
    seed = next(s for s in result.steps if s.name == "seed")
    assert f"seed-{seed.key}" in keys  # its whole key was known when it was submitted
    assert not any(k.startswith("stamp-") for k in keys)  # cache=False: an impure task
    # A rerun: seed, a, b and total come from the cache; stamp runs again (cache=False).
    with distributed.get_task_stream(client) as stream:
        again = flows(WIDE).wide.run(workspace=ws, executor="dask", scheduler=address)
    assert _statuses(again) == {
        "seed": "cached", "a": "cached", "b": "cached", "stamp": "finished", "total": "cached"
    }  # fmt: skip
    assert len(stream.data) == 1  # only stamp was submitted: the rest was a lookup here
    after = [s for s in again.steps if s.name in ("a", "b")]
    assert [s.key for s in after] == [s.key for s in result.steps if s.name in ("a", "b")]


def test_data_goes_through_the_object_store_not_the_scheduler(
    ws: Workspace, flows: Any, client: Any  # noqa: F811
) -> None:
    big = FLOWS.replace(
        'pd.DataFrame({"x": list(range(rows)), "y": [i % 2 for i in range(rows)]})',
        'pd.DataFrame({"x": list(range(rows)), "y": [i % 2 for i in range(rows)], '
        '"pad": ["p" * 40] * rows})',
    )
    with distributed.get_task_stream(client) as stream:
        result = flows(big).flow.run(
            {"rows": 200_000}, workspace=ws, executor="dask", scheduler=client.scheduler.address
        )
    assert result.status == "finished", result.error
    assert len(result.output("load")) == 200_000
    sizes = [int(t["nbytes"]) for t in stream.data if "nbytes" in t]
    assert sizes and max(sizes) < 100_000  # results are digests; the frame is ~10 MB


def test_a_failing_step_stops_what_follows_it_and_a_fixed_rerun_reuses_the_rest(
    ws: Workspace, flows: Any, cluster: Any  # noqa: F811
) -> None:
    address = cluster.scheduler_address
    broken = FLOWS.replace('    CALLS.append("train")', '    raise RuntimeError("diverged")')
    result = flows(broken).flow.run(workspace=ws, executor="dask", scheduler=address)
    assert result.status == "failed"
    assert _statuses(result) == {
        "load": "finished", "features": "finished", "train": "failed", "report": "skipped"
    }  # fmt: skip
    assert result.error == "step train failed: RuntimeError: diverged"
    with ws.db.read() as conn:
        error = conn.execute(select(runs.c.error).where(runs.c.name == "demo.train")).scalar()
        parent = conn.execute(select(runs.c.status).where(runs.c.id == result.run)).scalar()
    assert parent == "failed" and 'raise RuntimeError("diverged")' in error  # the traceback
    fixed = flows().flow.run(workspace=ws, executor="dask", scheduler=address)
    assert _statuses(fixed) == {
        "load": "cached", "features": "cached", "train": "finished", "report": "finished"
    }  # fmt: skip


def test_a_worker_killed_in_a_step_is_replaced_and_the_step_runs_again(
    ws: Workspace, flows: Any, cluster: Any, tmp_path: Path  # noqa: F811
) -> None:
    marker = tmp_path / "killed-once"
    dying = FLOWS.replace(
        '    CALLS.append("train")',
        f"    import os, pathlib, signal\n"
        f"    if not pathlib.Path({str(marker)!r}).exists():\n"
        f"        pathlib.Path({str(marker)!r}).touch()\n"
        f"        os.kill(os.getpid(), signal.SIGKILL)",
    )
    result = flows(dying).flow.run(workspace=ws, executor="dask", scheduler=cluster.scheduler_address)
    assert result.status == "finished", result.error
    with ws.db.read() as conn:
        trains = conn.execute(
            select(runs.c.id, runs.c.status).where(runs.c.name == "demo.train")
        ).all()
    assert len(trains) == 2  # the killed attempt's run, and the one that made the output
    train = next(s for s in result.steps if s.name == "train")
    assert dict(trains)[train.run] == "finished"
    assert {status for _, status in trains} == {"finished", "running"}  # until beats stop


def test_register_works_from_the_workers_output(ws: Workspace, cluster: Any) -> None:
    root = Path(ws.root)
    (root / "train.py").write_text(
        '''
import numpy as np
from sklearn.linear_model import LogisticRegression
from keel.pipeline import pipeline, step


@step
def data(n: int = 60):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    return x, (x[:, 0] > 0).astype(int)


@step
def fit(data, c: float = 1.0):
    x, y = data
    return LogisticRegression(C=c).fit(x, y)


@step
def score(fit, data):
    x, y = data
    return {"accuracy": float(fit.score(x, y))}


retrain = pipeline("retrain", [data, fit, score], register="clf")
'''
    )
    out = run_keel(
        "run", "train.py:retrain", "--executor", "dask", "--scheduler",
        cluster.scheduler_address, "--json", cwd=root,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["model"] == "clf/v1" and [s["status"] for s in doc["steps"]] == ["finished"] * 3


def test_a_pipeline_file_the_workers_cannot_import_runs_with_its_own_modules(
    ws: Workspace, cluster: Any
) -> None:
    root = Path(ws.root)
    (root / "mine").mkdir()
    (root / "mine" / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (root / "mine" / "flow.py").write_text(
        "from helpers import double\nfrom keel.pipeline import pipeline, step\n\n\n"
        "@step\ndef one(x: int = 4):\n    return double(x)\n\n\n"
        "@step\ndef two(one):\n    return double(one) + 1\n\n\np = pipeline('own', [one, two])\n"
    )
    out = run_keel(
        "run", "mine/flow.py:p", "--executor", "dask", "--scheduler", cluster.scheduler_address,
        "--json", cwd=root,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert [s["status"] for s in json.loads(out.stdout)["steps"]] == ["finished", "finished"]


def test_without_a_scheduler_keel_starts_a_local_cluster(ws: Workspace) -> None:
    root = Path(ws.root)
    (root / "flows.py").write_text(FLOWS)
    began = time.monotonic()
    out = run_keel("run", "flows.py:flow", "--executor", "dask", cwd=root)
    assert out.returncode == 0, out.stderr
    assert "FINISHED: pipeline demo" in out.stdout and "4 steps, 0 reused" in out.stdout
    assert out.stderr == ""  # the cluster's own logging stays quiet
    assert time.monotonic() - began < 60


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler is for the dask executor"),
        (["--executor", "dask", "--scheduler", "nowhere"], "invalid --scheduler 'nowhere'"),
        (["--executor", "spark"], "Invalid value for '--executor'"),
    ],
)
def test_bad_executor_flags_are_one_line_and_exit_2(
    ws: Workspace, args: list[str], expected: str
) -> None:
    root = Path(ws.root)
    (root / "flows.py").write_text(FLOWS)
    out = run_keel("run", "flows.py:flow", *args, cwd=root)
    assert out.returncode == 2 and expected in out.stderr, out.stderr
    with ws.db.read() as conn:
        assert conn.execute(select(runs.c.id)).first() is None  # nothing recorded


def test_a_scheduler_that_does_not_answer_is_exit_2(ws: Workspace) -> None:
    root = Path(ws.root)
    (root / "flows.py").write_text(FLOWS)
    out = run_keel(
        "run", "flows.py:flow", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9",
        cwd=root, env={**os.environ, "KEEL_DASK_CONNECT_SECONDS": "2"},
    )  # fmt: skip
    assert out.returncode == 2
    assert "no Dask scheduler answers at tcp://127.0.0.1:9" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_python_api_refuses_a_scheduler_without_dask(ws: Workspace, flows: Any) -> None:  # noqa: F811
    with pytest.raises(InvalidInput, match="scheduler is for the dask executor"):
        flows().flow.run(workspace=ws, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(InvalidInput, match="unknown executor 'ray'"):
        flows().flow.run(workspace=ws, executor="ray")


def test_dask_on_postgresql(pg_ws: Workspace, flows: Any, cluster: Any) -> None:  # noqa: F811
    result = flows().flow.run(workspace=pg_ws, executor="dask", scheduler=cluster.scheduler_address)
    assert result.status == "finished", result.error
    again = flows().flow.run(workspace=pg_ws, executor="dask", scheduler=cluster.scheduler_address)
    assert set(_statuses(again).values()) == {"cached"}
