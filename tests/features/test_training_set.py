"""Training sets: features joined point in time onto entity rows, recorded as a dataset
version with lineage to the feature versions and the entity table; ``keel features build``;
``as_of``; and bad input refused with nothing recorded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import keel
from tests.conftest import run_keel, write_files
from tests.features.test_apply import DEFINITIONS, TRANSACTIONS, ok
from tests.track.helpers import one_error_line


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = keel.init(tmp_path / "ws")
    write_files(tmp_path / "data", {"transactions.csv": TRANSACTIONS})
    keel.data.add(tmp_path / "data" / "transactions.csv", name="transactions", workspace=ws)
    (tmp_path / "ws" / "features.py").write_text(DEFINITIONS)
    keel.features.apply(tmp_path / "ws" / "features.py", workspace=ws)
    labels = pd.DataFrame(
        {
            "customer_id": [1, 2, 1, 3, 1],
            "ts": pd.to_datetime(
                ["2026-02-10", "2026-01-20", "2026-01-05", "2026-02-01", "2025-12-01"]
            ),
            "churned": [0, 1, 0, 1, 0],
        }
    )
    labels.to_parquet(tmp_path / "ws" / "labels.parquet", index=False)
    ws.close()
    return tmp_path / "ws"


def test_a_training_set_is_point_in_time_correct_and_reproducible(root: Path) -> None:
    args = ("features", "training-set", "--entities", "labels.parquet",
            "--features", "spend,spend_ratio", "--out", "train.parquet", "--json")  # fmt: skip
    doc = ok(root, *args)
    assert doc["ref"] == "training-set@v1"
    frame = pd.read_parquet(root / "train.parquet")
    assert list(frame.columns) == ["customer_id", "ts", "churned", "spend_30d", "spend_90d", "spend_ratio"]
    assert frame["churned"].tolist() == [0, 1, 0, 1, 0]  # the entity rows, in their order
    # customer 1 on 02-10: the 02-01 row (30 days: 20; 90 days: 30); on 01-05: the 01-01 row;
    # customer 2 on 01-20: the 01-15 row; customer 3: no history; 2025-12-01: before any row
    assert frame["spend_30d"].tolist()[:3] == [20, 5, 10]
    assert frame["spend_90d"].tolist()[:3] == [30, 5, 10]
    assert frame["spend_30d"].isna().tolist() == [False, False, False, True, True]
    assert frame["spend_ratio"].tolist()[:3] == pytest.approx([20 / 30, 1.0, 1.0])
    assert frame["spend_ratio"].isna().tolist()[3:] == [True, True]

    # built again (the CLI or Python): the same bytes, the same version
    again = ok(root, *args)
    assert again["digest"] == doc["digest"] and again["ref"] == "training-set@v1"
    ws = keel.connect(root)
    try:
        labels = pd.read_parquet(root / "labels.parquet")
        ts = keel.features.training_set(labels, ["spend", "spend_ratio"], workspace=ws)
        assert ts.ref == "training-set@v1" and ts.is_new is False
        assert ts.profile is not None  # profiled: the drift reference of what trains on it

        # lineage: the model trained on it -> the training set -> feature versions -> source
        with keel.start_run(name="train", workspace=ws, capture_code=False) as run:
            df = run.use(ts).to_pandas()
            run.log_model(_Mean(float(df["churned"].mean())), "churn", input_example=df.head(2))
    finally:
        ws.close()
    graph = ok(root, "lineage", "churn/v1", "--json")
    edges = {(e["from"], e["to"], e["relation"]) for e in graph["edges"]}
    assert ("dataset:training-set@v1", f"run:{run.id[:8]}", "input of") in edges
    assert ("feature:spend@v1", "dataset:training-set@v1", "built into") in edges
    assert ("feature:spend_ratio@v1", "dataset:training-set@v1", "built into") in edges
    assert ("feature:spend@v1", "feature:spend_ratio@v1", "input of") in edges
    assert ("dataset:transactions@v1", "feature:spend@v1", "source of") in edges
    text = ok(root, "lineage", "churn/v1")
    assert "feature spend_ratio@v1 (on-demand)" in text


def test_build_and_the_lineage_of_a_source(root: Path) -> None:
    built = ok(root, "features", "build", "spend", "--json")
    assert built["ref"] == "spend.features@v1" and built["feature"] == "spend@v1"
    assert built["feature_source"] == "transactions@v1"
    assert built["source"] == "keel features build spend@v1"
    assert "unchanged" in ok(root, "features", "build", "spend@v1")
    ok(root, "features", "training-set", "--entities", "labels.parquet", "--features", "spend")
    graph = ok(root, "lineage", "transactions@v1", "--json")
    edges = {(e["from"], e["to"], e["relation"]) for e in graph["edges"]}
    assert ("dataset:transactions@v1", "feature:spend@v1", "source of") in edges
    assert ("feature:spend@v1", "dataset:spend.features@v1", "built into") in edges
    assert ("feature:spend@v1", "dataset:training-set@v1", "built into") in edges
    assert "on-demand" in one_error_line(run_keel("features", "build", "spend_ratio", cwd=root))


def test_as_of_uses_the_versions_applied_by_then(root: Path) -> None:
    time.sleep(0.05)
    moment = time.time()
    time.sleep(0.05)
    (root / "features.py").write_text(DEFINITIONS.replace('ttl="90d"', 'ttl="1d"'))
    ok(root, "features", "apply", "features.py")  # spend@v2: a one-day ttl
    when = pd.Timestamp(moment, unit="s", tz="UTC").isoformat()
    then = ok(root, "features", "training-set", "--entities", "labels.parquet",
              "--features", "spend", "--as-of", when, "--out", "then.parquet", "--json")  # fmt: skip
    now = ok(root, "features", "training-set", "--entities", "labels.parquet",
             "--features", "spend", "--out", "now.parquet", "--json")  # fmt: skip
    assert "spend@v1" in then["message"] and then["ref"] == "training-set@v1"
    assert now["ref"] == "training-set@v2"
    assert pd.read_parquet(root / "then.parquet")["spend_30d"].notna().sum() == 3
    assert pd.read_parquet(root / "now.parquet")["spend_30d"].notna().sum() == 0  # all older than a day
    early = pd.Timestamp(moment - 3600, unit="s", tz="UTC").isoformat()
    line = one_error_line(run_keel("features", "training-set", "--entities", "labels.parquet",
                                   "--features", "spend", "--as-of", early, cwd=root))  # fmt: skip
    assert "had no version at" in line


NO_TS = """\
from keel.features import entity, feature_view

