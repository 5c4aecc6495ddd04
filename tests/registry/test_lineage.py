"""Lineage in Python: model -> run -> data, code, environment; dataset -> runs -> models."""

from __future__ import annotations

from typing import Any

import pytest

import keel
from keel.errors import NotFound
from keel.registry.lineage import lineage
from keel.registry.versions import model_versions_of, promote, rollback
from keel.workspace import Workspace
from tests.registry.conftest import World
from tests.registry.helpers import log_versions


def _graph(ws: Workspace, ref: str) -> tuple[str, dict[str, dict[str, Any]], set[tuple[str, ...]]]:
    graph = lineage(ws, ref)
    nodes = {n["id"]: n for n in graph["nodes"]}
    edges = {(e["from"], e["to"], e["relation"]) for e in graph["edges"]}
    assert len(nodes) == len(graph["nodes"]), "each node once"
    assert graph["root"] in nodes
    assert all(a in nodes and b in nodes for a, b, _ in edges)
    return graph["root"], nodes, edges


def _of_kind(nodes: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [n for n in nodes.values() if n["kind"] == kind]


def test_model_to_run_data_code_and_environment(world: World) -> None:
    ws = world.ws
    root, nodes, edges = _graph(ws, "churn/v1")
    record = keel.get_run(world.run_a, workspace=ws)
    run = f"run:{world.run_a[:8]}"
    assert root == "model:churn/v1"
    model = nodes[root]
    assert model["digest"] == model_versions_of(ws, "churn")[-1].oid
    assert (model["flavor"], model["format"]) == ("python", "pickle")
    assert nodes[run]["id_full"] == world.run_a and nodes[run]["status"] == "finished"
    (dataset,) = _of_kind(nodes, "dataset")
    assert (dataset["ref"], dataset["digest"]) == ("customers@v1", world.digest_v1)
    (code,) = _of_kind(nodes, "code")
    assert code["commit"] == world.commit and code["dirty"] is True
    patch = ws.objects.get(code["patch"]).decode()  # the uncommitted change itself
    assert "print('v2')" in patch
    (env,) = _of_kind(nodes, "environment")
    assert record.environment_oid is not None
    assert env["ref"] == record.environment_oid[:12]
    assert env["python"] == record.environment["python"]
    assert edges == {
        (run, root, "produced"),
        (dataset["id"], run, "input of"),
        (code["id"], run, "ran"),
        (env["id"], run, "ran in"),
    }


def test_a_run_without_code_capture_or_inputs(world: World) -> None:
    root, nodes, edges = _graph(world.ws, "churn/v4")
    assert {n["kind"] for n in nodes.values()} == {"model", "run", "environment"}
    assert (f"run:{world.run_c[:8]}", root, "produced") in edges


def test_a_model_logged_without_a_run_has_nothing_upstream(world: World) -> None:
    root, nodes, edges = _graph(world.ws, "orphan")
    assert root == "model:orphan/v1" and list(nodes) == [root] and edges == set()


def test_an_alias_resolves_to_the_version_it_points_at(world: World) -> None:
    root, nodes, _ = _graph(world.ws, "churn@champion")
    assert root == "model:churn/v3" and nodes[root]["aliases"] == ["champion"]
    latest, _, _ = _graph(world.ws, "churn")
    assert latest == "model:churn/v4"


def test_dataset_to_runs_and_models(world: World) -> None:
    a, b = f"run:{world.run_a[:8]}", f"run:{world.run_b[:8]}"
    root, nodes, edges = _graph(world.ws, "customers@v1")
    assert root == "dataset:customers@v1" and nodes[root]["digest"] == world.digest_v1
    assert edges == {
        (root, a, "input of"),
        (root, b, "input of"),
        (a, "model:churn/v1", "produced"),
        (a, "model:churn/v2", "produced"),
        (b, "model:churn/v3", "produced"),
    }
    assert {n["id_full"] for n in _of_kind(nodes, "run")} == {world.run_a, world.run_b}
    root, _, edges = _graph(world.ws, "customers@v2")
    assert edges == {(root, b, "input of"), (b, "model:churn/v3", "produced")}
    head, _, _ = _graph(world.ws, "customers")  # a dataset's head
    assert head == "dataset:customers@v2"


def test_both_directions_agree(world: World) -> None:
    """Every (dataset -> run -> model) path seen from the model is seen from the dataset."""
    ws = world.ws
    for mv in model_versions_of(ws, "churn"):
        _, nodes, edges = _graph(ws, mv.ref)
        for dataset in _of_kind(nodes, "dataset"):
            _, _, downstream = _graph(ws, dataset["ref"])
            produced = {(src, dst) for src, dst, rel in downstream if rel == "produced"}
            run = next(src for src, dst, rel in edges if rel == "produced")
            assert (run, f"model:{mv.ref}") in produced, (mv.ref, dataset["ref"])


def test_unknown_references_are_not_found(world: World) -> None:
    for ref in ("nope", "nope@champion", "churn/v9", "churn@nope", "customers@v9"):
        with pytest.raises(NotFound):
            lineage(world.ws, ref)


def test_lineage_follows_the_alias_as_it_moves(ws: Workspace) -> None:
    log_versions(ws, "m", 2)
    promote(ws, "m", 1)
    assert lineage(ws, "m@champion")["root"] == "model:m/v1"
    promote(ws, "m", 2)
    assert lineage(ws, "m@champion")["root"] == "model:m/v2"
    rollback(ws, "m")
    root, nodes, _ = _graph(ws, "m@champion")
    assert root == "model:m/v1" and nodes[root]["aliases"] == ["champion"]
    assert lineage(ws, "m@previous")["root"] == "model:m/v2"
