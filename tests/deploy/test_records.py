"""Deployment records: started, stopped, promoted and rolled back only through events."""

from __future__ import annotations

import pytest

from keel.deploy import (
    Guardrails,
    current_deployment,
    declare_fields,
    deployment_history,
    end_deployment,
    promote_challenger,
    routing_state,
    start_deployment,
)
from keel.errors import AlreadyExists, InvalidInput, NotFound
from keel.registry.versions import model_aliases
from tests.serve.helpers import register_churn


@pytest.fixture
def churn(ws):
    register_churn(ws, broken=False)
    return ws


def test_start_status_and_stop(churn):
    assert routing_state(churn, "churn", "champion") == ("1", None)
    declare_fields(churn, "churn", ["customer_id"])  # a key outside the signature: declared
    dep = start_deployment(
        churn, "churn", 2, mode="canary", share=0.2, key="customer_id", message="try v2"
    )
    assert (dep.challenger, dep.mode, dep.share, dep.key) == (2, "canary", 0.2, "customer_id")
    assert dep.guardrails == Guardrails.default()
    assert current_deployment(churn, "churn") == dep
    assert routing_state(churn, "churn", "champion") == ("1", dep.id)
    end_deployment(churn, "churn", message="enough")
    assert current_deployment(churn, "churn") is None
    actions = [(e.action, e.message) for e in deployment_history(churn, "churn")]
    assert actions == [("stop", "enough"), ("start", "try v2")]


def test_promote_moves_the_alias_and_ends_the_deployment(churn):
    start_deployment(churn, "churn", 2, mode="ab")
    moved = promote_challenger(churn, "churn")
    with churn.db.read() as conn:
        assert model_aliases(conn, "churn") == {"champion": 2, "previous": 1}
    assert current_deployment(churn, "churn") is None
    assert [e.action for e in moved][-1] == "promote"


def test_a_guardrail_only_ends_the_deployment_it_judged(churn):
    old = start_deployment(churn, "churn", 2, mode="canary")
    end_deployment(churn, "churn")
    new = start_deployment(churn, "churn", 2, mode="shadow")
    assert end_deployment(churn, "churn", action="rollback", message="late", only=old.id) is None
    assert current_deployment(churn, "churn") == new


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"challenger": 9, "mode": "canary"}, NotFound, "has no version v9"),
        ({"challenger": 1, "mode": "canary"}, InvalidInput, "already churn@champion"),
        (
            {"challenger": 2, "mode": "blue-green"},
            InvalidInput,
            "expected one of shadow, canary, ab",
        ),
        ({"challenger": 2, "mode": "canary", "share": 1.5}, InvalidInput, "between 0 and 1"),
        ({"challenger": 2, "mode": "ab", "share": 0.0}, InvalidInput, "between 0 and 1"),
        (
            {"challenger": 2, "mode": "shadow", "share": 0.5},
            InvalidInput,
            "does not apply to shadow",
        ),
        ({"challenger": 2, "mode": "canary", "key": " "}, InvalidInput, "sticky key"),
    ],
)
def test_bad_deployments_change_nothing(churn, kwargs, error, needle):
    with pytest.raises(error) as info:
        start_deployment(churn, "churn", **kwargs)
    assert needle in str(info.value)
    assert current_deployment(churn, "churn") is None
    assert deployment_history(churn, "churn") == []


def test_one_live_deployment_at_a_time_and_a_champion_first(churn, ws):
    start_deployment(churn, "churn", 2, mode="shadow")
    with pytest.raises(AlreadyExists, match="already has a live deployment"):
        start_deployment(churn, "churn", 2, mode="canary")
    with pytest.raises(NotFound, match="no model named 'fraud'"):
        start_deployment(churn, "fraud", 2, mode="canary")
    with pytest.raises(InvalidInput, match="has no live deployment"):
        end_deployment(churn, "churn") and end_deployment(churn, "churn")
    with pytest.raises(InvalidInput, match="points nowhere"):
        start_deployment(churn, "churn", 2, mode="canary", alias="staging")


@pytest.mark.postgres
def test_on_postgresql(pg_ws):
    register_churn(pg_ws, broken=False)
    dep = start_deployment(pg_ws, "churn", 2, mode="ab")
    assert routing_state(pg_ws, "churn", "champion") == ("1", dep.id)
    promote_challenger(pg_ws, "churn")
    assert routing_state(pg_ws, "churn", "champion") == ("2", None)


def test_a_key_outside_the_signature_needs_a_declaration(churn):
    """No server accepts an undeclared field: a canary keyed on it would refuse every client."""
    with pytest.raises(InvalidInput, match=r"--extra-field session"):
        start_deployment(churn, "churn", 2, mode="canary", key="session")
    assert current_deployment(churn, "churn") is None
    declare_fields(churn, "churn", ["session"])
    declare_fields(churn, "churn", ["session", "region"])  # a union; written once per new field
    from keel.deploy import declared_fields
    from keel.store.db import history

    assert declared_fields(churn, "churn") == ("region", "session")
    with churn.db.read() as conn:
        moves = history(conn, "serve.fields", "churn")
    assert [m.message for m in moves] == ["servers accept region", "servers accept session"]
    assert start_deployment(churn, "churn", 2, mode="canary", key="session").key == "session"
    with pytest.raises(InvalidInput, match="extra-field ''"):
        declare_fields(churn, "churn", [" "])
