"""keel.data.diff: files and statistics."""

from __future__ import annotations

import keel
from tests.conftest import write_files


def test_diff_reports_files_schema_rows_and_shifts(ws, tmp_path):
    src = write_files(
        tmp_path / "d",
        {"t.csv": "age,plan\n10,a\n20,a\n30,b\n", "keep.txt": "k", "gone.txt": "g"},
    )
    keel.data.add(src, name="d", workspace=ws)
    (src / "gone.txt").unlink()
    (src / "new.txt").write_text("n")
    (src / "t.csv").write_text("age,plan,extra\n40,a,1\n50,c,1\n60,c,1\n70,b,1\n")
    keel.data.add(src, name="d", workspace=ws)
    d = keel.data.diff("d@v1", "d@v2", workspace=ws)
    assert [f["path"] for f in d.added] == ["new.txt"]
    assert [f["path"] for f in d.removed] == ["gone.txt"]
    assert [f["path"] for f in d.changed] == ["t.csv"]
    assert d.unchanged == 1 and not d.identical
    (t,) = d.tables
    assert (t["rows_before"], t["rows_after"], t["rows_change"]) == (3, 4, 1)
    assert t["columns_added"] == ["extra"]
    assert t["columns"]["age"]["mean"] == [20.0, 55.0]
    assert t["columns"]["age"]["mean_shift_in_std"] == 3.5
    assert t["columns"]["plan"]["new_values"] == ["c"]
    doc = d.to_dict()
    assert doc["files"]["unchanged"] == 1 and doc["identical"] is False


def test_diff_of_a_version_with_itself_is_identical(ws, tmp_path):
    src = write_files(tmp_path / "d", {"a.txt": "a"})
    keel.data.add(src, name="d", workspace=ws)
    assert keel.data.diff("d@v1", "d", workspace=ws).identical
