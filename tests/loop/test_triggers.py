"""Triggers looked at on a served world (a churn model trained on a recorded dataset version,
its traffic written into the log lake as the server logs it): each fires on its situation,
names it by an id a second look maps to again, and says why it did not fire."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import keel
from keel.loop.policy import parse_policy
from keel.loop.state import move, start_attempt
from keel.loop.triggers import look
from keel.workspace import Workspace
from tests.monitor.live_world import MODEL, build, customers, log_outcomes, log_traffic


def _policy(**trigger: Any) -> Any:
    doc: dict[str, Any] = {"retrain": {"pipeline": "p.py:retrain"}, "trigger": trigger}
    return parse_policy(doc, check_pipeline=False)


def _one(looks: list[Any], kind: str) -> Any:
    return next(x for x in looks if x.kind == kind)


@pytest.fixture
def world(tmp_path: Path) -> Workspace:
    return build(tmp_path, n=2000)


def test_drift_fires_once_per_window_and_a_clean_window_does_not(world: Workspace) -> None:
    now = time.time()
    log_traffic(world, 600, start=now - 1800, seconds=600, seed=5, drift=True)
    policy = _policy(drift=True, window="1h")
    fired = _one(look(world, MODEL, policy, now=now), "drift")
    assert fired.fired and fired.trigger_id == f"churn|drift|v1|{int(now // 3600)}"
    assert "monthly" in fired.evidence["drifted"] and fired.evidence["report"]
    attempt, _ = start_attempt(world, MODEL, fired.trigger_id, fired.to_dict(), cooldown=0)
    assert attempt is not None
    again = _one(look(world, MODEL, policy, now=now + 5), "drift")
    assert again.trigger_id == fired.trigger_id  # the same situation, the same id
    assert start_attempt(world, MODEL, again.trigger_id, again.to_dict(), cooldown=0)[0] is None


def test_a_clean_or_thin_window_does_not_fire_and_says_why(world: Workspace) -> None:
    now = time.time()
    policy = _policy(drift=True, window="1h")
    thin = _one(look(world, MODEL, policy, now=now), "drift")
    assert not thin.fired and thin.message.startswith("not enough served traffic")
    log_traffic(world, 600, start=now - 1800, seconds=600, seed=6)
    clean = _one(look(world, MODEL, policy, now=now), "drift")
    assert not clean.fired and clean.message.startswith("no drift")


def test_min_value_fires_on_realized_accuracy_below_the_bound(world: Workspace) -> None:
    now = time.time()
    traffic = log_traffic(world, 400, start=now - 1200, seconds=300, seed=7)
    policy = _policy(drift=False, min_value=0.95, window="1h")
    thin = _one(look(world, MODEL, policy, now=now), "min_value")
    assert not thin.fired  # no outcome has arrived, and no estimate was asked of drift
    log_outcomes(world, traffic.ids, traffic.truth, at=now - 600)
    realized = _one(look(world, MODEL, policy, now=now), "min_value")
    assert realized.fired and realized.evidence["metric"] == "accuracy"
    assert realized.evidence["outcomes"] == 400 and realized.evidence["realized"] < 0.95
    assert realized.trigger_id == f"churn|min_value|v1|{int(now // 3600)}"
    fine = _one(look(world, MODEL, _policy(drift=False, min_value=0.3, window="1h"), now=now), "min_value")
    assert not fine.fired and "at or above 0.3" in fine.message


def test_min_value_judges_value_per_decision_with_the_gates_value_matrix(world: Workspace) -> None:
    now = time.time()
    traffic = log_traffic(world, 300, start=now - 1200, seconds=300, seed=8)
    log_outcomes(world, traffic.ids, traffic.truth, at=now - 600)
    doc = {
        "retrain": {"pipeline": "p.py:retrain"},
        "trigger": {"drift": False, "min_value": 5.0, "window": "1h"},
        "gate": {"primary": {"metric": "value"}, "value": {"tp": 10.0, "fp": -2.0, "fn": -5.0, "tn": 0.0}},
    }
    fired = _one(look(world, MODEL, parse_policy(doc, check_pipeline=False), now=now), "min_value")
    assert fired.fired and fired.evidence["metric"] == "value per prediction"
    assert fired.evidence["realized"] < 5.0


def test_every_is_due_from_the_champion_then_from_the_last_attempt(world: Workspace) -> None:
    champion = keel.registry.versions.resolve_model(world, f"{MODEL}@champion")
    policy = _policy(drift=False, every="1h")
    early = _one(look(world, MODEL, policy, now=champion.created_at + 60), "every")
    assert not early.fired and early.message.startswith("next due in")
    due = _one(look(world, MODEL, policy, now=champion.created_at + 3700), "every")
    assert due.fired and due.trigger_id == f"churn|every|{int(champion.created_at)}"
    attempt, _ = start_attempt(world, MODEL, due.trigger_id, due.to_dict(), cooldown=0)
    assert attempt is not None
    move(world, attempt, "rejected", "gate", "not better")
    later = _one(look(world, MODEL, policy, now=time.time() + 60), "every")
    assert not later.fired  # the anchor is now the attempt's start


def test_new_data_fires_on_a_head_newer_than_the_champions_training_data(
    world: Workspace, tmp_path: Path
) -> None:
    policy = _policy(drift=False, new_data="customers")
    same = _one(look(world, MODEL, policy), "new_data")
    assert not same.fired and "trained on customers@v1" in same.message
    path = tmp_path / "data" / "customers.csv"
    customers(2000, seed=9).to_csv(path, index=False)
    keel.data.add(path, name="customers", workspace=world)
    newer = _one(look(world, MODEL, policy), "new_data")
    assert newer.fired and newer.trigger_id == "churn|new_data|customers@v2"
    assert newer.evidence["trained_on"] == 1 and newer.evidence["head"] == 2


def test_without_lineage_new_data_waits_for_a_head_newer_than_the_first_look(
    world: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "data" / "other.csv"
    customers(500, seed=10).to_csv(path, index=False)
    keel.data.add(path, name="other", workspace=world)
    policy = _policy(drift=False, new_data="other")
    first = _one(look(world, MODEL, policy), "new_data")
    assert not first.fired and first.message.startswith("first look: other@v1 is the baseline")
    assert not _one(look(world, MODEL, policy), "new_data").fired  # still the same head
    customers(500, seed=11).to_csv(path, index=False)
    keel.data.add(path, name="other", workspace=world)
    fired = _one(look(world, MODEL, policy), "new_data")
    assert fired.fired and fired.trigger_id == "churn|new_data|other@v2"
    assert fired.evidence["baseline"] == 1


def test_a_dataset_that_does_not_exist_does_not_fire(world: Workspace) -> None:
    missing = _one(look(world, MODEL, _policy(drift=False, new_data="nope")), "new_data")
    assert not missing.fired and missing.message.startswith("dataset nope:")
