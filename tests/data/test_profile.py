"""Profiles: column statistics computed while streaming."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import keel
from keel.data.profile import SAMPLE, _histogram, _numbers, _percentiles, profile_files
from tests.conftest import write_files


def test_numeric_and_categorical_statistics_are_exact_on_small_tables(tmp_path):
    path = write_files(tmp_path, {"t.csv": "n,c,f\n1,a,0.5\n2,b,\n3,a,1.5\n4,,2.5\n"}) / "t.csv"
    profile, error = profile_files([("t.csv", str(path))])
    assert error is None
    (table,) = profile["tables"]
    assert table["rows"] == 4
    n = table["columns"]["n"]
    assert (n["kind"], n["min"], n["max"], n["mean"]) == ("numeric", 1, 4, 2.5)
    assert n["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert n["quantiles"][50] == pytest.approx(2.5) and n["exact"]
    assert sum(n["histogram"]["counts"]) == pytest.approx(4)
    c = table["columns"]["c"]
    assert (c["kind"], c["nulls"], c["distinct"], c["top"][0]) == ("categorical", 1, 2, ["a", 2])
    assert table["columns"]["f"]["nulls"] == 1


def test_large_parquet_stays_bounded_and_accurate(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(10, 2, 400_000)
    pq.write_table(
        pa.table({"v": values, "k": rng.choice(["x", "y", "z"], 400_000)}), tmp_path / "p.parquet"
    )
    profile, _ = profile_files([("p.parquet", str(tmp_path / "p.parquet"))])
    v = profile["tables"][0]["columns"]["v"]
    assert v["sample_size"] == SAMPLE and not v["exact"]
    assert v["mean"] == pytest.approx(values.mean())
    assert v["std"] == pytest.approx(values.std(ddof=1))
    assert v["quantiles"][50] == pytest.approx(np.median(values), abs=0.05)
    assert sum(v["histogram"]["counts"]) == pytest.approx(400_000, rel=1e-6)


def test_nan_and_infinity_are_counted_not_averaged(tmp_path):
    pq.write_table(
        pa.table({"v": [1.0, float("nan"), float("inf"), 3.0, None]}), tmp_path / "x.parquet"
    )
    profile, _ = profile_files([("x.parquet", str(tmp_path / "x.parquet"))])
    v = profile["tables"][0]["columns"]["v"]
    assert (v["nan"], v["inf"], v["nulls"], v["mean"]) == (1, 1, 1, 2.0)


def test_malformed_csv_still_versions_and_the_profile_says_why(ws, tmp_path):
    src = write_files(tmp_path / "d", {"bad.csv": "a,b\n1,2\n3,4,5,6\n", "ok.txt": "x"})
    v = keel.data.add(src, name="bad", workspace=ws)
    assert v.is_new and v.file_count == 2
    assert v.profile_error is not None and "bad.csv" in v.profile_error
    assert "columns" in v.profile_error.lower()
    assert v.materialize(str(tmp_path / "out"))


def test_folder_of_same_schema_files_is_one_table(tmp_path):
    src = write_files(
        tmp_path, {"d/p1.csv": "x\n1\n2\n", "d/p2.csv": "x\n3\n", "d/other.csv": "y\n9\n"}
    )
    profile, _ = profile_files(
        [(f"d/{n}", str(src / "d" / n)) for n in ("other.csv", "p1.csv", "p2.csv")]
    )
    names = {t["name"]: t["rows"] for t in profile["tables"]}
    assert names == {"d/other.csv": 1, "d/": 3}


def test_non_tabular_data_has_no_profile(tmp_path):
    assert profile_files([("a.bin", "/dev/null")]) == (None, None)


VALUES = st.lists(
    st.one_of(
        st.floats(-1e6, 1e6, allow_nan=False),
        st.integers(-5, 5).map(float),  # repeated values, on the edges
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(values=VALUES)
@example(values=[0.0, 1.0])  # the top of the range: in the last bin
@example(values=[3.0, 3.0, 3.0])  # one value: numpy widens the range
@example(values=[0.0, 0.05, 0.1, 0.95, 1.0])  # on the edges themselves
def test_histogram_and_quantiles_of_sorted_values_are_numpys(values: list[float]) -> None:
    ordered = np.sort(np.array(values))
    lo, hi = float(ordered[0]), float(ordered[-1])
    counts, edges = _histogram(ordered, lo, hi)
    want_counts, want_edges = np.histogram(ordered, bins=20, range=(lo, hi) if hi > lo else None)
    assert counts.tolist() == want_counts.tolist()
    assert edges.tolist() == want_edges.tolist()
    assert _percentiles(ordered).tolist() == np.quantile(ordered, np.linspace(0, 1, 101)).tolist()


@pytest.mark.parametrize("kind", ["int8", "uint16", "int32", "int64", "float16", "float32", "float64"])
def test_numbers_read_from_the_buffer_are_arrows_own(kind: str) -> None:
    array = pa.array(np.arange(-3, 9).astype(kind))
    for piece in (array, array.slice(3), array.slice(2, 5)):
        assert _numbers(piece).tolist() == piece.to_numpy().astype(np.float64).tolist()
    with_nulls = pa.array([1, None, 3], type=pa.from_numpy_dtype(np.dtype(kind)))
    assert _numbers(with_nulls.drop_null()).tolist() == [1.0, 3.0]
