"""The real `keel` executable, as a user drives it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import age, run_keel, write_files


@pytest.fixture
def home(tmp_path):
    assert run_keel("init", cwd=tmp_path).returncode == 0
    return tmp_path


def test_init_is_idempotent(tmp_path):
    first = run_keel("init", cwd=tmp_path)
    assert first.returncode == 0 and "created workspace" in first.stdout
    again = run_keel("init", "--json", cwd=tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["created"] is False


def test_the_data_lifecycle_from_the_shell(home):
    write_files(home / "data", {"t.csv": "x,plan\n1,a\n2,b\n", "notes.txt": "n"})
    added = run_keel("data", "add", "data/", "--name", "churn", "-m", "first export", cwd=home)
    assert added.returncode == 0, added.stderr
    ref, digest = added.stdout.split()[:2]
    assert ref == "churn@v1" and len(digest) == 64

    age(home / "data")
    assert run_keel("data", "add", "data", "--name", "churn", cwd=home).stdout.strip() == (
        "unchanged, churn@v1"
    )
    same = json.loads(run_keel("data", "add", "data", "--name", "churn", "--json", cwd=home).stdout)
    assert (same["status"], same["ref"], same["digest"]) == ("unchanged", "churn@v1", digest)

    (home / "data" / "t.csv").write_text("x,plan\n1,a\n2,b\n3,c\n")
    v2 = json.loads(run_keel("data", "add", "data", "--name", "churn", "--json", cwd=home).stdout)
    assert (v2["status"], v2["ref"]) == ("created", "churn@v2")

    listing = json.loads(run_keel("data", "list", "--json", cwd=home).stdout)
    assert [(d["name"], d["head"], d["versions"]) for d in listing] == [("churn", "churn@v2", 2)]

    shown = json.loads(run_keel("data", "show", "churn@v1", "--json", cwd=home).stdout)
    assert shown["message"] == "first export"
    assert shown["profile"]["tables"][0]["rows"] == 2
    assert {f["path"] for f in shown["files_list"]} == {"t.csv", "notes.txt"}
    assert run_keel("data", "show", digest[:8], cwd=home).stdout.startswith("churn@v1")

    log = json.loads(run_keel("data", "log", "churn", "--json", cwd=home).stdout)
    assert [v["ref"] for v in log["versions"]] == ["churn@v2", "churn@v1"]
    assert [(m["from"], m["to"]) for m in log["head_moves"]] == [("1", "2"), (None, "1")]

    diff = run_keel("data", "diff", "churn@v1", "churn@v2", cwd=home)
    assert "1 changed" in diff.stdout and "rows 2 -> 3 (+1)" in diff.stdout
    assert "new: c" in diff.stdout
    d = json.loads(run_keel("data", "diff", "churn@v1", "churn@v2", "--json", cwd=home).stdout)
    assert d["files"]["changed"][0]["path"] == "t.csv"

    got = run_keel("data", "get", "churn@v1", "--out", "restored", "--json", cwd=home)
    assert got.returncode == 0, got.stderr
    assert sum(json.loads(got.stdout)["methods"].values()) == 2
    assert (home / "restored" / "t.csv").read_text() == "x,plan\n1,a\n2,b\n"

    verify = run_keel("verify", "--json", cwd=home)
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True
    gc = json.loads(run_keel("gc", "--dry-run", "--json", cwd=home).stdout)
    assert gc["objects_removed"] == 0 and gc["dry_run"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "add", "missing", "--name", "x"], "no such file or folder: missing"),
        (["data", "add", ".", "--name", "a b"], "invalid dataset name 'a b'"),
        (["data", "add", ".", "--name", "a/b"], "invalid dataset name 'a/b'"),
        (["data", "show", "churn@v9"], "no dataset named 'churn'"),
        (["data", "show", "bad@ref@x"], "invalid"),
        (["data", "get", "x@v1"], "Missing option '--out'"),
        (["data", "frobnicate"], "No such command 'frobnicate'"),
        (["data", "add", "."], "Missing option '--name'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(home, args, message):
    result = run_keel(*args, cwd=home)
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("keel: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_unknown_version_names_what_exists(home):
    write_files(home / "d", {"a.txt": "a"})
    run_keel("data", "add", "d", "--name", "churn", cwd=home)
    result = run_keel("data", "get", "churn@v9", "--out", "x", cwd=home)
    assert result.returncode == 2
    assert result.stderr == "keel: error: churn has no version v9; its only version is v1\n"
    assert not (home / "x").exists()


def test_outside_a_workspace_says_how_to_make_one(tmp_path):
    result = run_keel("data", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert "run `keel init`" in result.stderr


def test_keel_home_points_at_a_workspace(home, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = run_keel("data", "list", "--json", cwd=elsewhere, env={"KEEL_HOME": str(home)})
    assert result.returncode == 0 and json.loads(result.stdout) == []


def test_help_loads_no_heavy_library():
    code = (
        "import sys\n"
        "from keel.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'pyarrow', 'numpy', 'pandas', 'rich', 'alembic')"
        " if m in sys.modules]\n"
        "print('heavy=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "heavy="


@pytest.mark.serial
def test_quickstart_runs_the_narrated_lifecycle(tmp_path):
    result = run_keel("quickstart", "demo", "--rows", "2000", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    tmp_path = tmp_path / "demo"  # it made the folder and worked only there
    for phrase in (
        "churn@v1",
        "unchanged: churn@v1",
        "churn@v2",
        "plan has a new value: student",
        "restored 2 files",
        "ok:",
        "billing@v1 created, reads transactions@v1",
        "bill_change@v1 created, reads billing@v1, spend@v1",
        "churn-train@v1: 2,001 rows from transactions@v1",
        "built again: unchanged",
        "identical: run",
        "rolled back: churn@champion",
        "lineage of churn@champion: code, dataset, environment, feature",
        "at threshold",
        "a bad request -> HTTP 422",
        "300 customers scored by churn/v",
        "challenger - champion:",
        "canary stopped",
        "DRIFT: 2 of 3 features drifted (monthly_charges, plan); prediction drifted:",
        "not flagged: tenure",
        "train finished, evaluate finished",
        "again, nothing changed: 4 of 4 steps reused",
        "would rerun train: changed: params: lr",
        "billing@v2,spend@v2,bill_change@v2",  # the features re-applied on the new month
        "trigger   drift on the served window of v",
        "the gate passed v",
        "passed (",
        "churn@champion is now churn/v",
        "rollback  v",
        "guardrail: challenger p99 latency",
        "rolled_back in",
        "-> promoted",
    ):
        # on a miss, the loop chapters whole (a tuple's repr would be cut short)
        loop = result.stdout[result.stdout.find("Close the loop") :]
        assert phrase in result.stdout, f"{phrase!r} not in the output; the loop chapters:\n{loop}"
    assert "PROMOTE" in result.stdout or "REJECT" in result.stdout
    # the champion the loop promoted was trained on the new month's training set: its
    # lineage names the feature versions and the data under them
    lineage = run_keel("lineage", "churn@champion", cwd=tmp_path)
    assert lineage.returncode == 0, lineage.stderr
    for node in (
        "dataset churn-train@v2",
        "feature billing@v2",
        "feature bill_change@v2 (on-demand)",
        "dataset transactions@v2",
        "entities of: dataset churn-labels@v2",
    ):
        assert node in lineage.stdout, (node, lineage.stdout)
    assert (tmp_path / "eval.html").stat().st_size > 100_000  # plotly inlined: opens offline
    assert (tmp_path / "monitor.html").stat().st_size > 100_000
    # again in the same folder: refused, nothing touched
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    again = run_keel("quickstart", "--rows", "2000", cwd=tmp_path)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.count("\n") == 1 and "is not empty" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == before


def _git(cwd, *args):
    return subprocess.run(
        ["git", "-c", "user.name=u", "-c", "user.email=u@example.com", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


@pytest.mark.serial
@pytest.mark.parametrize("where", ["project", "project/empty-subfolder"])
def test_quickstart_never_touches_a_users_project(tmp_path, where):
    """Run inside a project it used to overwrite train.py and .gitignore and commit on its branch."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text("print('my model')\n")
    (project / ".gitignore").write_text("*.csv\n")
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "mine")
    head = _git(project, "rev-parse", "HEAD")
    (tmp_path / where).mkdir(exist_ok=True)
    done = run_keel("quickstart", "--rows", "2000", cwd=tmp_path / where)
    if where == "project":
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("keel: error: the current folder is not empty")
        assert sorted(p.name for p in project.iterdir()) == [".git", ".gitignore", "train.py"]
    else:
        # an empty folder inside a repository: the quickstart commits to a repository of its own
        assert done.returncode == 0, done.stderr
        assert (tmp_path / where / ".git").is_dir()
    assert (project / "train.py").read_text() == "print('my model')\n"
    assert (project / ".gitignore").read_text() == "*.csv\n"
    assert _git(project, "rev-parse", "HEAD") == head
    assert _git(project, "log", "--format=%an").split() == ["u"]


def test_quickstart_refuses_a_file_for_its_folder_and_too_few_rows(tmp_path):
    (tmp_path / "taken").write_text("x")
    done = run_keel("quickstart", "taken", cwd=tmp_path)
    assert done.returncode == 2 and "taken is a file" in done.stderr
    few = run_keel("quickstart", "new", "--rows", "200", cwd=tmp_path)
    assert few.returncode == 2 and "--rows" in few.stderr
    assert not (tmp_path / "new").exists()
