"""``keel runs list|show|compare|metrics`` through the real executable."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import keel
from keel.workspace import Workspace
from tests.conftest import run_keel, write_files
from tests.track.helpers import keel_many, keel_ok, make_repo, one_error_line, wait_for


@dataclass
class Runs:
    root: Path
    ws: Workspace
    a: str  # gbm, depth 6, auc 0.91, dirty repo, input, artifact, NaN in history
    b: str  # gbm, depth 8, auc 0.85
    c: str  # rf, no auc, failed
    commit: str


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    tmp = tmp_path_factory.mktemp("cli")
    ws = keel.init(tmp / "ws")
    repo = tmp / "repo"
    commit = make_repo(repo, {"train.py": "print('one')\n"})
    (repo / "train.py").write_text("print('two')\n")
    src = write_files(tmp / "data", {"d.csv": "x\n1\n2\n"})
    keel.data.add(src / "d.csv", name="churn", workspace=ws)
    art = write_files(tmp / "out", {"roc.png": b"png-bytes"}) / "roc.png"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(repo)
        with keel.start_run(
            name="alpha", params={"model": "gbm", "depth": 6, "lr": 0.1}, workspace=ws
        ) as a:
            a.use("churn@v1")
            for step, loss in enumerate([0.9, 0.5, float("nan"), 0.25]):
                a.log_metric("loss", loss, step=step)
            a.log_metric("auc", 0.91)
            a.set_tags({"team": "risk"})
            a.log_artifact(art)
    with keel.start_run(
        name="beta",
        params={"model": "gbm", "depth": 8, "lr": 0.1},
        workspace=ws,
        capture_code=False,
    ) as b:
        b.log_metrics({"auc": 0.85, "loss": 0.4})
    with (
        pytest.raises(RuntimeError),
        keel.start_run(name="gamma", params={"model": "rf"}, workspace=ws, capture_code=False) as c,
    ):
        c.log_metric("loss", 1.5)
        raise RuntimeError("diverged")
    for r in (a, b, c):  # the environment is written in the background
        wait_for(lambda r=r: keel.get_run(r.id, workspace=ws).environment_oid)
    yield Runs(tmp / "ws", ws, a.id, b.id, c.id, commit)
    ws.close()


# -- list -----------------------------------------------------------------------------


def test_list_json_and_human(runs: Runs) -> None:
    doc = keel_ok("runs", "list", "--json", cwd=runs.root)
    assert [r["id"] for r in doc["runs"]] == [runs.c, runs.b, runs.a]  # newest first
    assert doc["offset"] == 0 and doc["next_offset"] is None
    alpha = doc["runs"][2]
    assert alpha["name"] == "alpha" and alpha["status"] == "finished"
    assert alpha["params"] == {"model": "gbm", "depth": 6, "lr": 0.1}
    assert alpha["metrics"] == {"auc": 0.91, "loss": 0.25}
    assert doc["runs"][0]["status"] == "failed"
    text = keel_ok("runs", "list", cwd=runs.root)
    for rid, name in ((runs.a, "alpha"), (runs.b, "beta"), (runs.c, "gamma")):
        line = next(x for x in text.splitlines() if rid[:8] in x)
        assert name in line
    assert "failed" in text


def test_list_filter_sort_limit(runs: Runs) -> None:
    doc = keel_ok("runs", "list", "--filter", "params.depth = 6", "--json", cwd=runs.root)
    assert [r["id"] for r in doc["runs"]] == [runs.a]
    doc = keel_ok(
        "runs", "list", "-f", "metrics.auc > 0.8 and params.model = gbm", "--json", cwd=runs.root
    )
    assert {r["id"] for r in doc["runs"]} == {runs.a, runs.b}
    doc = keel_ok("runs", "list", "--sort", "-metrics.auc", "--json", cwd=runs.root)
    assert [r["id"] for r in doc["runs"]] == [runs.a, runs.b, runs.c]  # no auc: last
    doc = keel_ok("runs", "list", "--sort", "metrics.auc", "--limit", "2", "--json", cwd=runs.root)
    assert [r["id"] for r in doc["runs"]] == [runs.b, runs.a]
    assert doc["limit"] == 2 and doc["next_offset"] == 2
    doc = keel_ok(
        "runs", "list", "-s", "-metrics.auc", "-n", "2", "--offset", "2", "--json", cwd=runs.root
    )
    assert [r["id"] for r in doc["runs"]] == [runs.c] and doc["next_offset"] is None


def test_list_human_paging_hint_and_empty(runs: Runs, tmp_path: Path) -> None:
    proc = run_keel("runs", "list", "--limit", "1", "--sort", "-metrics.auc", cwd=runs.root)
    assert proc.returncode == 0
    assert runs.a[:8] in proc.stdout and runs.b[:8] not in proc.stdout
    assert "0.91" in proc.stdout
    assert "--offset 1" in proc.stderr
    proc = run_keel("runs", "list", "--filter", "status = crashed", cwd=runs.root)
    assert proc.returncode == 0 and "no runs match" in proc.stdout
    keel.init(tmp_path / "empty").close()
    proc = run_keel("runs", "list", cwd=tmp_path / "empty")
    assert proc.returncode == 0 and "no runs yet" in proc.stdout
    assert keel_ok("runs", "list", "--json", cwd=tmp_path / "empty")["runs"] == []


BAD_LIST_ARGS = [
    (["--filter", "metrics.auc >"], "expected a value"),
    (["--filter", "foo = 1"], "unknown field 'foo'"),
    (["--filter", "(status = x"], "expected ')'"),
    (["--filter", "metrics.auc > high"], "numbers"),
    (["--sort", "-bogus"], "invalid sort"),
]


def test_list_bad_input_exits_2_with_one_line(runs: Runs) -> None:
    procs = keel_many([("runs", "list", *args) for args, _ in BAD_LIST_ARGS], runs.root)
    for (args, needle), proc in zip(BAD_LIST_ARGS, procs, strict=True):
        line = one_error_line(proc, 2)
        assert needle in line, args
        assert proc.stdout == "", args


# -- show -----------------------------------------------------------------------------


def test_show_json(runs: Runs) -> None:
    doc = keel_ok("runs", "show", runs.a, "--json", cwd=runs.root)
    assert doc["id"] == runs.a and doc["name"] == "alpha" and doc["status"] == "finished"
    assert doc["params"] == {"model": "gbm", "depth": 6, "lr": 0.1}
    assert doc["tags"] == {"team": "risk"}
    loss = doc["metrics"]["loss"]
    assert loss["last"] == 0.25 and loss["min"] == 0.25 and loss["max"] == 0.9
    assert loss["count"] == 4
    assert doc["metrics"]["auc"]["last"] == 0.91
    assert [i["ref"] for i in doc["inputs"]] == ["churn@v1"]
    assert [(x["path"], x["size"]) for x in doc["artifacts"]] == [("roc.png", 9)]
    assert doc["code"]["commit"] == runs.commit and doc["code"]["dirty"] is True
    assert doc["environment"]["python"] and "keel-mlops" in doc["environment"]["packages"]
    assert doc["reproduction_of"] is None and doc["error"] is None
    failed = keel_ok("runs", "show", runs.c, "--json", cwd=runs.root)
    assert failed["status"] == "failed" and "RuntimeError: diverged" in failed["error"]


def test_show_human(runs: Runs) -> None:
    out = keel_ok("runs", "show", runs.a, cwd=runs.root)
    assert runs.a in out and "alpha" in out and "finished" in out
    assert runs.commit[:12] in out and "uncommitted" in out
    assert "churn@v1" in out and "roc.png" in out and "team = risk" in out
    for needle in ("depth", "gbm", "loss", "0.25", "0.9", "auc", "0.91", "Python"):
        assert needle in out, needle
    out = keel_ok("runs", "show", runs.c, cwd=runs.root)
    assert "failed" in out and "RuntimeError: diverged" in out


def test_show_patch(runs: Runs) -> None:
    proc = run_keel("runs", "show", runs.a, "--patch", cwd=runs.root)
    assert proc.returncode == 0, proc.stderr
    assert "-print('one')" in proc.stdout and "+print('two')" in proc.stdout
    assert proc.stdout.startswith("diff --git")
    proc = run_keel("runs", "show", runs.b, "--patch", cwd=runs.root)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no uncommitted changes" in proc.stderr


def test_resolution_by_prefix_and_name(runs: Runs) -> None:
    refs = (runs.a[:4], "alpha", f"  {runs.a[:12]}  ")
    procs = keel_many([("runs", "show", ref, "--json") for ref in refs], runs.root)
    for ref, proc in zip(refs, procs, strict=True):
        assert proc.returncode == 0, (ref, proc.stderr)
        assert json.loads(proc.stdout)["id"] == runs.a, ref


def test_unknown_run_exits_2(runs: Runs) -> None:
    calls = [
        ("runs", "show", "ffffffffffff"),
        ("runs", "compare", runs.a, "nosuchrun"),
        ("runs", "show", " "),
    ]
    procs = keel_many(calls, runs.root)
    for args, proc in zip(calls[:-1], procs, strict=False):
        line = one_error_line(proc, 2)
        assert "no run" in line, args
    assert "empty run reference" in one_error_line(procs[-1], 2)


def test_ambiguous_prefix_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = keel.init(tmp_path / "ws")
    ids = iter([uuid.UUID("abcd1111" + "0" * 24), uuid.UUID("abcd2222" + "0" * 24)])
    monkeypatch.setattr("keel.track.run.uuid.uuid4", lambda: next(ids))
    for name in ("one", "two"):
        keel.start_run(name=name, workspace=ws, capture_code=False).end()
    monkeypatch.undo()
    line = one_error_line(run_keel("runs", "show", "abcd", cwd=ws.root), 2)
    assert "ambiguous: 2 runs start with it (abcd1, abcd2); give at least 5 characters" in line
    assert keel_ok("runs", "show", "abcd2", "--json", cwd=ws.root)["name"] == "two"
    short = one_error_line(run_keel("runs", "show", "ab", cwd=ws.root), 2)
    assert "run id prefixes need at least 4 characters ('ab' is 2)" in short
    ws.close()


def test_a_name_several_runs_carry_is_exit_2_naming_them_unless_latest(tmp_path: Path) -> None:
    ws = keel.init(tmp_path / "ws")
    first = keel.start_run(name="gbm", workspace=ws, capture_code=False)
    first.end()
    second = keel.start_run(name="gbm", workspace=ws, capture_code=False)
    second.end()
    line = one_error_line(run_keel("runs", "show", "gbm", cwd=ws.root), 2)
    assert line.startswith("keel: error: run name 'gbm' names 2 runs, newest first: ")
    assert line.index(second.id[:8]) < line.index(first.id[:8])
    assert line.endswith("give an id, or --latest for the newest")
    assert keel_ok("runs", "show", "gbm", "--latest", "--json", cwd=ws.root)["id"] == second.id
    with pytest.raises(keel.errors.InvalidInput, match="names 2 runs"):
        keel.get_run("gbm", workspace=ws)
    assert keel.get_run("gbm", workspace=ws, latest=True).id == second.id
    refused = one_error_line(run_keel("reproduce", "gbm", cwd=ws.root), 2)
    assert "names 2 runs" in refused
    ws.close()


# -- compare --------------------------------------------------------------------------


def test_compare_json(runs: Runs) -> None:
    doc = keel_ok("runs", "compare", runs.a, runs.b, "--json", cwd=runs.root)
    assert doc["runs"] == [runs.a, runs.b] and doc["names"] == ["alpha", "beta"]
    params = {row["key"]: row for row in doc["params"]}
    assert params["depth"]["values"] == [6, 8] and params["depth"]["differs"] is True
    assert params["model"]["values"] == ["gbm", "gbm"] and params["model"]["differs"] is False
    assert params["lr"]["differs"] is False
    metrics = {row["key"]: row for row in doc["metrics"]}
    assert metrics["auc"]["values"] == [0.91, 0.85] and metrics["auc"]["differs"] is True
    assert doc["inputs"][0]["values"] == [["churn@v1"], []]
    code = {row["key"]: row for row in doc["code"]}
    assert code["commit"]["values"] == [runs.commit, None] and code["commit"]["differs"]
    three = keel_ok("runs", "compare", runs.a, runs.b, runs.c, "--json", cwd=runs.root)
    rows = {row["key"]: row for row in three["params"]}
    assert rows["depth"]["values"] == [6, 8, None]
    assert rows["model"]["values"] == ["gbm", "gbm", "rf"] and rows["model"]["differs"]
    assert three["status"][0]["values"] == ["finished", "finished", "failed"]


def test_compare_human_shows_what_differs(runs: Runs) -> None:
    out = keel_ok("runs", "compare", "alpha", runs.b[:8], cwd=runs.root)
    lines = out.splitlines()
    depth = next(x for x in lines if " depth " in f" {x} ")
    assert "6" in depth and "8" in depth
    assert not any(" lr " in f" {x} " for x in lines)  # equal params are left out
    assert not any(" model " in f" {x} " for x in lines)
    out_all = keel_ok("runs", "compare", "alpha", "beta", "--all", cwd=runs.root)
    assert any(" lr " in f" {x} " for x in out_all.splitlines())


def test_compare_needs_two_runs(runs: Runs) -> None:
    line = one_error_line(run_keel("runs", "compare", runs.a, cwd=runs.root), 2)
    assert "at least two" in line


# -- metrics ----------------------------------------------------------------------------


def test_metrics_json_and_human(runs: Runs) -> None:
    proc = run_keel("runs", "metrics", runs.a, "loss", "--json", cwd=runs.root)
    assert proc.returncode == 0 and "NaN" in proc.stdout  # non-finite values shown as such
    doc = json.loads(proc.stdout)
    assert doc["key"] == "loss"
    points = doc["points"]
    assert [p["step"] for p in points] == [0, 1, 2, 3]
    values = [p["value"] for p in points]
    assert values[:2] == [0.9, 0.5] and math.isnan(values[2]) and values[3] == 0.25
    assert all(isinstance(p["time"], float) for p in points)
    proc = run_keel("runs", "metrics", "alpha", "loss", cwd=runs.root)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].split("\t") == ["step", "time", "value"]
    assert [ln.split("\t")[0] for ln in lines[1:]] == ["0", "1", "2", "3"]
    assert [ln.split("\t")[2] for ln in lines[1:]] == ["0.9", "0.5", "nan", "0.25"]


def test_metrics_unknown_key_exits_2(runs: Runs) -> None:
    procs = keel_many(
        [("runs", "metrics", runs.a, "nosuch"), ("runs", "metrics", runs.a, "a*b")], runs.root
    )
    line = one_error_line(procs[0], 2)
    assert "no metric 'nosuch'" in line and "auc, loss" in line
    assert "invalid metric key" in one_error_line(procs[1], 2)
