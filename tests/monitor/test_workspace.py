"""Drift against dataset versions (from their stored profiles), model versions (their training
data through lineage), the records it leaves, and `keel drift` on the command line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

import keel
from keel.errors import NotFound
from keel.monitor.records import drift_reports_of
from keel.store.db import drift_reports
from keel.workspace import Workspace
from tests.conftest import KEEL
from tests.monitor.synthetic import DRIFTED, table

N = 20_000


class Constant(keel.PythonModel):
    def predict(self, inputs: Any) -> Any:
        return np.zeros(len(inputs))


def _versions(ws: Workspace, tmp_path: Path) -> tuple[str, str, Path]:
    (tmp_path / "ref").mkdir()
    (tmp_path / "cur").mkdir()
    table(N, 1, False).to_parquet(tmp_path / "ref" / "t.parquet")
    cur = tmp_path / "cur" / "t.parquet"
    table(N, 2, True).to_parquet(cur)
    ref_v = keel.data.add(tmp_path / "ref" / "t.parquet", name="train", workspace=ws)
    cur_v = keel.data.add(cur, name="batch", workspace=ws)
    return ref_v.ref, cur_v.ref, cur


def _count(ws: Workspace) -> int:
    with ws.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(drift_reports)).scalar_one())


def test_dataset_version_reference_uses_its_profile_and_is_recorded(
    ws: Workspace, tmp_path: Path
) -> None:
    ref, cur, _ = _versions(ws, tmp_path)
    report = keel.monitor.drift(ref, cur, workspace=ws, multivariate=False)
    assert sorted(report.drifted_features) == sorted(DRIFTED)
    assert {f.reference_source for f in report.features.values()} == {"profile"}
    assert report.dataset == ref and report.record_id == report.id
    assert _count(ws) == 1
    rows = drift_reports_of(ws, dataset=keel.data.get(ref, workspace=ws))
    assert rows[0]["id"] == report.id and rows[0]["status"] == "drift"
    assert sorted(rows[0]["summary"]["drifted_features"]) == sorted(DRIFTED)
    stored = json.loads(ws.objects.get(rows[0]["result"]))
    assert stored["features"]["subtle_shift"]["drifted"] is True
    # The table is read only for what a profile cannot give: the multivariate view.
    full = keel.monitor.drift(ref, cur, workspace=ws)
    assert full.multivariate is not None and full.multivariate.drifted


def test_a_file_inside_a_dataset_version(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "month"
    folder.mkdir()
    table(2_000, 1, False).to_csv(folder / "train.csv", index=False)
    table(2_000, 2, True).to_csv(folder / "current.csv", index=False)
    version = keel.data.add(folder, name="month", workspace=ws)
    report = keel.monitor.drift(
        f"{version.ref}:train.csv", f"{version.ref}:current.csv", workspace=ws, multivariate=False
    )
    assert report.reference == "month@v1:train.csv" and report.current == "month@v1:current.csv"
    assert report.dataset == "month@v1" and report.drifted
    assert report.drifted_features and set(report.drifted_features) <= set(DRIFTED)
    for bad, says in [
        ("month@v1:nope.csv", "has no file 'nope.csv'"),
        ("month@v1:", "name a file after the colon"),
        ("month@v9:current.csv", "no version v9"),
    ]:
        out = _cli("drift", f"{version.ref}:train.csv", bad, cwd=Path(ws.root))
        assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
        assert says in out.stderr


def test_a_pandas_index_in_a_dataset_parquet_is_not_a_column(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "indexed"
    folder.mkdir()
    for name, seed in (("a.parquet", 1), ("b.parquet", 2)):
        frame = table(1_000, seed, False)
        frame.index = frame.index * 3  # not a range: stored as a column __index_level_0__
        frame.to_parquet(folder / name)
    version = keel.data.add(folder, name="indexed", workspace=ws)
    report = keel.monitor.drift(
        f"{version.ref}:a.parquet", f"{version.ref}:b.parquet", workspace=ws
    )
    assert "__index_level_0__" not in report.features
    assert set(report.features) == set(table(10, 1, False).columns)


def test_model_reference_means_its_training_data(ws: Workspace, tmp_path: Path) -> None:
    ref, _, cur_path = _versions(ws, tmp_path)
    with keel.start_run(workspace=ws, capture_code=False) as run:
        train = run.use(ref).to_pandas()
        mv = run.log_model(Constant(), "churn", input_example=train.head())
    report = keel.monitor.drift("churn@latest", str(cur_path), workspace=ws, multivariate=False)
    assert report.model == mv.ref and report.dataset == ref
    assert "training data of churn/v1" in report.reference
    assert drift_reports_of(ws, model=mv)[0]["id"] == report.id
    with keel.start_run(workspace=ws, capture_code=False) as run:
        run.log_model(Constant(), "orphan", input_example=train.head())
    with pytest.raises(NotFound, match="used no recorded dataset version"):
        keel.monitor.drift("orphan/v1", str(cur_path), workspace=ws)


def test_frames_without_a_workspace_are_not_recorded(ws: Workspace) -> None:
    report = keel.monitor.drift(table(2000, 1, False), table(2000, 2, False), multivariate=False)
    assert report.record_id is None and _count(ws) == 0


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KEEL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cli_exit_codes_json_and_html(ws: Workspace, tmp_path: Path) -> None:
    root = Path(ws.root)
    table(N, 1, False).to_parquet(root / "ref.parquet")
    table(N, 2, False).to_csv(root / "same.csv", index=False)
    table(N, 3, True).to_parquet(root / "drifted.parquet")
    same = _cli("drift", "ref.parquet", "same.csv", cwd=root)
    assert same.returncode == 0, same.stderr
    assert same.stdout.startswith("NO DRIFT: 0 of 25 features drifted")
    out = _cli(
        "drift",
        "ref.parquet",
        "drifted.parquet",
        "--json",
        "--report",
        "d.html",
        "--exclude",
        "cat_0,cat_1",
        cwd=root,
    )
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert sorted(doc["drifted_features"]) == sorted(DRIFTED)
    assert "cat_0" not in doc["features"] and doc["rule"]["correction"] == "holm"
    page = (root / "d.html").read_text()
    assert page.count("plotly.js v") == 1 and "Drift report" in page and "Holm" in page
    assert "<script src=" not in page  # inlined: opens offline
    assert _count(ws) == 2  # recorded: the CLI ran inside a workspace
    bad = _cli("drift", "ref.parquet", "missing.csv", cwd=root)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "no such file" in bad.stderr
    text = _cli("drift", "ref.parquet", "drifted.parquet", "--exclude", "nope", cwd=root)
    assert text.returncode == 2 and "nope" in text.stderr
