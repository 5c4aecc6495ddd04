"""Evaluation data says what it is (issue 29, item 3): a dataset version, a file inside one
(``churn@v1:test.csv``) or a path; data the model was trained on is named in a warning,
and ``--exclude-training-rows`` leaves out the rows it trained on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import keel
from keel.evaluation.evaluation import TrainingDataWarning
from keel.workspace import Workspace
from tests.conftest import run_keel
from tests.track.helpers import one_error_line


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Workspace]]:
    tmp = tmp_path_factory.mktemp("evaldata")
    ws = keel.init(tmp / "ws")
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=600).round(6), "z": rng.normal(size=600).round(6)})
    df["y"] = (df.x + rng.normal(scale=0.5, size=600) > 0).astype(int)
    (tmp / "split").mkdir()
    df.iloc[:400].to_csv(tmp / "split" / "train.csv", index=False)
    df.iloc[400:].to_csv(tmp / "split" / "test.csv", index=False)
    keel.data.add(tmp / "split", name="churn", workspace=ws)  # train.csv and test.csv
    df.iloc[:400].to_csv(tmp / "train-only.csv", index=False)
    keel.data.add(tmp / "train-only.csv", name="train", workspace=ws)
    df.to_csv(tmp / "all.csv", index=False)
    keel.data.add(tmp / "all.csv", name="all", workspace=ws)
    df.iloc[400:].to_csv(tmp / "ws" / "fresh.csv", index=False)
    for used, name in (("churn@v1", "whole"), ("train@v1", "part")):
        with keel.start_run(workspace=ws, capture_code=False) as run:
            rows = run.use(used).to_pandas().iloc[:400]
            model = LogisticRegression().fit(rows[["x", "z"]], rows.y)
            run.log_model(model, name, input_example=rows[["x", "z"]].head())
    yield tmp / "ws", ws
    ws.close()


def _eval(root: Path, *args: str) -> tuple[dict, str]:
    done = run_keel("evaluate", *args, "--target", "y", "--json", cwd=root)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_a_file_inside_a_version_or_a_path(world: tuple[Path, Workspace]) -> None:
    root, _ = world
    doc, said = _eval(root, "part/v1", "--data", "churn@v1:test.csv")
    assert doc["data"] == "churn@v1:test.csv" and doc["rows"] == 200 and doc["warnings"] == []
    assert said == ""
    path, _ = _eval(root, "part/v1", "--data", "fresh.csv")
    assert path["data"] == "fresh.csv" and path["rows"] == 200
    assert path["metrics"]["auc"] == pytest.approx(doc["metrics"]["auc"])


def test_data_the_model_was_trained_on_is_named(world: tuple[Path, Workspace]) -> None:
    root, ws = world
    doc, said = _eval(root, "whole/v1", "--data", "churn@v1")
    assert said.startswith("keel: warning: whole/v1 was trained on churn@v1: these metrics")
    assert doc["warnings"] and "--exclude-training-rows" in doc["warnings"][0]
    _, said = _eval(root, "whole/v1", "--data", "churn@v1:test.csv")
    assert "trained on churn@v1 (churn@v1:test.csv is in it)" in said
    with pytest.warns(TrainingDataWarning, match="whole/v1 was trained on churn@v1"):
        keel.evaluate("whole/v1", data="churn@v1", target="y", workspace=ws, record=False)


def test_exclude_training_rows_drops_the_rows_it_trained_on(world: tuple[Path, Workspace]) -> None:
    root, _ = world
    # trained on train@v1 (rows 0-399); all@v1 holds those and 200 more
    doc, said = _eval(root, "part/v1", "--data", "all@v1", "--exclude-training-rows")
    assert doc["rows"] == 200 and doc["excluded_rows"] == 400
    assert "left out 400 rows of all@v1" in said and "200 remain" in said
    fresh, _ = _eval(root, "part/v1", "--data", "fresh.csv")
    assert doc["metrics"]["auc"] == pytest.approx(fresh["metrics"]["auc"])
    # a model trained on the whole version: nothing would be left
    line = one_error_line(run_keel("evaluate", "whole/v1", "--data", "churn@v1", "--target", "y",
                                   "--exclude-training-rows", cwd=root))  # fmt: skip
    assert "every row of churn@v1 is a row whole/v1 was trained on" in line


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("churn@v1:nope.csv", "churn@v1 has no file 'nope.csv'"),
        ("missing.csv", "data 'missing.csv': no such file; expected a dataset version"),
        ("churn@v1:", "name a file after the colon"),
        ("nosuch@v1", "expected a dataset version (churn@v2), a file inside one"),
    ],
)
def test_bad_data_is_one_line(world: tuple[Path, Workspace], data: str, expected: str) -> None:
    root, _ = world
    line = one_error_line(run_keel("evaluate", "part/v1", "--data", data, "--target", "y", cwd=root))
    assert expected in line
