"""Code outside git: a script in a folder with no repository records itself and the local
modules it imported (a tree, size-limited); ``keel runs show --code`` prints them and
``keel reproduce`` runs them from the record in a scratch folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import keel
from keel.track import capture
from keel.track.capture import capture_code
from keel.workspace import Workspace
from tests.conftest import run_keel, write_files
from tests.track.helpers import one_error_line

TRAIN = """\
import keel
from helper import double
from pkg.util import OFFSET

with keel.start_run(name="folder", params={"offset": OFFSET}) as run:
    frame = run.use("numbers@v1").to_pandas()
    run.log_metric("value", float(double(frame["x"].sum()) + OFFSET))
print(run.id)
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    ws = keel.init(tmp_path / "ws")
    write_files(tmp_path / "data", {"numbers.csv": "x\n1\n2\n3\n"})
    keel.data.add(tmp_path / "data" / "numbers.csv", name="numbers", workspace=ws)
    ws.close()
    write_files(
        tmp_path / "proj",
        {
            "train.py": TRAIN,
            "helper.py": "def double(x):\n    return 2 * x\n",
            "pkg/__init__.py": "",
            "pkg/util.py": "OFFSET = 3\n",
            "notes.txt": "not code: not recorded\n",
        },
    )
    return tmp_path, {"KEEL_HOME": str(tmp_path / "ws"), "KEEL_FLUSH_SECONDS": "0.2"}


def test_a_script_outside_git_is_recorded_and_reproduced(
    project: tuple[Path, dict[str, str]],
) -> None:
    tmp, env = project
    assert subprocess.run(["git", "rev-parse"], cwd=tmp, capture_output=True).returncode != 0
    done = subprocess.run(  # started from the folder above the script's
        [sys.executable, "proj/train.py"],
        cwd=tmp,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]

    doc = json.loads(run_keel("runs", "show", run_id, "--json", cwd=tmp, env=env).stdout)
    code = doc["code"]
    assert code["kind"] == "folder" and code["commit"] is None
    assert code["files_root"] == str(tmp / "proj")
    assert code["files"] == ["helper.py", "pkg/__init__.py", "pkg/util.py", "train.py"]
    text = run_keel("runs", "show", run_id, cwd=tmp, env=env).stdout
    assert f"code: outside git: 4 files from {tmp / 'proj'}" in text
    printed = run_keel("runs", "show", run_id, "--code", cwd=tmp, env=env).stdout
    assert "# ---- helper.py ----\ndef double(x):\n    return 2 * x" in printed
    assert "# ---- train.py ----" in printed and "notes.txt" not in printed

    # the folder changes after the run: the reproduction runs what was recorded
    (tmp / "proj" / "helper.py").write_text("def double(x):\n    return 3 * x\n")
    proc = run_keel("reproduce", run_id, "--json", cwd=tmp, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["verdict"] == "identical", (result["notes"], result["differences"])
    assert any("code outside git: 4 files" in n for n in result["notes"])
    again = json.loads(
        run_keel("runs", "show", result["reproduction"], "--json", cwd=tmp, env=env).stdout
    )
    assert again["metrics"]["value"]["last"] == 15.0 and again["reproduction_of"] == run_id

    # a script that no longer matches its record differs, and says which metric
    ws = keel.connect(tmp / "ws")
    try:
        with keel.start_run(name="nothing", workspace=ws, capture_code=False) as bare:
            pass
    finally:
        ws.close()
    line = one_error_line(run_keel("reproduce", bare.id, cwd=tmp, env=env), 2)
    assert "recorded no code" in line
    line = one_error_line(run_keel("runs", "show", bare.id, "--code", cwd=tmp, env=env), 2)
    assert "recorded no code" in line


def test_local_modules_only_and_over_the_limit_skipped(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_files(
        tmp_path / "code",
        {
            "run.py": "print('hi')\n",
            "small_mod_k26.py": "A = 1\n",
            "big_mod_k26.py": "B = '" + "x" * 4000 + "'\n",
        },
    )
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(capture, "UNTRACKED_FILE_LIMIT", 1000)
    import big_mod_k26  # noqa: F401
    import small_mod_k26  # noqa: F401

    state = capture_code(ws.objects, str(tmp_path), argv=[str(folder / "run.py")])
    assert state.kind == "folder" and state.files_root == str(folder)
    assert state.files == ["run.py", "small_mod_k26.py"]  # numpy, keel, pytest: not local
    assert state.untracked_skipped == ["big_mod_k26.py"]
    # python -c in a folder with nothing local imported from it: nothing to record
    empty = capture_code(ws.objects, str(tmp_path / "data"), argv=["-c"])
    assert empty.kind is None and empty.files_oid is None
