"""Pipelines of plain-function steps: wiring by name, each step a run under the pipeline's
run, outputs as objects, and a step cache that reruns exactly what changed."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from keel.errors import InvalidInput
from keel.pipeline import pipeline, step
from keel.store.db import run_tags, runs
from keel.workspace import Workspace

FLOWS = '''
import pandas as pd
from keel.pipeline import pipeline, step

CALLS = []


def scale(x, by):
    return x * by


def unrelated():
    return "nobody calls me"


@step
def load(rows: int = 6):
    CALLS.append("load")
    return pd.DataFrame({"x": list(range(rows)), "y": [i % 2 for i in range(rows)]})


@step
def features(load, factor: float = 2.0):
    CALLS.append("features")
    return load.assign(x2=scale(load["x"], factor))


@step
def train(features, lr: float = 0.1):
    CALLS.append("train")
    return {"weight": float(features["x2"].sum()) * lr, "rows": len(features)}


@step
def report(train, load):
    CALLS.append("report")
    return {"rows": len(load), "weight": train["weight"]}


flow = pipeline("demo", [load, features, train, report])
'''


def _module(path: Path, source: str) -> ModuleType:
    """Write ``source`` to ``path`` and import it afresh as module ``flows``."""
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location("flows", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["flows"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def flows(tmp_path: Path) -> Any:
    def load(source: str = FLOWS) -> ModuleType:
        return _module(tmp_path / "flows.py", source)

    yield load
    sys.modules.pop("flows", None)


def _statuses(result: Any) -> dict[str, str]:
    return {s.name: s.status for s in result.steps}


def test_a_run_records_each_step_as_a_run_under_the_pipelines(ws: Workspace, flows: Any) -> None:
    mod = flows()
    result = mod.flow.run(workspace=ws)
    assert result.status == "finished" and mod.CALLS == ["load", "features", "train", "report"]
    assert _statuses(result) == dict.fromkeys(["load", "features", "train", "report"], "finished")
    assert result.output("report") == {"rows": 6, "weight": 3.0}
    frame = result.output("features")
    assert isinstance(frame, pd.DataFrame) and list(frame["x2"]) == [0, 2, 4, 6, 8, 10]
    assert [s.format for s in result.steps] == ["parquet", "parquet", "json", "json"]
    with ws.db.read() as conn:
        children = conn.execute(
            select(runs.c.id, runs.c.name, runs.c.status)
            .join(run_tags, run_tags.c.run_pk == runs.c.pk)
            .where(run_tags.c.key == "keel.parent", run_tags.c.value == result.run)
        ).all()
        parent = conn.execute(select(runs.c.status).where(runs.c.id == result.run)).scalar()
    assert parent == "finished"
    assert sorted(c.name for c in children) == ["demo.features", "demo.load", "demo.report", "demo.train"]
    assert {c.id for c in children} == {s.run for s in result.steps}
    assert result.to_dict()["steps"][0]["step"] == "load"


def test_an_unchanged_rerun_is_all_cached_and_runs_nothing(ws: Workspace, flows: Any) -> None:
    first = flows().flow.run(workspace=ws)
    mod = flows()  # the same file, imported again
    again = mod.flow.run(workspace=ws)
    assert mod.CALLS == [] and set(_statuses(again).values()) == {"cached"}
    assert [s.run for s in again.steps] == [s.run for s in first.steps]  # the runs that made them
    assert again.output("report") == first.output("report")


def test_a_code_change_inside_a_step_reruns_it_and_what_follows(ws: Workspace, flows: Any) -> None:
    flows().flow.run(workspace=ws)
    mod = flows(FLOWS.replace("float(features[\"x2\"].sum()) * lr", "float(features[\"x2\"].sum()) * lr * 2"))
    result = mod.flow.run(workspace=ws)
    assert _statuses(result) == {"load": "cached", "features": "cached", "train": "finished", "report": "finished"}
    assert mod.CALLS == ["train", "report"]


def test_a_helper_change_reruns_the_step_that_calls_it(ws: Workspace, flows: Any) -> None:
    flows().flow.run(workspace=ws)
    mod = flows(FLOWS.replace("return x * by", "return x * by + 1"))
    result = mod.flow.run(workspace=ws)
    assert _statuses(result) == {"load": "cached", "features": "finished", "train": "finished", "report": "finished"}


def test_an_unrelated_edit_elsewhere_reruns_nothing(ws: Workspace, flows: Any) -> None:
    flows().flow.run(workspace=ws)
    edited = FLOWS.replace('return "nobody calls me"', 'return "still nobody"').replace(
        "@step\ndef load", "# a comment\n@step\ndef load"
    )
    mod = flows(edited.replace('    CALLS.append("train")', '    # why\n    CALLS.append("train")'))
    result = mod.flow.run(workspace=ws)
    assert set(_statuses(result).values()) == {"cached"} and mod.CALLS == []


def test_a_parameter_change_reruns_only_what_depends_on_it(ws: Workspace, flows: Any) -> None:
    flows().flow.run(workspace=ws)
    mod = flows()
    result = mod.flow.run(params={"lr": "0.5"}, workspace=ws)  # text, as --param gives it
    assert _statuses(result) == {"load": "cached", "features": "cached", "train": "finished", "report": "finished"}
    assert result.params["lr"] == 0.5 and result.output("report")["weight"] == 15.0
    # the same output bytes upstream: a rerun of load with the same rows still hits downstream
    calls = list(mod.CALLS)
    explained = mod.flow.run(params={"lr": "0.25"}, workspace=ws, explain=True)
    why = {s.name: (s.status, s.error) for s in explained.steps}
    assert why["load"] == ("cached", None) and why["features"] == ("cached", None)
    assert why["train"] == ("would run", "changed: params: lr")
    assert why["report"] == ("would run", "its input train would run")
    assert calls == mod.CALLS  # explaining runs nothing


def test_a_step_that_raises_fails_the_run_and_a_fixed_rerun_reuses_the_rest(
    ws: Workspace, flows: Any
) -> None:
    broken = FLOWS.replace('    CALLS.append("train")', '    CALLS.append("train")\n    raise ValueError("no convergence")')
    result = flows(broken).flow.run(workspace=ws)
    assert result.status == "failed" and result.error == "step train failed: ValueError: no convergence"
    assert _statuses(result) == {"load": "finished", "features": "finished", "train": "failed", "report": "skipped"}
    with ws.db.read() as conn:
        rows = dict(conn.execute(select(runs.c.id, runs.c.error).where(runs.c.status == "failed")).all())
    train_run = next(s.run for s in result.steps if s.name == "train")
    assert "Traceback" in rows[train_run] and 'raise ValueError("no convergence")' in rows[train_run]
    assert rows[result.run] == "step train failed: ValueError: no convergence"
    fixed = flows()
    again = fixed.flow.run(workspace=ws)
    assert _statuses(again) == {"load": "cached", "features": "cached", "train": "finished", "report": "finished"}
    assert fixed.CALLS == ["train", "report"]


def test_an_entry_whose_object_was_collected_is_a_miss(ws: Workspace, flows: Any) -> None:
    first = flows().flow.run(workspace=ws)
    ws.objects.path(first.steps[0].output).unlink()  # as if collected
    mod = flows()
    again = mod.flow.run(workspace=ws)
    assert _statuses(again)["load"] == "finished" and mod.CALLS == ["load"]


def test_a_step_marked_not_cacheable_always_runs(ws: Workspace, flows: Any) -> None:
    source = FLOWS.replace("@step\ndef load", "@step(cache=False)\ndef load")
    flows(source).flow.run(workspace=ws)
    mod = flows(source)
    result = mod.flow.run(workspace=ws)
    # load ran again; its output is the same bytes, so the steps after it are reused
    assert _statuses(result) == {"load": "finished", "features": "cached", "train": "cached", "report": "cached"}
    assert result.steps[0].not_cacheable == "cache=False"


def _f(a): ...


def test_bad_pipelines_are_one_clear_error() -> None:
    @step
    def a(b):
        return b

    @step
    def b(a):
        return a

    with pytest.raises(InvalidInput, match="has a cycle"):
        pipeline("cyclic", [a, b])
    with pytest.raises(InvalidInput, match="two steps named 'a'"):
        pipeline("twice", [a, step(_f, name="a")])

    @step
    def solo(x: int = 1, flag: bool = False):
        return x

    p = pipeline("solo", [solo])
    with pytest.raises(InvalidInput, match="unknown parameter 'y' for pipeline solo; its parameters: flag, x"):
        p.resolve_params({"y": 1})
    with pytest.raises(InvalidInput, match=r"invalid --param x='one': expected int"):
        p.resolve_params({"x": "one"})
    assert p.resolve_params({"x": "3", "flag": "true"}) == {"x": 3, "flag": True}

    @step
    def needs(threshold):
        return threshold

    with pytest.raises(InvalidInput, match="needs a value for threshold"):
        pipeline("needs", [needs]).resolve_params({})
    with pytest.raises(InvalidInput, match="expected local or dask"):
        p.run(executor="spark")


TRAIN = '''
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from keel.pipeline import pipeline, step


@step
def load():
    return load_breast_cancer(as_frame=True).frame


@step
def split(load, seed: int = 7):
    test = load.sample(frac=0.25, random_state=seed)
    return load.drop(test.index), test


@step
def train(split, c: float = 1.0):
    fit, _ = split
    return LogisticRegression(C=c, max_iter=5000).fit(fit.drop(columns="target"), fit["target"])


@step
def evaluate(train, split):
    _, test = split
    return {"accuracy": float(train.score(test.drop(columns="target"), test["target"]))}


retrain = pipeline("cancer-retrain", [load, split, train, evaluate], register="cancer", target="target")
'''


def test_register_logs_the_model_with_the_evaluation_metrics(ws: Workspace, flows: Any) -> None:
    import keel
    from keel.track.records import get_run

    first = flows(TRAIN).retrain.run(workspace=ws)
    assert first.status == "finished" and first.model == "cancer/v1"
    mv = keel.registry.versions.resolve_model(ws, "cancer/v1")
    assert mv.run_id == first.run  # registered from the pipeline's run
    assert [c["name"] for c in mv.signature["inputs"]["columns"]][:2] == ["mean radius", "mean texture"]
    assert "target" not in [c["name"] for c in mv.signature["inputs"]["columns"]]
    record = get_run(ws, first.run)
    assert record.metrics["accuracy"]["last"] > 0.9
    again = flows(TRAIN).retrain.run(workspace=ws)  # the same model bytes: no new version
    assert again.model == "cancer/v1" and set(_statuses(again).values()) == {"cached"}
    stronger = flows(TRAIN).retrain.run(params={"c": 0.1}, workspace=ws)
    assert stronger.model == "cancer/v2"
    none = pipeline("nomodel", [step(lambda: 1, name="one")], register="x").run(workspace=ws)
    assert none.status == "failed" and none.error == (
        "register=x: no step returned a model (an object with a predict method)"
    )


def test_lineage_of_a_registered_model_shows_the_pipeline_run_and_its_step_runs(
    ws: Workspace, flows: Any
) -> None:
    from keel.registry.lineage import lineage

    result = flows(TRAIN).retrain.run(workspace=ws)
    graph = lineage(ws, result.model)
    nodes = {n["id"]: n for n in graph["nodes"]}
    edges = {(e["from"], e["relation"], e["to"]) for e in graph["edges"]}
    pipeline_run = f"run:{result.run[:8]}"
    assert (pipeline_run, "produced", "model:cancer/v1") in edges
    steps = {s.name: f"run:{s.run[:8]}" for s in result.steps}
    assert {(steps[n], "step", pipeline_run) for n in steps} <= edges
    assert (steps["train"], "trained", "model:cancer/v1") in edges
    assert nodes[steps["evaluate"]]["name"] == "cancer-retrain.evaluate"


def test_an_output_that_cannot_be_stored_fails_its_step_in_one_line(ws: Workspace) -> None:
    import threading

    @step
    def lock():
        return threading.Lock()

    result = pipeline("unstorable", [lock]).run(workspace=ws)
    assert result.status == "failed"
    assert result.error is not None and result.error.startswith(
        "step lock failed: its output (lock) cannot be stored: TypeError:"
    )


@pytest.mark.postgres
def test_a_pipeline_and_its_cache_on_postgresql(pg_ws: Workspace, flows: Any) -> None:
    first = flows().flow.run(workspace=pg_ws)
    mod = flows()
    again = mod.flow.run(workspace=pg_ws)
    assert first.status == again.status == "finished" and mod.CALLS == []
    assert set(_statuses(again).values()) == {"cached"}
    assert again.output("report") == {"rows": 6, "weight": 3.0}


def test_the_data_a_step_used_becomes_the_registered_models_training_data(
    ws: Workspace, flows: Any, tmp_path: Path
) -> None:
    import keel
    from keel.registry.lineage import lineage
    from keel.track.records import get_run

    frame = __import__("sklearn.datasets", fromlist=["x"]).load_breast_cancer(as_frame=True).frame
    frame.to_csv(tmp_path / "cancer.csv", index=False)
    keel.data.add(tmp_path / "cancer.csv", name="cancer", workspace=ws)
    source = TRAIN.replace(
        "def load():\n    return load_breast_cancer(as_frame=True).frame",
        "def load(data: str = 'cancer@v1'):\n    import keel\n"
        "    return keel.active_run().use(data).to_pandas()",
    )
    result = flows(source).retrain.run(workspace=ws)
    assert result.status == "finished", result.error
    assert [i["ref"] for i in get_run(ws, result.run).inputs] == ["cancer@v1"]
    graph = lineage(ws, result.model)
    assert "dataset:cancer@v1" in {n["id"] for n in graph["nodes"]}
    again = flows(source).retrain.run(params={"c": 0.5}, workspace=ws)  # load reused: still named
    assert [i["ref"] for i in get_run(ws, again.run).inputs] == ["cancer@v1"]
