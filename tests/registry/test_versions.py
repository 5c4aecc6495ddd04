"""Model versions and aliases through the Python API: numbering, moves, promotion, rollback,
visibility to other processes, and concurrent writers (SQLite, and PostgreSQL when available)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import keel
from keel.errors import BadName, BadRef, InvalidInput, NotFound
from keel.registry.versions import (
    alias_history,
    list_models,
    model_versions_of,
    promote,
    resolve_model,
    rollback,
    set_alias,
)
from keel.workspace import Workspace
from tests.registry.helpers import (
    EXAMPLE,
    Const,
    chain_is_consistent,
    finish,
    log_versions,
    start_python,
    wait_for,
)


def champion(ws: Workspace, name: str = "m") -> int:
    return resolve_model(ws, f"{name}@champion").number


def aliases(ws: Workspace, name: str = "m") -> dict[str, int]:
    return {a: v.number for v in model_versions_of(ws, name) for a in v.aliases}


# -- versions -------------------------------------------------------------------------------


def test_version_numbers_are_monotonic_per_name(ws: Workspace) -> None:
    a = log_versions(ws, "a", 2)
    b = log_versions(ws, "b", 1)
    a += log_versions(ws, "a", 1, start=10)
    assert [v.number for v in a] == [1, 2, 3]
    assert [v.ref for v in b] == ["b/v1"]
    assert [v.number for v in model_versions_of(ws, "a")] == [3, 2, 1]  # newest first
    assert resolve_model(ws, "a").number == 3  # the latest
    assert resolve_model(ws, "a@latest").number == 3
    assert resolve_model(ws, "a/2").oid == resolve_model(ws, "a/v2").oid == a[1].oid
    assert keel.load_model("a/v3", workspace=ws).predict(EXAMPLE) == [10.0, 10.0]
    summary = {m.name: (m.versions, m.latest) for m in list_models(ws)}
    assert summary == {"a": (3, 3), "b": (1, 1)}


def test_a_version_never_changes_when_more_are_logged(ws: Workspace) -> None:
    first = log_versions(ws, "m", 1)[0]
    log_versions(ws, "m", 2, start=5)
    again = resolve_model(ws, "m/v1")
    assert (again.oid, again.created_at, again.signature) == (
        first.oid,
        first.created_at,
        first.signature,
    )
    assert again.run_id == first.run_id is not None
    assert keel.load_model("m/v1", workspace=ws).predict(EXAMPLE) == [1.0, 1.0]


@pytest.mark.parametrize("name", ["bad name", "m@x", "m/v1", "", "../m"])
def test_log_model_refuses_bad_names_and_records_nothing(ws: Workspace, name: str) -> None:
    with keel.start_run(workspace=ws, capture_code=False) as run, pytest.raises(BadName):
        run.log_model(Const(1.0), name, input_example=EXAMPLE)
    assert list_models(ws) == []


def test_log_model_refuses_what_no_flavor_saves(ws: Workspace) -> None:
    with keel.start_run(workspace=ws, capture_code=False) as run:
        with pytest.raises(InvalidInput, match=r"keel cannot save a builtins\.dict"):
            run.log_model({"weights": [1, 2]}, "m")
        with pytest.raises(InvalidInput, match="unknown model flavor 'tensorflow'"):
            run.log_model(Const(1.0), "m", flavor="tensorflow")
    assert list_models(ws) == []


# -- aliases --------------------------------------------------------------------------------


def test_set_and_move_an_alias(ws: Workspace) -> None:
    log_versions(ws, "m", 3)
    first = set_alias(ws, "m", 1, "staging", "first try")
    assert first is not None
    assert (first.from_target, first.to_target, first.message) == (None, "1", "first try")
    assert resolve_model(ws, "m@staging").number == 1
    moved = set_alias(ws, "m", 3, "staging", "better")
    assert moved is not None and (moved.from_target, moved.to_target) == ("1", "3")
    assert set_alias(ws, "m", 3, "staging") is None  # already there: no event
    assert aliases(ws) == {"staging": 3}
    assert resolve_model(ws, "m/v3").aliases == ["staging"]
    history = alias_history(ws, "m")
    assert [(e.from_target, e.to_target, e.action) for e in history] == [
        ("1", "3", "move"),
        (None, "1", "move"),
    ]
    assert history[0].message == "better" and history[0].actor
    assert history[0].at >= history[1].at


def test_promote_makes_the_old_champion_previous(ws: Workspace) -> None:
    log_versions(ws, "m", 3)
    moved = promote(ws, "m", 1)
    assert [(e.name, e.from_target, e.to_target) for e in moved] == [("m@champion", None, "1")]
    assert aliases(ws) == {"champion": 1}
    moved = promote(ws, "m", 3, "beats v1")
    assert [(e.name, e.from_target, e.to_target, e.action) for e in moved] == [
        ("m@champion", "1", "3", "promote"),
        ("m@previous", None, "1", "promote"),
    ]
    assert moved[0].message == "beats v1"
    assert aliases(ws) == {"champion": 3, "previous": 1}
    assert promote(ws, "m", 3) == []  # already champion: nothing moves
    assert aliases(ws) == {"champion": 3, "previous": 1}


def test_rollback_replays_history_as_a_stack(ws: Workspace) -> None:
    log_versions(ws, "m", 3)
    for n in (1, 2, 3):
        promote(ws, "m", n)
    event = rollback(ws, "m")
    assert (event.from_target, event.to_target, event.action) == ("3", "2", "rollback")
    assert champion(ws) == 2
    assert rollback(ws, "m", message="still bad").to_target == "1"
    assert champion(ws) == 1
    with pytest.raises(InvalidInput, match="no earlier version"):
        rollback(ws, "m")
    assert champion(ws) == 1  # a refused rollback changes nothing
    champion_moves = [e for e in alias_history(ws, "m") if e.name == "m@champion"]
    assert [(e.to_target, e.action) for e in champion_moves] == [
        ("1", "rollback"),
        ("2", "rollback"),
        ("3", "promote"),
        ("2", "promote"),
        ("1", "promote"),
    ]
    assert champion_moves[0].message == "still bad"
    chain_is_consistent(alias_history(ws, "m"))


def test_moving_forward_after_a_rollback_and_rolling_that_back(ws: Workspace) -> None:
    log_versions(ws, "m", 4)
    for n in (1, 2, 3):
        promote(ws, "m", n)
    rollback(ws, "m")  # -> 2
    promote(ws, "m", 4)  # forward again
    assert champion(ws) == 4 and aliases(ws)["previous"] == 2
    assert rollback(ws, "m").to_target == "2"
    assert rollback(ws, "m").to_target == "1"
    # undoing a rollback is an ordinary move
    set_alias(ws, "m", 2, "champion", "undo the rollback")
    assert champion(ws) == 2
    assert rollback(ws, "m").to_target == "1"
    chain_is_consistent(alias_history(ws, "m"))


def test_rollback_of_another_alias_leaves_champion_alone(ws: Workspace) -> None:
    log_versions(ws, "m", 3)
    promote(ws, "m", 3)
    for n in (1, 2):
        set_alias(ws, "m", n, "staging")
    event = rollback(ws, "m", alias="staging")
    assert (event.name, event.to_target) == ("m@staging", "1")
    assert aliases(ws) == {"champion": 3, "staging": 1}
    with pytest.raises(InvalidInput, match="m@canary has no earlier version"):
        rollback(ws, "m", alias="canary")


@pytest.mark.parametrize(
    "alias", ["Champion", "a b", "x" * 65, "", "latest", "v3", "v10", "prod.1", "a@b", "é", "a/b"]
)
def test_alias_names_outside_the_rule_are_refused(ws: Workspace, alias: str) -> None:
    log_versions(ws, "m", 1)
    for move in (
        lambda: set_alias(ws, "m", 1, alias),
        lambda: promote(ws, "m", 1, alias=alias),
        lambda: rollback(ws, "m", alias=alias),
    ):
        with pytest.raises(BadName) as info:
            move()
        assert "a-z, 0-9" in str(info.value)
    if alias != "latest":  # m@latest is the latest version, by design
        with pytest.raises((BadRef, BadName)):
            resolve_model(ws, f"m@{alias}")
    assert alias_history(ws, "m") == []


@pytest.mark.parametrize("alias", ["v", "v1x", "x" * 64, "blue-green_2", "0"])
def test_alias_names_inside_the_rule_are_taken(ws: Workspace, alias: str) -> None:
    log_versions(ws, "m", 1)
    set_alias(ws, "m", 1, alias)
    assert resolve_model(ws, f"m@{alias}").number == 1


def test_unknown_model_version_and_alias_are_not_found(ws: Workspace) -> None:
    log_versions(ws, "m", 3)
    set_alias(ws, "m", 1, "staging")
    promote(ws, "m", 2)
    for call in (
        lambda: resolve_model(ws, "nope"),
        lambda: keel.load_model("nope@champion", workspace=ws),
        lambda: set_alias(ws, "nope", 1, "x"),
        lambda: promote(ws, "nope", 1),
        lambda: rollback(ws, "nope"),
        lambda: alias_history(ws, "nope"),
        lambda: model_versions_of(ws, "nope"),
    ):
        with pytest.raises(NotFound) as info:
            call()
        assert "'nope'" in str(info.value) and "keel models list" in str(info.value)
    for call in (
        lambda: resolve_model(ws, "m/v9"),
        lambda: set_alias(ws, "m", 9, "staging"),
        lambda: promote(ws, "m", 9),
    ):
        with pytest.raises(NotFound, match=r"no version v9; its versions are v1\.\.v3"):
            call()
    with pytest.raises(NotFound, match="no alias 'canary'; its aliases: champion, staging"):
        keel.load_model("m@canary", workspace=ws)
    assert aliases(ws) == {"staging": 1, "champion": 2}  # nothing moved


@pytest.mark.parametrize("ref", ["m/v0", "m/vx", "m/", "m@", "m@@x", "bad name", "/v1"])
def test_malformed_references_are_bad_refs(ws: Workspace, ref: str) -> None:
    log_versions(ws, "m", 1)
    with pytest.raises(BadRef):
        resolve_model(ws, ref)


# -- other processes ------------------------------------------------------------------------

READER = """
import sys, keel
for line in sys.stdin:
    print(keel.load_model("m@champion").ref, flush=True)
