"""Names are case-sensitive everywhere: ``cancer`` and ``Cancer`` are two models (issue 21).

SQLite's LIKE ignores case, so the alias lookups that used it showed the
aliases and the alias history of ``cancer`` on ``Cancer``. Every kind of name
is created in both spellings here, and each must see only its own records.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import keel
from keel.deploy import current_deployment, start_deployment
from keel.registry.lineage import lineage
from keel.registry.versions import alias_history, list_models, promote, resolve_model
from keel.workspace import Workspace
from tests.conftest import run_keel
from tests.registry.helpers import log_versions


def _both_spellings(ws: Workspace, tmp_path: Path) -> None:
    log_versions(ws, "cancer", 2)
    log_versions(ws, "Cancer", 1, start=10.0)
    promote(ws, "cancer", 1)
    promote(ws, "cancer", 2, alias="challenger")
    for name, rows in (("churn", "a\n1\n"), ("Churn", "a\n1\n2\n")):
        path = tmp_path / f"{name}.csv"
        path.write_text(rows)
        keel.data.add(path, name=name, workspace=ws)
    start_deployment(ws, "cancer", 2, mode="shadow")


def _check(ws: Workspace) -> None:
    summaries = {m.name: m for m in list_models(ws)}
    assert summaries["cancer"].aliases == {"champion": 1, "challenger": 2}
    assert summaries["Cancer"].aliases == {}
    assert [e.name for e in alias_history(ws, "Cancer")] == []
    assert {e.name for e in alias_history(ws, "cancer")} == {"cancer@champion", "cancer@challenger"}
    assert resolve_model(ws, "Cancer").aliases == []
    with pytest.raises(keel.errors.NotFound):
        resolve_model(ws, "Cancer@champion")
    assert resolve_model(ws, "cancer@champion").number == 1
    assert current_deployment(ws, "Cancer") is None
    assert current_deployment(ws, "cancer") is not None
    assert keel.data.get("churn", workspace=ws).digest != keel.data.get("Churn", workspace=ws).digest
    assert [v.ref for v in keel.data.log("Churn", workspace=ws)] == ["Churn@v1"]
    graph = lineage(ws, "Cancer/v1")
    assert all("cancer" not in str(n.get("ref", "")) for n in graph["nodes"])
    assert [n.get("aliases") for n in graph["nodes"] if n["kind"] == "model"] == [[]]


def test_names_that_differ_in_case_are_different_records(ws: Workspace, tmp_path: Path) -> None:
    _both_spellings(ws, tmp_path)
    _check(ws)


@pytest.mark.postgres
def test_names_that_differ_in_case_on_postgresql(pg_ws: Workspace, tmp_path: Path) -> None:
    _both_spellings(pg_ws, tmp_path)
    _check(pg_ws)


def test_the_cli_shows_each_spelling_its_own_history(ws: Workspace, tmp_path: Path) -> None:
    _both_spellings(ws, tmp_path)
    upper = run_keel("models", "show", "Cancer", cwd=ws.root)
    assert upper.returncode == 0, upper.stderr
    assert "champion" not in upper.stdout and "challenger" not in upper.stdout
    listing = run_keel("models", "list", "--json", cwd=ws.root)
    aliases = {m["name"]: m["aliases"] for m in json.loads(listing.stdout)}
    assert aliases == {"Cancer": {}, "cancer": {"champion": 1, "challenger": 2}}
