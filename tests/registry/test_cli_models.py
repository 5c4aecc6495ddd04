"""``keel models …`` and ``keel lineage`` through the real executable."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import keel
from tests.conftest import run_keel
from tests.registry.conftest import World
from tests.registry.helpers import one_error_line

BOB = {"KEEL_USER": "bob"}


def keel_ok(world: World, *args: str) -> Any:
    proc = run_keel(*args, cwd=world.root, env=BOB)
    assert proc.returncode == 0, f"keel {' '.join(args)} -> {proc.returncode}\n{proc.stderr}"
    assert proc.stderr == ""
    return json.loads(proc.stdout) if "--json" in args else proc.stdout


def keel_many(world: World, calls: list[tuple[str, ...]]) -> list[subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: run_keel(*args, cwd=world.root, env=BOB), calls))


# -- list and show --------------------------------------------------------------------------


def test_models_list(world: World) -> None:
    doc, text = keel_many(world, [("models", "list", "--json"), ("models", "list")])
    assert doc.returncode == text.returncode == 0
    found = {m["name"]: m for m in json.loads(doc.stdout)}
    assert list(found) == ["churn", "fraud", "orphan"]
    churn = found["churn"]
    assert (churn["versions"], churn["latest"]) == (4, 4)
    assert churn["aliases"] == {"canary": 4, "champion": 3, "previous": 2}
    assert found["orphan"]["versions"] == 1
    rows = {line.split()[0]: line for line in text.stdout.splitlines()[1:] if line.strip()}
    assert "champion=v3" in rows["churn"] and "previous=v2" in rows["churn"]
    assert rows["churn"].split()[1:3] == ["4", "v4"]


def test_models_list_in_an_empty_workspace(tmp_path: Path) -> None:
    keel.init(tmp_path).close()
    assert json.loads(run_keel("models", "list", "--json", cwd=tmp_path).stdout) == []
    assert "no models yet" in run_keel("models", "list", cwd=tmp_path).stdout


def test_models_show_json(world: World) -> None:
    doc = keel_ok(world, "models", "show", "churn", "--json")
    assert doc["name"] == "churn"
    assert doc["aliases"] == {"canary": 4, "champion": 3, "previous": 2}
    versions = {v["version"]: v for v in doc["versions"]}
    assert list(versions) == [4, 3, 2, 1]
    v3 = versions[3]
    assert (v3["ref"], v3["flavor"], v3["format"]) == ("churn/v3", "python", "pickle")
    assert v3["message"] == "more data" and v3["created_by"] == "alice"
    assert v3["run"] == world.run_b and v3["aliases"] == ["champion"]
    assert len(v3["digest"]) == 64 and v3["size"] > 0
    assert v3["signature"]["inputs"]["columns"] == [
        {"name": "x", "type": "float", "nullable": False}
    ]
    events = doc["events"]  # newest first: who, when, from, to, why
    assert [(e["alias"], e["from"], e["to"], e["action"]) for e in events] == [
        ("canary", None, "4", "move"),
        ("previous", None, "2", "promote"),
        ("champion", "2", "3", "promote"),
        ("champion", None, "2", "promote"),
    ]
    assert events[0]["message"] == "try v4 on 5%"
    assert events[2]["message"] == "beats v2 on value"
    assert {e["actor"] for e in events} == {"alice"}
    assert all(isinstance(e["at"], float) for e in events)
    assert [e["at"] for e in events] == sorted((e["at"] for e in events), reverse=True)


def test_models_show_human(world: World) -> None:
    out = keel_ok(world, "models", "show", "churn")
    first = out.splitlines()[0]
    assert first == "churn: 4 versions; canary -> v4, champion -> v3, previous -> v2"
    assert "alias moves, newest first" in out
    moves = out.split("alias moves, newest first", 1)[1]
    assert "alice" in moves and "v2 -> v3" in moves and "beats v2 on value" in moves
    assert "(none) -> v4" in moves and "try v4 on 5%" in moves
    assert world.run_b[:8] in out


# -- moving aliases -------------------------------------------------------------------------


def test_alias_promote_and_rollback(world: World) -> None:
    def show() -> dict[str, Any]:
        return keel_ok(world, "models", "show", "fraud", "--json")

    out = keel_ok(world, "models", "alias", "fraud", "2", "staging", "-m", "why not")
    assert out.strip() == "fraud@staging: (none) -> v2"
    out = keel_ok(world, "models", "alias", "fraud", "v3", "staging", "-m", "newer")
    assert out.strip() == "fraud@staging: v2 -> v3"
    assert "already points at v3" in keel_ok(world, "models", "alias", "fraud", "3", "staging")
    assert keel_ok(world, "models", "promote", "fraud", "1").strip() == (
        "fraud@champion: (none) -> v1"
    )
    out = keel_ok(world, "models", "promote", "fraud", "v2", "-m", "better recall")
    assert out.splitlines() == ["fraud@champion: v1 -> v2", "fraud@previous: (none) -> v1"]
    out = keel_ok(world, "models", "promote", "fraud", "fraud/v3")
    assert out.splitlines() == ["fraud@champion: v2 -> v3", "fraud@previous: v1 -> v2"]
    assert show()["aliases"] == {"staging": 3, "champion": 3, "previous": 2}

    out = keel_ok(world, "models", "rollback", "fraud", "-m", "v3 misbehaves")
    assert out.strip() == "fraud@champion: v3 -> v2 (rolled back)"
    assert keel_ok(world, "models", "rollback", "fraud", "--alias", "champion").strip() == (
        "fraud@champion: v2 -> v1 (rolled back)"
    )
    line = one_error_line(run_keel("models", "rollback", "fraud", cwd=world.root))
    assert "fraud@champion has no earlier version to roll back to" in line
    out = keel_ok(world, "models", "rollback", "fraud", "--alias", "staging")
    assert out.strip() == "fraud@staging: v3 -> v2 (rolled back)"

    doc = show()
    assert doc["aliases"]["champion"] == 1 and doc["aliases"]["staging"] == 2
    champion = [e for e in doc["events"] if e["alias"] == "champion"]
    assert [(e["from"], e["to"], e["action"]) for e in champion] == [
        ("2", "1", "rollback"),
        ("3", "2", "rollback"),
        ("2", "3", "promote"),
        ("1", "2", "promote"),
        (None, "1", "promote"),
    ]
    assert champion[1]["message"] == "v3 misbehaves"
    assert champion[3]["message"] == "better recall"
    staging = [e for e in doc["events"] if e["alias"] == "staging"]
    assert [e["message"] for e in staging][1:] == ["newer", "why not"]
    assert {e["actor"] for e in doc["events"]} == {"bob"}
    # moving forward again after the rollbacks
    keel_ok(world, "models", "promote", "fraud", "3")
    assert show()["aliases"]["champion"] == 3


# -- bad input: one line on stderr, exit 2, nothing changed ---------------------------------

BAD = [
    (("models", "show", "nope"), "no model named 'nope'"),
    (("models", "alias", "nope", "1", "champion"), "no model named 'nope'"),
    (("models", "rollback", "nope"), "no model named 'nope'"),
    (("models", "alias", "churn", "9", "champion"), "no version v9; its versions are v1..v4"),
    (("models", "promote", "churn", "v9"), "no version v9; its versions are v1..v4"),
    (("models", "alias", "churn", "1", "Prod"), "invalid alias 'Prod'"),
    (("models", "alias", "churn", "1", "latest"), "invalid alias 'latest'"),
    (("models", "alias", "churn", "1", "v2"), "invalid alias 'v2'"),
    (("models", "rollback", "churn", "--alias", "Bad!"), "invalid alias 'Bad!'"),
    (("models", "promote", "churn", "other/v1"), "other/v1 is a version of model other"),
    (("models", "alias", "churn", "fraud/2", "x"), "is a version of model fraud, not of churn"),
    (("models", "promote", "churn", "abc"), "invalid version 'abc'"),
    (("models", "rollback", "churn", "--alias", "canary"), "churn@canary has no earlier"),
    (("lineage", "churn@nope"), "no alias 'nope'; its aliases: canary, champion, previous"),
    (("lineage", "customers@v7"), "customers has no version v7"),
]


def test_bad_input_is_one_line_and_exit_2(world: World) -> None:
    before = keel_ok(world, "models", "show", "churn", "--json")
    results = keel_many(world, [args for args, _ in BAD])
    for (args, needle), proc in zip(BAD, results, strict=True):
        line = one_error_line(proc)
        assert needle in line, (args, line)
        assert proc.stdout == "", args
    after = keel_ok(world, "models", "show", "churn", "--json")
    assert after == before


# -- lineage --------------------------------------------------------------------------------


def test_lineage_of_the_champion_json(world: World) -> None:
    graph = keel_ok(world, "lineage", "churn@champion", "--json")
    nodes = {n["id"]: n for n in graph["nodes"]}
    edges = {(e["from"], e["to"], e["relation"]) for e in graph["edges"]}
    assert graph["root"] == "model:churn/v3"
    run = f"run:{world.run_b[:8]}"
    assert (run, "model:churn/v3", "produced") in edges
    assert ("dataset:customers@v1", run, "input of") in edges
    assert ("dataset:customers@v2", run, "input of") in edges
    assert nodes["dataset:customers@v2"]["digest"] == world.digest_v2
    assert nodes[run]["id_full"] == world.run_b and nodes[run]["name"] == "train-b"
    code = [n for n in nodes.values() if n["kind"] == "code"]
    env = [n for n in nodes.values() if n["kind"] == "environment"]
    assert len(code) == 1 and len(env) == 1
    assert code[0]["commit"] == world.commit and code[0]["branch"] == "main"
    assert code[0]["dirty"] is True and code[0]["patch"]
    assert (code[0]["id"], run, "ran") in edges and (env[0]["id"], run, "ran in") in edges
    assert env[0]["python"] and env[0]["packages"] > 0
    assert nodes["model:churn/v3"]["aliases"] == ["champion"]
    # every edge joins known nodes; nothing else hangs off the graph
    assert all(e["from"] in nodes and e["to"] in nodes for e in graph["edges"])
    assert len(nodes) == 6 and len(edges) == 5


def test_lineage_of_the_champion_reads_as_a_tree(world: World) -> None:
    out = keel_ok(world, "lineage", "churn@champion").splitlines()
    assert out[0] == "model churn/v3 [champion]"
    assert out[1].strip() == f"└─ produced: run {world.run_b[:8]} train-b [finished]"
    rest = "\n".join(out[2:])
    assert f"ran: code {world.commit[:12]} (main, uncommitted changes)" in rest
    assert "ran in: environment" in rest
    assert "input of: dataset customers@v1" in rest and "input of: dataset customers@v2" in rest


def test_lineage_of_a_dataset_lists_runs_and_models_downstream(world: World) -> None:
    graph = keel_ok(world, "lineage", "customers@v1", "--json")
    edges = {(e["from"], e["to"], e["relation"]) for e in graph["edges"]}
    a, b = f"run:{world.run_a[:8]}", f"run:{world.run_b[:8]}"
    assert graph["root"] == "dataset:customers@v1"
    assert edges == {
        ("dataset:customers@v1", a, "input of"),
        ("dataset:customers@v1", b, "input of"),
        (a, "model:churn/v1", "produced"),
        (a, "model:churn/v2", "produced"),
        (b, "model:churn/v3", "produced"),
    }
    text = keel_ok(world, "lineage", "customers@v1")
    assert text.splitlines()[0] == "dataset customers@v1"
    for needle in (world.run_a[:8], world.run_b[:8], "churn/v1", "churn/v2", "churn/v3"):
        assert needle in text
    assert "churn/v4" not in text and "fraud" not in text


@pytest.mark.parametrize(
    ("ref", "root"),
    [("churn", "model:churn/v4"), ("churn/v1", "model:churn/v1"), ("orphan", "model:orphan/v1")],
)
def test_lineage_of_other_model_refs(world: World, ref: str, root: str) -> None:
    graph = keel_ok(world, "lineage", ref, "--json")
    assert graph["root"] == root
    if ref == "orphan":  # logged without a run: nothing upstream
        assert graph["edges"] == [] and len(graph["nodes"]) == 1