"""


def check_visibility(ws: Workspace) -> None:
    """A long-lived reader in another process sees every move as soon as it returns."""
    log_versions(ws, "m", 3)
    promote(ws, "m", 1)
    reader = start_python(READER, ws.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert reader.stdin is not None and reader.stdout is not None

    def ask() -> str:
        reader.stdin.write("?\n")  # type: ignore[union-attr]
        reader.stdin.flush()  # type: ignore[union-attr]
        return reader.stdout.readline().strip()  # type: ignore[union-attr]

    try:
        assert ask() == "m/v1"  # the reader has loaded once: no warm-up can hide a cache
        promote(ws, "m", 3)
        assert ask() == "m/v3"
        rollback(ws, "m")
        assert ask() == "m/v1"
        set_alias(ws, "m", 2, "champion")
        assert ask() == "m/v2"
    finally:
        finish(reader)  # closes its stdin: the reader ends


def test_a_moved_alias_is_visible_to_another_process_at_once(ws: Workspace) -> None:
    check_visibility(ws)


PROMOTER = """
import os, sys, time, keel
from keel.registry.versions import promote
root, ready, go, *numbers = sys.argv[1:]
ws = keel.connect(root)
ws.db.read().__enter__()  # connected and warm before the barrier
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.0005)
for n in numbers:
    promote(ws, "m", int(n), message=f"pid {os.getpid()}")
    time.sleep(0.002)  # let the other writer in between (the outcome must not depend on it)
