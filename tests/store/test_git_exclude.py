"""`keel init` inside a git repository keeps .keel/ out of it: the line goes into the
repository's own info/exclude (never a versioned file), once, and git add -A stages
none of the metadata store or objects."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import keel
from tests.conftest import run_keel


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=u", "-c", "user.email=u@example.com", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_init_in_a_repository_excludes_its_folder(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "ml").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / ".git" / "info" / "exclude").write_text("# mine\n*.log")  # no final newline
    out = run_keel("init", "--json", cwd=repo / "ml")
    doc = json.loads(out.stdout)
    assert doc["git_exclude"] == {
        "status": "added", "file": str(repo / ".git" / "info" / "exclude"), "line": "/ml/.keel/"
    }  # fmt: skip
    assert (repo / ".git" / "info" / "exclude").read_text() == "# mine\n*.log\n/ml/.keel/\n"
    (repo / "ml" / "train.py").write_text("print(1)\n")
    _git(repo, "add", "-A")
    staged = _git(repo, "diff", "--cached", "--name-only").split()
    assert staged == ["ml/train.py"]  # nothing under .keel/
    again = run_keel("init", cwd=repo / "ml")
    assert "nothing changed" in again.stdout and "kept out of git" not in again.stdout
    assert (repo / ".git" / "info" / "exclude").read_text().count("/ml/.keel/") == 1


def test_init_at_the_top_and_says_so(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / ".git" / "info" / "exclude").unlink(missing_ok=True)
    out = run_keel("init", cwd=tmp_path)
    assert out.returncode == 0
    assert f"kept out of git: /.keel/ added to {tmp_path / '.git' / 'info' / 'exclude'}" in out.stdout
    _git(tmp_path, "add", "-A")
    assert _git(tmp_path, "diff", "--cached", "--name-only") == ""


def test_a_worktree_writes_the_common_exclude(tmp_path: Path) -> None:
    main = tmp_path / "main"
    main.mkdir()
    _git(main, "init", "-q")
    (main / "a.txt").write_text("a\n")
    _git(main, "add", "a.txt")
    _git(main, "commit", "-q", "-m", "a")
    _git(main, "worktree", "add", "-q", str(tmp_path / "wt"))
    ws = keel.init(tmp_path / "wt")
    assert ws.git_exclude is not None and ws.git_exclude["status"] == "added"
    assert Path(ws.git_exclude["file"]) == main / ".git" / "info" / "exclude"
    assert _git(tmp_path / "wt", "status", "--porcelain") == ""


def test_outside_a_repository_nothing_is_said(tmp_path: Path) -> None:
    out = run_keel("init", "--json", cwd=tmp_path)
    assert json.loads(out.stdout)["git_exclude"] is None
    assert keel.init(tmp_path, git_exclude=False).git_exclude is None


def test_an_unwritable_exclude_prints_the_line_to_add(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    info = tmp_path / ".git" / "info"
    info.mkdir(exist_ok=True)
    (info / "exclude").write_text("")
    (info / "exclude").chmod(0o444)
    try:
        import os

        if os.geteuid() == 0:  # root writes anyway: make the path a folder instead
            (info / "exclude").chmod(0o644)
            (info / "exclude").unlink()
            (info / "exclude").mkdir()
        out = run_keel("init", cwd=tmp_path)
    finally:
        if (info / "exclude").is_file():
            (info / "exclude").chmod(0o644)
    assert out.returncode == 0
    assert "keep it out of git: add the line /.keel/ to" in out.stdout
