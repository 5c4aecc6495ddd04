"""``keel reproduce``: re-create a run from its record (commit + patch + untracked files + data).

A deterministic scikit-learn script, run from a dirty working tree (an
uncommitted change to a tracked file and an untracked helper module it
imports), must come out ``identical``; an unseeded one must be reported as
``differs`` with the metric named; and a run whose commit, data or command is
gone must be refused with one line and exit 2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import keel
from tests.conftest import run_keel, write_files
from tests.track.helpers import git, keel_ok, make_repo, one_error_line

pytestmark = pytest.mark.slow

COMMITTED_TRAIN = """\
raise SystemExit("this is the committed version: the run used an uncommitted one")
"""

TRAIN = """\
import json
from pathlib import Path

import keel
from helper import make_model  # an untracked module

C = 0.05  # the uncommitted change

with keel.start_run(name="train", params={"C": C}, seeds={"sklearn": 0}) as run:
    frame = run.use("train@v1").to_pandas()
    X = frame[["a", "b"]].to_numpy()
    y = frame["y"].to_numpy()
    model = make_model(C).fit(X, y)
    run.log_metric("accuracy", float((model.predict(X) == y).mean()))
    run.log_metric("coef_a", float(model.coef_[0][0]))
    out = Path("out")
    out.mkdir(exist_ok=True)
    (out / "coef.json").write_text(json.dumps(model.coef_.tolist()))
    run.log_artifact(out / "coef.json")
    run.log_model(model, "clf", input_example=frame[["a", "b"]].head(3))
print(run.id)
"""

HELPER = """\
from sklearn.linear_model import LogisticRegression


def make_model(c):
    return LogisticRegression(C=c, max_iter=200)
"""

NOISY = """\
import random

import keel

with keel.start_run(name="noisy", params={"kind": "unseeded"}) as run:
    run.log_metric("noise", random.random())
    run.log_metric("fixed", 1.0)
print(run.id)
"""


AUTOLOG = """\
import time

import numpy as np
from sklearn.ensemble import RandomForestClassifier

import keel

keel.autolog(register="auto")
rng = np.random.default_rng(3)
X = rng.normal(size=(200, 3))
y = (X[:, 0] - X[:, 2] > 0).astype(int)
RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)  # a run of its own
with keel.start_run(name="timed") as run:
    run.log_metric("rows", float(len(X)))
    run.log_metric("wall_s", time.time(), volatile=True)