print(os.getpid())
"""


def race_promotions(ws: Workspace, tmp: Path, rounds: int) -> list[str]:
    """Two processes promote at the same moment: A alternates v2/v3, B alternates v4/v5."""
    log_versions(ws, "m", 5)
    promote(ws, "m", 1)
    plans = [
        [str(2 + i % 2) for i in range(rounds)],
        [str(4 + i % 2) for i in range(rounds)],
    ]
    go = tmp / "go"
    procs = [
        start_python(
            PROMOTER, ws.root, str(ws.root), str(tmp / f"ready{i}"), str(go), *plan,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for i, plan in enumerate(plans)
    ]  # fmt: skip
    wait_for(lambda: all((tmp / f"ready{i}").exists() for i in range(2)), timeout=60)
    go.touch()
    pids = [finish(p).strip() for p in procs]
    return [plans[0][-1], plans[1][-1], *pids]


def check_race(ws: Workspace, rounds: int, outcome: list[str]) -> None:
    last_a, last_b, pid_a, pid_b = outcome
    moves = alias_history(ws, "m")
    chain_is_consistent(moves)
    champ = [e for e in moves if e.name == "m@champion"]
    # every promotion of both processes is one event (their targets never coincide)
    assert len(champ) == 1 + 2 * rounds
    by_pid = {pid_a: 0, pid_b: 0}
    for e in champ[:-1]:
        by_pid[e.message.split()[-1]] += 1
    assert by_pid == {pid_a: rounds, pid_b: rounds}
    # the final state is the last move of one of them, and previous agrees with it
    now = aliases(ws)
    assert str(now["champion"]) == champ[0].to_target
    assert champ[0].to_target in (last_a, last_b)
    assert str(now["previous"]) == champ[0].from_target
    # each champion move with a from moved previous there in the same transaction
    ordered = sorted(moves, key=lambda e: e.id)
    for i, e in enumerate(ordered):
        if e.name == "m@champion" and e.from_target is not None and e.action == "promote":
            nxt = ordered[i + 1]
            assert (nxt.name, nxt.to_target) == ("m@previous", e.from_target), (e, nxt)


def test_two_processes_promoting_at_once(ws: Workspace, tmp_path: Path) -> None:
    rounds = 12
    check_race(ws, rounds, race_promotions(ws, tmp_path, rounds))


PG = pytest.mark.postgres


@PG
def test_two_processes_promoting_at_once_on_postgres(pg_ws: Workspace, tmp_path: Path) -> None:
    rounds = 12
    check_race(pg_ws, rounds, race_promotions(pg_ws, tmp_path, rounds))


LOGGER = """
import os, sys, time, keel
from tests.registry.helpers import Const, EXAMPLE
root, ready, go, count = sys.argv[1:]
ws = keel.connect(root)
run = keel.start_run(workspace=ws, capture_code=False)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.0005)
numbers = [run.log_model(Const(1.0), "m", input_example=EXAMPLE).number for _ in range(int(count))]
run.end()
print(" ".join(map(str, numbers)))
"""


def test_two_processes_logging_versions_at_once(ws: Workspace, tmp_path: Path) -> None:
    count = 8
    go = tmp_path / "go"
    procs = [
        start_python(
            LOGGER, ws.root, str(ws.root), str(tmp_path / f"ready{i}"), str(go), str(count),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]  # fmt: skip
    wait_for(lambda: all((tmp_path / f"ready{i}").exists() for i in range(2)), timeout=60)
    go.touch()
    got = [[int(n) for n in finish(p).split()] for p in procs]
    for numbers in got:
        assert numbers == sorted(numbers)  # monotonic as each process sees them
    assert sorted(got[0] + got[1]) == list(range(1, 2 * count + 1))  # no gap, no duplicate
    assert [v.number for v in model_versions_of(ws, "m")] == list(range(2 * count, 0, -1))


# -- PostgreSQL: the basic flow -------------------------------------------------------------


@PG
def test_basic_flow_on_postgres(pg_ws: Workspace) -> None:
    ws = pg_ws
    versions = log_versions(ws, "m", 3)
    assert [v.number for v in versions] == [1, 2, 3]
    set_alias(ws, "m", 1, "staging", "try it")
    for n in (1, 2, 3):
        promote(ws, "m", n)
    assert aliases(ws) == {"champion": 3, "previous": 2, "staging": 1}
    assert rollback(ws, "m").to_target == "2"
    assert rollback(ws, "m").to_target == "1"
    with pytest.raises(InvalidInput, match="no earlier version"):
        rollback(ws, "m")
    assert keel.load_model("m@champion", workspace=ws).predict(EXAMPLE) == [1.0, 1.0]
    with pytest.raises(BadName):
        set_alias(ws, "m", 1, "Latest")
    with pytest.raises(NotFound, match=r"its versions are v1\.\.v3"):
        promote(ws, "m", 7)
    moves = alias_history(ws, "m")
    chain_is_consistent(moves)
    assert [e.action for e in moves if e.name == "m@champion"][:2] == ["rollback", "rollback"]
    assert {m.name: m.aliases for m in list_models(ws)} == {
        "m": {"champion": 1, "previous": 2, "staging": 1}
    }


@PG
def test_a_moved_alias_is_visible_to_another_process_on_postgres(pg_ws: Workspace) -> None:
    check_visibility(pg_ws)