customer = entity("customer_id")


@feature_view(entity=customer, source="transactions", timestamp="ts")
def spend(tx):
    return tx.query("tx", "select customer_id, amount as spend_30d from tx")
"""

BROKEN_VIEWS = {
    "raises": (
        DEFINITIONS.replace("    return tx.query(", "    raise ValueError('no good')\n    return tx.query("),
        "failed on transactions@v1: ValueError: no good",
    ),
    "no-ts": (NO_TS, "returned no 'ts' column"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_VIEWS))
def test_a_view_that_fails_records_nothing(root: Path, case: str) -> None:
    text, needle = BROKEN_VIEWS[case]
    (root / "features.py").write_text(text)
    ok(root, "features", "apply", "features.py")
    line = one_error_line(run_keel("features", "training-set", "--entities", "labels.parquet",
                                   "--features", "spend", cwd=root))  # fmt: skip
    assert needle in line, line
    assert needle in one_error_line(run_keel("features", "build", "spend", cwd=root))
    listed = ok(root, "data", "list")
    assert "training-set" not in listed and "spend.features" not in listed


def test_bad_entity_tables_and_names(root: Path) -> None:
    def refused(*args: str) -> str:
        return one_error_line(run_keel("features", "training-set", *args, cwd=root))

    pd.DataFrame({"customer": [1], "ts": pd.to_datetime(["2026-01-01"])}).to_parquet(root / "nokey.parquet")
    assert "no column 'customer_id', the entity key of spend@v1" in refused(
        "--entities", "nokey.parquet", "--features", "spend")
    pd.DataFrame({"customer_id": [1], "when": ["soon"]}).to_parquet(root / "nots.parquet")
    assert "needs one timestamp column" in refused("--entities", "nots.parquet", "--features", "spend")
    pd.DataFrame({"customer_id": [1], "ts": pd.to_datetime(["2026-01-01"]).tz_localize("UTC")}).to_parquet(
        root / "zoned.parquet")
    assert "mix time zones" in refused("--entities", "zoned.parquet", "--features", "spend")
    assert "no feature named 'nope'" in refused("--entities", "labels.parquet", "--features", "spend,nope")
    assert "no dataset named 'nosuch'" in refused("--entities", "nosuch@v1", "--features", "spend")
    assert "invalid as_of" in refused("--entities", "labels.parquet", "--features", "spend", "--as-of", "soon")
    assert "training-set" not in ok(root, "data", "list")  # fmt: skip


class _Mean(keel.PythonModel):
    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, inputs: Any) -> Any:
        return [self.value] * len(inputs)


def test_on_postgresql(pg_ws: Any, tmp_path: Path) -> None:
    """Apply, a new version, a training set and its lineage on a PostgreSQL metadata store."""
    ws = pg_ws
    write_files(tmp_path / "pgdata", {"transactions.csv": TRANSACTIONS})
    keel.data.add(tmp_path / "pgdata" / "transactions.csv", name="transactions", workspace=ws)
    path = tmp_path / "features.py"
    path.write_text(DEFINITIONS)
    assert [a.status for a in keel.features.apply(path, workspace=ws)] == ["created", "created"]
    assert [a.status for a in keel.features.apply(path, workspace=ws)] == ["unchanged"] * 2
    path.write_text(DEFINITIONS.replace('ttl="90d"', 'ttl="60d"'))
    assert [a.version.ref for a in keel.features.apply(path, workspace=ws)] == [
        "spend@v2",
        "spend_ratio@v2",
    ]
    labels = pd.DataFrame(
        {"customer_id": [2, 1], "ts": pd.to_datetime(["2026-01-20", "2026-02-10"]), "churned": [1, 0]}
    )
    ts = keel.features.training_set(labels, ["spend_ratio"], workspace=ws)
    frame = ts.to_pandas()
    assert frame["customer_id"].tolist() == [2, 1]
    assert frame["spend_ratio"].tolist() == pytest.approx([1.0, 20 / 30])
    from keel.registry.lineage import lineage

    graph = lineage(ws, ts.ref)
    edges = {(e["from"], e["to"], e["relation"]) for e in graph["edges"]}
    assert ("feature:spend@v2", f"dataset:{ts.ref}", "built into") in edges
    assert ("feature:spend_ratio@v2", f"dataset:{ts.ref}", "built into") in edges
