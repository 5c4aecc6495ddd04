"""The small things a new user tripped on (issue 29, items 6, 7, 9, 10 and 11), against
the real ``keel`` executable where a user would meet them there."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import keel
from tests.conftest import run_keel, write_files
from tests.track.helpers import one_error_line

REPO = Path(__file__).resolve().parents[2]


class Const(keel.PythonModel):
    def predict(self, inputs: object) -> list[int]:
        return [1] * len(inputs)  # type: ignore[arg-type]
LONG = "customer-churn-monthly-export-from-the-billing-system-of-the-north-region"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = keel.init(tmp_path / "ws")
    ws.close()
    write_files(tmp_path / "ws", {"export.csv": "zeta,alpha,mid\n1,2.5,x\n2,3.5,y\n"})
    return tmp_path / "ws"


def _ok(root: Path, *args: str) -> str:
    proc = run_keel(*args, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_messages_say_one_file_and_the_only_version(root: Path) -> None:
    line = one_error_line(run_keel("data", "add", "export.csv", cwd=root))
    assert "Missing option '--name'" in line and "--name export" in line
    assert "(1 file," in _ok(root, "data", "add", "export.csv", "--name", "churn")
    line = one_error_line(run_keel("data", "show", "churn@v9", cwd=root))
    assert line.endswith("churn has no version v9; its only version is v1")
    # the columns in the file's order, not by name
    shown = _ok(root, "data", "show", "churn")
    assert shown.index("zeta") < shown.index("alpha") < shown.index("mid")


def test_piped_tables_are_not_wrapped(root: Path) -> None:
    _ok(root, "data", "add", "export.csv", "--name", LONG, "-m", "a message long enough to wrap " * 3)
    listed = _ok(root, "data", "list")
    assert any(LONG in line and "v1" in line for line in listed.splitlines()), listed
    log = _ok(root, "data", "log", LONG)
    assert "a message long enough to wrap " * 3 in log.replace("\n", "\0"), log


def test_a_model_versions_repr_is_one_line(tmp_path: Path) -> None:
    ws = keel.init(tmp_path / "ws")
    try:
        with keel.start_run(workspace=ws, capture_code=False) as run:
            mv = run.log_model(Const(), "churn", input_example=pd.DataFrame({"x": [1.0]}))
        text = repr(mv)
        assert "\n" not in text
        assert re.fullmatch(r"<ModelVersion churn/v1 python \d+(\.\d)? (B|KiB)>", text), text
        assert mv.signature is not None and mv.signature["inputs"]["columns"][0]["name"] == "x"
    finally:
        ws.close()


def test_search_runs_iterates_over_its_runs(tmp_path: Path) -> None:
    ws = keel.init(tmp_path / "ws")
    try:
        for lr in (0.1, 0.2, 0.3):
            with keel.start_run(workspace=ws, capture_code=False, params={"lr": lr}) as run:
                run.log_metric("auc", lr)
        page = keel.search_runs("metrics.auc > 0.15", sort="-metrics.auc", workspace=ws)
        assert [r.metrics["auc"] for r in page] == [0.3, 0.2]
        assert len(page) == 2 and page[0].metrics["auc"] == 0.3 and page.runs == list(page)
        first = keel.search_runs(limit=2, workspace=ws)
        assert len(list(first)) == 2 and first.next_offset == 2
    finally:
        ws.close()


def test_a_shift_below_float_noise_is_no_change() -> None:
    from keel.data.diff import _column_shift

    a = {"kind": "numeric", "count": 10, "nulls": 0, "mean": 0.30000000000000004, "std": 0.1,
         "min": 0.1, "max": 0.5}  # fmt: skip
    b = {**a, "mean": 0.3, "std": 0.09999999999999999}
    assert _column_shift(a, b) == {}
    moved = _column_shift(a, {**a, "mean": 0.35})
    assert moved["mean"] == [a["mean"], 0.35] and moved["mean_shift_in_std"] == 0.5


def test_the_readme_links_stay_inside_the_repository() -> None:
    readme = (REPO / "README.md").read_text()
    assert "../shared" not in readme
    assert "(docs/architecture.md)" in readme and (REPO / "docs" / "architecture.md").is_file()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith("http"):
            assert (REPO / target).exists(), target