print(run.id)
"""


@dataclass
class Project:
    tmp: Path
    repo: Path
    ws_root: Path
    env: dict[str, str]
    commit: str


def _csv(n: int = 60) -> str:
    rows = ["a,b,y"]
    for i in range(n):
        a, b = (i * 37 % 17) / 4.0, (i * 11 % 13) / 3.0
        rows.append(f"{a},{b},{int(a - b + (i % 3) * 0.7 > 1.5)}")
    return "\n".join(rows) + "\n"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    ws = keel.init(tmp_path / "ws")
    write_files(tmp_path / "data", {"train.csv": _csv()})
    keel.data.add(tmp_path / "data" / "train.csv", name="train", workspace=ws)
    ws.close()
    repo = tmp_path / "proj"
    commit = make_repo(repo, {"train.py": COMMITTED_TRAIN, ".gitignore": "out/\n"})
    env = {"KEEL_HOME": str(tmp_path / "ws"), "KEEL_FLUSH_SECONDS": "0.2"}
    yield Project(tmp_path, repo, tmp_path / "ws", env, commit)


def run_script(p: Project, script: str) -> str:
    proc = subprocess.run(
        [sys.executable, script],
        cwd=p.repo,
        env={**os.environ, **p.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def reproduce(p: Project, ref: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_keel("reproduce", ref, *extra, cwd=p.repo, env=p.env, timeout=300)


def test_deterministic_sklearn_run_from_a_dirty_tree_is_identical(project: Project) -> None:
    p = project
    (p.repo / "train.py").write_text(TRAIN)  # a tracked file, changed and not committed
    (p.repo / "helper.py").write_text(HELPER)  # untracked, imported by train.py
    original = run_script(p, "train.py")
    rec = keel_ok("runs", "show", original, "--json", cwd=p.repo, env=p.env)
    assert rec["code"]["dirty"] is True and rec["code"]["commit"] == p.commit
    assert [i["ref"] for i in rec["inputs"]] == ["train@v1"]
    assert [a["path"] for a in rec["artifacts"]] == ["coef.json"]
    status_before = git(p.repo, "status", "--porcelain")

    proc = reproduce(p, original[:10], "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["verdict"] == "identical", (result["notes"], result["differences"])
    assert result["ok"] is True and result["differences"] == []
    assert result["original"] == original
    new = result["reproduction"]
    assert new and new != original

    again = keel_ok("runs", "show", new, "--json", cwd=p.repo, env=p.env)
    assert again["reproduction_of"] == original
    assert again["status"] == "finished"
    assert again["params"] == rec["params"]
    assert again["metrics"]["accuracy"]["last"] == rec["metrics"]["accuracy"]["last"]
    assert again["metrics"]["coef_a"]["last"] == rec["metrics"]["coef_a"]["last"]
    assert [a["oid"] for a in again["artifacts"]] == [a["oid"] for a in rec["artifacts"]]
    assert again["code"]["commit"] == p.commit
    # the user's working tree is untouched and the temporary checkout is gone
    assert (p.repo / "train.py").read_text() == TRAIN
    assert git(p.repo, "status", "--porcelain") == status_before
    assert len(git(p.repo, "worktree", "list").splitlines()) == 1

    # the registry stays clean: the original registered clf/v1; the reproduction recorded
    # the same model bytes with its run and registered nothing
    [made] = rec["models"]
    assert made["ref"] == "clf/v1" and made["registered"] is True
    [remade] = again["models"]
    assert remade["registered"] is False and remade["ref"] is None
    assert remade["digest"] == made["digest"]
    listed = keel_ok("models", "show", "clf", "--json", cwd=p.repo, env=p.env)
    assert [v["version"] for v in listed["versions"]] == [1]
    text = run_keel("runs", "show", new, cwd=p.repo, env=p.env)
    assert "model: clf (recorded by this reproduction, not registered)" in text.stdout
    assert "tag keel.model." not in text.stdout
    assert "model: clf/v1" in run_keel("runs", "show", original, cwd=p.repo, env=p.env).stdout

    # --register: the reproduction's model becomes a version linked to the reproduction
    proc = reproduce(p, original, "--json", "--register")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    registered = json.loads(proc.stdout)
    assert registered["verdict"] == "identical", registered
    listed = keel_ok("models", "show", "clf", "--json", cwd=p.repo, env=p.env)
    assert [(v["version"], v["run"]) for v in listed["versions"]] == [
        (2, registered["reproduction"]),
        (1, original),
    ]


def test_autolog_run_reproduces_identical_and_volatile_metrics_are_not_compared(
    project: Project,
) -> None:
    p = project
    (p.repo / "auto.py").write_text(AUTOLOG)
    timed = run_script(p, "auto.py")
    listed = keel_ok("models", "show", "auto", "--json", cwd=p.repo, env=p.env)
    [version] = listed["versions"]
    autolog_run = version["run"]
    rec = keel_ok("runs", "show", autolog_run, "--json", cwd=p.repo, env=p.env)
    assert rec["name"] == "autolog-RandomForestClassifier"
    assert rec["tags"]["keel.volatile"] == "training_duration_s"

    proc = reproduce(p, autolog_run, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["verdict"] == "identical", (result["notes"], result["differences"])
    assert any("training_duration_s" in n and "volatile" in n for n in result["notes"])
    again = keel_ok("runs", "show", result["reproduction"], "--json", cwd=p.repo, env=p.env)
    assert [(m["registered"], m["digest"]) for m in again["models"]] == [
        (False, version["digest"])
    ]
    listed = keel_ok("models", "show", "auto", "--json", cwd=p.repo, env=p.env)
    assert len(listed["versions"]) == 1  # the reproduction registered nothing

    # a metric the user marked volatile: recorded, named, not compared
    proc = reproduce(p, timed, "--json")
    result = json.loads(proc.stdout)
    assert result["verdict"] == "identical", (result["notes"], result["differences"])
    assert any(n.startswith("metric wall_s:") and "volatile" in n for n in result["notes"])


def test_unseeded_run_differs_and_names_the_metric(project: Project) -> None:
    p = project
    (p.repo / "noisy.py").write_text(NOISY)
    original = run_script(p, "noisy.py")
    proc = reproduce(p, original, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["verdict"] == "differs" and result["ok"] is False
    assert any(d.startswith("metric noise") for d in result["differences"]), result
    assert not any("fixed" in d for d in result["differences"])
    new = keel_ok("runs", "show", result["reproduction"], "--json", cwd=p.repo, env=p.env)
    assert new["reproduction_of"] == original
    # the human form says the same, with exit 1
    human = reproduce(p, original)
    assert human.returncode == 1
    assert "differs: metric noise" in human.stdout
    assert human.stdout.strip().splitlines()[-1].startswith(f"differs: run {original[:8]}")


def _start_in(repo: Path, ws_root: Path, use: str | None = None) -> str:
    """A run recorded in-process while the current folder is ``repo``, as by its train.py
    (the test process's own argv is pytest's, or ``-c`` under xdist)."""
    ws = keel.connect(ws_root)
    cwd, argv = Path.cwd(), sys.argv
    os.chdir(repo)
    sys.argv = [str(repo / "train.py")]
    try:
        with keel.start_run(name="in-repo", workspace=ws) as run:
            if use:
                run.use(use)
            run.log_metric("m", 1.0)
    finally:
        sys.argv = argv
        os.chdir(cwd)
        ws.close()
    return run.id


def test_commit_missing_from_the_repository_exits_2(project: Project) -> None:
    p = project
    run_id = _start_in(p.repo, p.ws_root)
    # the history is gone: a fresh repository in the same place, with other commits
    shutil.rmtree(p.repo / ".git")
    new_head = make_repo(p.repo, {"other.txt": "x\n"})
    assert new_head != p.commit
    proc = reproduce(p, run_id)
    line = one_error_line(proc, 2)
    assert p.commit[:12] in line and "not in this repository" in line
    assert proc.stdout == ""
    # from an unrelated repository it is the same answer
    elsewhere = p.tmp / "elsewhere"
    make_repo(elsewhere, {"x.txt": "y\n"})
    shutil.rmtree(p.repo / ".git")
    proc = run_keel("reproduce", run_id, "--json", cwd=elsewhere, env=p.env)
    assert p.commit[:12] in one_error_line(proc, 2)


def test_garbage_collected_input_exits_2_and_run_objects_survive(project: Project) -> None:
    p = project
    (p.repo / "train.py").write_text(TRAIN)
    (p.repo / "helper.py").write_text(HELPER)
    run_id = _start_in(p.repo, p.ws_root, use="train@v1")
    keel_ok("data", "rm", "train@v1", cwd=p.repo, env=p.env)
    gc = keel_ok("gc", "--json", cwd=p.repo, env=p.env)
    assert gc["objects_removed"] >= 1  # the dataset's objects really went
    proc = reproduce(p, run_id)
    line = one_error_line(proc, 2)
    assert "train@v1" in line
    assert "removed" in line or "garbage-collected" in line
    # what the run itself recorded is still referenced, so gc kept it
    ws = keel.connect(p.ws_root)
    try:
        rec = keel.get_run(run_id, workspace=ws)
        patch = rec.patch()
        assert patch is not None and b"C = 0.05" in patch
        from keel.store.objects import Tree

        tree = Tree.decode(ws.objects.get(rec.code["untracked_oid"]))
        assert [e.path for e in tree] == ["helper.py"]
    finally:
        ws.close()
    verify = run_keel("verify", cwd=p.repo, env=p.env)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_run_started_with_python_c_exits_2(project: Project) -> None:
    p = project
    code = (
        "import keel\n"
        "with keel.start_run(name='inline') as run:\n"
        "    run.log_metric('m', 1.0)\n"
        "print(run.id)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=p.repo,
        env={**os.environ, **p.env},
        capture_output=True,
        text=True,
        check=True,
    )
    run_id = proc.stdout.strip()
    result = reproduce(p, run_id)
    line = one_error_line(result, 2)
    assert "python -c" in line
    assert len(git(p.repo, "worktree", "list").splitlines()) == 1  # nothing left behind


def test_run_outside_git_and_unknown_run_exit_2(project: Project, tmp_path: Path) -> None:
    p = project
    ws = keel.connect(p.ws_root)
    with keel.start_run(name="no-git", workspace=ws, capture_code=False) as run:
        pass
    ws.close()
    line = one_error_line(reproduce(p, run.id), 2)
    assert "recorded no code" in line
    assert "no run 'nosuch'" in one_error_line(reproduce(p, "nosuch"), 2)
    assert "tolerance" in one_error_line(reproduce(p, run.id, "--tolerance", "2"), 2)
