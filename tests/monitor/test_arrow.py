"""Files are judged from Arrow buffers, without pandas; the verdicts are the ones pandas gives.

`keel drift a.parquet b.parquet` reads both files as Arrow tables and summarises their
columns straight from the buffers (numbers, text, booleans; any other type through
pandas). These tests hold the two paths to the same answer, column by column and report
by report, and the command to its promise of not importing pandas.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import keel
from keel.monitor.columns import (
    Columns,
    categorical_codes,
    column_from_series,
    column_names,
    kind_of,
    numeric_values,
)
from keel.monitor.sources import read_path, read_together

floats = st.one_of(
    st.none(),
    st.floats(-1e100, 1e100),  # the sum of squares of larger ones overflows on either path
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
    st.integers(-(10**6), 10**6).map(float),
)
ints = st.one_of(st.none(), st.integers(-(2**40), 2**40))
texts = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "", "1", "2.5", "é"]))
bools = st.one_of(st.none(), st.booleans())


def _both(values: list, arrow_type: pa.DataType) -> tuple[pd.Series, pa.ChunkedArray]:
    """One column as pandas reads it from Parquet and as keel reads it from Arrow."""
    table = pa.table({"v": pa.array(values, type=arrow_type)})
    # Split into chunks, as a multi-row-group file reads.
    mid = len(values) // 2
    chunked = pa.chunked_array([table["v"].slice(0, mid).combine_chunks(), table["v"].slice(mid).combine_chunks()])
    return table.to_pandas()["v"], chunked


def _close(a: object, b: object, where: str = "") -> None:
    """Equal, floats to 1e-9: categories may come in another order, and sums in another
    order differ in the last bit."""
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), where
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _same(a: object, b: object) -> None:
    da, db = dict(vars(a)), dict(vars(b))
    va, vb = da.pop("values", None), db.pop("values", None)
    _close(json.loads(json.dumps(da, default=str)), json.loads(json.dumps(db, default=str)))
    if va is not None or vb is not None:
        np.testing.assert_array_equal(va, vb)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.tuples(st.lists(floats, min_size=0, max_size=40), st.just(pa.float64())),
        st.tuples(st.lists(ints, min_size=0, max_size=40), st.just(pa.int64())),
        st.tuples(st.lists(texts, min_size=0, max_size=40), st.just(pa.string())),
        st.tuples(st.lists(texts, min_size=0, max_size=40), st.just(pa.dictionary(pa.int32(), pa.string()))),
        st.tuples(st.lists(bools, min_size=0, max_size=40), st.just(pa.bool_())),
    )
)
def test_an_arrow_column_summarises_as_its_pandas_reading(case: tuple[list, pa.DataType]) -> None:
    values, arrow_type = case
    series, column = _both(values, arrow_type)
    kind, note = kind_of(column)
    assert (kind, note) == kind_of(series) or (len(series) == 0 or series.isna().all())
    for as_kind in (kind, "numeric") if kind == "categorical" else (kind,):
        _same(column_from_series(column, as_kind), column_from_series(series, as_kind))
    arr_a, invalid_a, _ = numeric_values(column)
    arr_p, invalid_p, _ = numeric_values(series)
    np.testing.assert_array_equal(arr_a, arr_p)
    assert invalid_a == invalid_p
    if kind == "categorical":
        codes_a, labels_a = categorical_codes(column)
        codes_p, labels_p = categorical_codes(series)
        as_labels = lambda codes, labels: [labels[c] if c >= 0 else None for c in codes]  # noqa: E731
        assert as_labels(codes_a, labels_a) == as_labels(codes_p, labels_p)


def _frames(n: int = 3000) -> tuple[pd.DataFrame, pd.DataFrame]:
    r = np.random.default_rng(7)

    def one(shift: float, seed: int) -> pd.DataFrame:
        g = np.random.default_rng(seed)
        x = g.normal(shift, 1, n)
        x[g.random(n) < 0.05] = np.nan
        counts = g.integers(0, 9, n).astype(float)
        counts[g.random(n) < 0.02] = np.nan  # an integer column with gaps reads as float
        return pd.DataFrame(
            {
                "x": x,
                "k": g.integers(0, 5, n),
                "counts": counts,
                "c": pd.Categorical(g.choice(list("abcd"), n, p=[0.4, 0.3, 0.2, 0.1])),
                "s": np.where(g.random(n) < 0.03, None, g.choice(["u", "v", "w"], n)),
                "flag": g.random(n) < 0.3 + shift / 10,
                "when": pd.Timestamp("2026-01-01") + pd.to_timedelta(g.integers(0, 90, n), "D"),
                "const": 1.5,
                "empty": np.full(n, np.nan),
            },
            index=pd.RangeIndex(n) + int(r.integers(0, 10)),
        )

    return one(0.0, 1), one(0.8, 2)


def test_a_report_from_parquet_files_is_the_report_from_their_frames(tmp_path) -> None:
    ref, cur = _frames()
    ref.to_parquet(tmp_path / "ref.parquet")  # a non-default index: stored as a column
    cur.to_parquet(tmp_path / "cur.parquet")
    ref_back, cur_back = pd.read_parquet(tmp_path / "ref.parquet"), pd.read_parquet(
        tmp_path / "cur.parquet"
    )
    from_frames = keel.monitor.drift(ref_back, cur_back, record=False).to_dict()
    from_files = keel.monitor.drift(
        tmp_path / "ref.parquet", tmp_path / "cur.parquet", record=False
    ).to_dict()
    assert set(from_files["features"]) == set(ref.columns)  # the index is not a feature
    for key in ("drifted_features", "features", "over_time", "multivariate", "rule", "notes"):
        _close(from_files[key], from_frames[key], key)
    assert from_files["drifted_features"]  # the shift is found: the comparison is not vacuous


def test_csv_files_and_arrow_tables_are_judged_as_their_frames(tmp_path) -> None:
    ref, cur = _frames(1500)
    ref = ref.drop(columns=["when"])
    cur = cur.drop(columns=["when"])
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    from_csv = keel.monitor.drift(tmp_path / "ref.csv", tmp_path / "cur.csv", record=False)
    ref_t, cur_t = read_path(str(tmp_path / "ref.csv")), read_path(str(tmp_path / "cur.csv"))
    from_arrow = keel.monitor.drift(ref_t, cur_t, record=False)
    from_frames = keel.monitor.drift(ref_t.to_pandas(), cur_t.to_pandas(), record=False)
    _close(from_arrow.to_dict()["features"], from_frames.to_dict()["features"])
    _close(from_csv.to_dict()["features"], from_frames.to_dict()["features"])
    assert from_arrow.reference == "Arrow table"


def test_column_names_of_frames_and_arrow_tables() -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]})
    assert column_names(pa.Table.from_pandas(df)) == column_names(df) == ["a", "b"]


def test_columns_convert_once_and_hand_out_read_only_views(tmp_path) -> None:
    ref, _ = _frames(500)
    ref.to_parquet(tmp_path / "ref.parquet")
    data = Columns(read_path(str(tmp_path / "ref.parquet")))
    values = data.numbers("k")[0]
    assert data.numbers("k")[0] is values  # kept, not converted again
    with pytest.raises(ValueError):
        values[0] = 1.0  # Arrow's own buffer: a caller must copy before changing it
    assert data.codes("c") is data.codes("c")
    summary = data.column("k", "numeric")
    assert summary.n == 500 and np.all(np.diff(summary.values) >= 0)


def test_keel_drift_on_files_does_not_import_pandas(tmp_path) -> None:
    """pandas' import is most of a second, pyarrow.compute's a tenth: the whole command on
    files of numbers, text and booleans needs neither."""
    ref, cur = _frames(2000)
    ref, cur = ref.drop(columns=["when"]), cur.drop(columns=["when"])  # dates go through pandas
    pq.write_table(pa.Table.from_pandas(ref, preserve_index=False), tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    code = (
        "import sys\n"
        "from keel.cli.main import main\n"
        "code = 0\n"
        "try:\n"
        "    main(['drift', sys.argv[1], sys.argv[2], '--json'])\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "print('exit', code, file=sys.stderr)\n"
        "print('pandas' in sys.modules, 'sklearn' in sys.modules, 'scipy' in sys.modules,"
        " 'pyarrow.compute' in sys.modules, file=sys.stderr)\n"
    )
    for cur_file in ("ref.parquet", "cur.csv"):
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "ref.parquet"), str(tmp_path / cur_file)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        last = done.stderr.strip().splitlines()
        assert last[-1] == "False False False False", done.stderr
        assert last[-2] in ("exit 0", "exit 1"), done.stderr
        assert json.loads(done.stdout)["features"]


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_a_numeric_column_that_arrives_as_text_in_a_file(tmp_path, kind: str) -> None:
    r = np.random.default_rng(3)
    ref = pd.DataFrame({"x": r.normal(size=1000), "y": r.normal(size=1000)})
    cur = pd.DataFrame({"x": [f"{v:.3f}" for v in r.normal(size=1000)], "y": r.normal(size=1000)})
    cur.loc[:4, "x"] = "oops"
    for name, frame in (("ref", ref), ("cur", cur)):
        if kind == "parquet":
            frame.to_parquet(tmp_path / f"{name}.{kind}")
        else:
            frame.to_csv(tmp_path / f"{name}.{kind}", index=False)
    from_files = keel.monitor.drift(
        tmp_path / f"ref.{kind}", tmp_path / f"cur.{kind}", record=False, multivariate=False
    )
    from_frames = keel.monitor.drift(ref, cur, record=False, multivariate=False)
    assert from_files.features["x"].status == from_frames.features["x"].status
    assert from_files.features["x"].kind == from_frames.features["x"].kind


def test_two_files_are_read_together_and_anything_else_as_before(tmp_path) -> None:
    ref, cur = _frames(400)
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.drop(columns=["when"]).to_csv(tmp_path / "cur.csv", index=False)
    read = read_together(tmp_path / "cur.csv", str(tmp_path / "ref.parquet"))
    assert read is not read_path
    for name in ("cur.csv", "ref.parquet"):
        assert read(str(tmp_path / name)).equals(read_path(str(tmp_path / name)))
    assert read_together(tmp_path / "cur.csv", "churn@v3") is read_path  # one side is no file
    assert read_together(pd.DataFrame({"a": [1]}), tmp_path / "cur.csv") is read_path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")
def test_keel_drift_tunes_its_process_for_one_batch() -> None:
    """glibc takes both settings, numpy asks for no huge pages and one BLAS thread, Arrow
    reads with jemalloc; in a process of its own, not to change the test runner's."""
    code = (
        "import os; from keel.cli.memory import tune_for_batch; took = tune_for_batch()\n"
        "from numpy._core.multiarray import _get_madvise_hugepage\n"
        "import pyarrow as pa\n"
        "from threadpoolctl import threadpool_info\n"
        "blas = {i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}\n"
        "print(took, os.environ.get('NUMPY_MADVISE_HUGEPAGE'), _get_madvise_hugepage(),"
        " pa.default_memory_pool().backend_name, *sorted(blas))"
    )
    settings = ("NUMPY_MADVISE_HUGEPAGE", "ARROW_DEFAULT_MEMORY_POOL", "OPENBLAS_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in settings}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.stdout.split() == ["True", "0", "False", "jemalloc", "1"], done.stderr
    # what a user set stays set
    env.update(NUMPY_MADVISE_HUGEPAGE="1", ARROW_DEFAULT_MEMORY_POOL="system", OPENBLAS_NUM_THREADS="2")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.stdout.split() == ["True", "1", "True", "system", "2"], done.stderr
