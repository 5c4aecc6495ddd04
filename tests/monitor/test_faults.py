"""Bad input and faults: clear messages, never a crash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keel
from keel.errors import BadPath, InvalidInput
from keel.monitor.drift import _names

rng = np.random.default_rng(0)
N = 2000


def frame(n: int = N, **extra: object) -> pd.DataFrame:
    r = np.random.default_rng(n)
    base = {"x": r.normal(size=n), "c": r.choice(list("ab"), n)}
    base.update(extra)  # type: ignore[arg-type]
    return pd.DataFrame(base)


def test_different_column_sets_compare_the_common_ones_and_say_so() -> None:
    ref = frame().assign(only_ref=1.0)
    cur = frame().assign(only_cur="z")
    report = keel.monitor.drift(ref, cur, multivariate=False)
    assert set(report.features) == {"x", "c"}
    assert report.reference_only == ["only_ref"] and report.current_only == ["only_cur"]
    assert report.schema.missing == ["only_ref"] and report.schema.new == ["only_cur"]
    # Without a model to say what it needs, a missing column is reported, not a break.
    assert not report.drifted and not report.schema_broken and report.exit_code == 0
    assert report.headline() == "NO DRIFT: 0 of 2 features drifted"
    assert report.schema.sentence() == "1 column(s) missing: only_ref; 1 new column: only_cur"


def test_no_common_column_is_bad_input() -> None:
    with pytest.raises(InvalidInput, match="no column in common"):
        keel.monitor.drift(pd.DataFrame({"a": [1.0] * 50}), pd.DataFrame({"b": [1.0] * 50}))


def test_an_all_null_column_is_empty_and_a_newly_null_one_drifts() -> None:
    ref = frame(gone=np.nan, empty=np.nan)
    ref["gone"] = np.random.default_rng(1).normal(size=N)
    cur = frame(gone=np.nan, empty=np.nan)
    report = keel.monitor.drift(ref, cur, multivariate=False)
    assert report.features["empty"].status == "empty" and not report.features["empty"].drifted
    gone = report.features["gone"]
    assert gone.drifted and "missing values 0.0% -> 100.0%" in gone.reasons[0]


def test_constant_columns() -> None:
    same = keel.monitor.drift(frame(k=3.0), frame(k=3.0), multivariate=False).features["k"]
    assert not same.drifted and same.statistic == 0.0
    assert any("constant" in n for n in same.notes)
    moved = keel.monitor.drift(frame(k=3.0), frame(k=4.0), multivariate=False).features["k"]
    assert moved.drifted


def test_a_level_the_reference_never_had_is_named() -> None:
    ref = frame()
    cur = frame()
    cur.loc[: N // 10, "c"] = "z"  # a tenth of the rows in a level the reference never saw
    c = keel.monitor.drift(ref, cur, multivariate=False).features["c"]
    assert c.drifted and c.status == "drift"
    assert any("new" in r and "z" in r for r in c.reasons), c.reasons
    rare = frame()
    rare.loc[0, "c"] = "z"  # one row: beneath what matters, named but not drift
    quiet = keel.monitor.drift(frame(), rare, multivariate=False).features["c"]
    assert not quiet.drifted


def test_numbers_that_arrive_as_text_are_read_as_numbers() -> None:
    # One typing rule for a DataFrame and a CSV: the values decide, not how they were held.
    cur = frame()
    cur["x"] = cur["x"].map(lambda v: f"{v:.3f}")
    report = keel.monitor.drift(frame(), cur, multivariate=False)
    x = report.features["x"]
    assert x.kind == "numeric" and x.status == "no drift" and report.status == "no drift"


def test_words_where_numbers_were_are_a_type_change() -> None:
    cur = frame()
    cur["x"] = np.where(cur.index % 2 == 0, "low", "high")
    report = keel.monitor.drift(frame(), cur, multivariate=False)
    x = report.features["x"]
    assert x.status == "type changed" and not x.drifted  # a schema break, not drift
    assert report.status == "schema" and report.exit_code == 1
    assert x.reasons == ["numeric in the reference, categorical in the current data"]
    assert not report.features["c"].drifted


def test_too_few_rows_is_not_enough_data_not_drift() -> None:
    report = keel.monitor.drift(frame(), frame(10).assign(x=100.0))
    assert report.status == "not enough data" and not report.drifted
    assert report.features["x"].status == "not enough data"
    assert "at least 30" in report.features["x"].notes[-1]
    assert report.multivariate is not None and "not enough data" in (report.multivariate.note or "")


def test_mixed_types_in_one_column() -> None:
    mostly = pd.Series(np.random.default_rng(2).normal(size=N), dtype=object)
    mostly[:5] = "oops"
    report = keel.monitor.drift(frame(), frame().assign(x=mostly), multivariate=False)
    x = report.features["x"]
    assert x.kind == "numeric" and any("did not parse" in n and "'oops'" in n for n in x.notes)
    half = pd.Series(["a", 1, 2.5, "b"] * (N // 4), dtype=object)
    report = keel.monitor.drift(frame(m=half), frame(m=half), multivariate=False)
    m = report.features["m"]
    assert m.kind == "categorical" and not m.drifted
    assert any("mixes types (str, int, float)" in n for n in m.notes)
    text = keel.monitor.drift(frame(), frame().assign(x="word"), multivariate=False)
    assert text.features["x"].status == "type changed" and text.status == "schema"
    assert text.headline().startswith("SCHEMA: column x changed type (numeric -> categorical)")


def test_nan_and_inf() -> None:
    cur = frame()
    cur.loc[:9, "x"] = np.inf
    cur.loc[10:19, "x"] = -np.inf
    cur.loc[20:29, "x"] = np.nan
    report = keel.monitor.drift(frame(), cur)
    x = report.features["x"]
    assert not x.drifted and np.isfinite(x.statistic)
    assert any("20 infinite values left out" in n for n in x.notes)
    assert x.missing["current"] == pytest.approx(10 / N)
    import json

    json.dumps(report.to_dict(), default=str)  # serializable


def test_bad_paths_and_names() -> None:
    with pytest.raises(BadPath, match="no such file"):
        keel.monitor.drift("nowhere.csv", frame())
    with pytest.raises(InvalidInput, match="must be a DataFrame"):
        keel.monitor.drift(42, frame())
    with pytest.raises(InvalidInput, match="'zz', which is in neither table"):
        keel.monitor.drift(frame(), frame(), exclude="zz")
    with pytest.raises(InvalidInput, match="target column 'y' is in neither"):
        keel.monitor.drift(frame(), frame(), target="y")


def test_a_file_that_is_not_a_table(tmp_path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(InvalidInput, match="not a readable table"):
        keel.monitor.drift(str(bad), frame())


@given(st.lists(st.text(alphabet="abcxyz_0123456789", min_size=1, max_size=8), max_size=6))
def test_exclude_list_parses_back(names: list[str]) -> None:
    assert _names(",".join(names)) == names
    assert _names(" , ".join(names)) == names
    assert _names(names) == names
    assert _names(None) == []
