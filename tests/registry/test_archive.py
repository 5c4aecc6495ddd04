"""``keel models archive``: a version hidden from lists, "latest" and aliases, whose record,
lineage and events stay; ``unarchive`` shows it again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import keel
from keel.deploy.records import start_deployment
from keel.errors import InvalidInput
from keel.registry.versions import promote, resolve_model
from tests.conftest import run_keel
from tests.registry.helpers import EXAMPLE, Const, one_error_line


def keel_ok(root: Path, *args: str) -> Any:
    proc = run_keel(*args, cwd=root, env={"KEEL_USER": "carol"})
    assert proc.returncode == 0, f"keel {' '.join(args)} -> {proc.returncode}\n{proc.stderr}"
    return json.loads(proc.stdout) if "--json" in args else proc.stdout


def keel_refused(root: Path, *args: str) -> str:
    return one_error_line(run_keel(*args, cwd=root))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = keel.init(tmp_path / "ws")
    with keel.start_run(name="train", workspace=ws, capture_code=False) as run:
        for value in (1.0, 2.0, 3.0):
            run.log_model(Const(value), "churn", input_example=EXAMPLE)
    promote(ws, "churn", 2)
    ws.close()
    return tmp_path / "ws"


def test_archive_hides_a_version_and_unarchive_shows_it(root: Path) -> None:
    out = keel_ok(root, "models", "archive", "churn", "3", "-m", "trained on a bad export")
    assert "churn/v3 archived" in out
    assert "archived already" in keel_ok(root, "models", "archive", "churn", "v3")

    [listed] = keel_ok(root, "models", "list", "--json")
    assert (listed["versions"], listed["latest"], listed["archived"]) == (2, 2, 1)
    assert "2 (+1 archived)" in keel_ok(root, "models", "list")
    [everything] = keel_ok(root, "models", "list", "--all", "--json")
    assert (everything["versions"], everything["latest"]) == (3, 3)

    shown = keel_ok(root, "models", "show", "churn", "--json")
    assert [v["version"] for v in shown["versions"]] == [2, 1]
    [event] = [e for e in shown["events"] if e["action"] == "archive"]
    assert (event["version"], event["actor"], event["message"]) == (
        3,
        "carol",
        "trained on a bad export",
    )
    shown_all = keel_ok(root, "models", "show", "churn", "--all", "--json")
    assert [(v["version"], v["archived"]) for v in shown_all["versions"]] == [
        (3, True),
        (2, False),
        (1, False),
    ]
    assert "v3 (archived)" in keel_ok(root, "models", "show", "churn", "--all")

    ws = keel.connect(root)
    try:
        assert resolve_model(ws, "churn").number == 2  # "latest" skips it
        kept = resolve_model(ws, "churn/v3")  # named, it still resolves: its record stays
        assert kept.archived and kept.load().predict([{"x": 1.0}]) == [3.0]
    finally:
        ws.close()
    graph = keel_ok(root, "lineage", "churn/v3", "--json")
    assert graph["root"] == "model:churn/v3" and any(n["kind"] == "run" for n in graph["nodes"])
    run_id = shown_all["versions"][0]["run"]
    assert "model: churn/v3 (archived)" in keel_ok(root, "runs", "show", run_id)

    assert "churn/v3 unarchived" in keel_ok(root, "models", "unarchive", "churn", "3")
    assert "is not archived" in keel_ok(root, "models", "unarchive", "churn", "3")
    shown = keel_ok(root, "models", "show", "churn", "--json")
    assert [v["version"] for v in shown["versions"]] == [3, 2, 1]
    assert [e["action"] for e in shown["events"]][:2] == ["unarchive", "archive"]


def test_no_alias_or_deployment_points_at_an_archived_version(root: Path) -> None:
    keel_ok(root, "models", "archive", "churn", "1")
    assert "churn/v1 is archived" in keel_refused(root, "models", "alias", "churn", "1", "staging")
    assert "churn/v1 is archived" in keel_refused(root, "models", "promote", "churn", "1")
    ws = keel.connect(root)
    try:
        with pytest.raises(InvalidInput, match="archived"):
            start_deployment(ws, "churn", 1, mode="shadow")
        start_deployment(ws, "churn", 3, mode="shadow")
    finally:
        ws.close()
    # what serves cannot be archived: the champion, nor a live deployment's challenger
    assert "churn@champion: move the alias first" in keel_refused(
        root, "models", "archive", "churn", "2"
    )
    assert "challenger of a live deployment" in keel_refused(
        root, "models", "archive", "churn", "3"
    )
    assert "has no version v9" in keel_refused(root, "models", "archive", "churn", "9")
    assert "no model named 'nope'" in keel_refused(root, "models", "archive", "nope", "1")
    shown = keel_ok(root, "models", "show", "churn", "--json")
    assert [v["version"] for v in shown["versions"]] == [3, 2]  # nothing moved by the refusals
    assert shown["aliases"] == {"champion": 2}
