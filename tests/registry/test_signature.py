"""Signatures: inferred from an example, enforced at predict time, one problem per bad field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.errors import InvalidInput
from keel.registry import Signature, SignatureError, infer_signature
from keel.registry.signature import ColumnSpec

FRAME = pd.DataFrame(
    {
        "tenure": [3, 10, 7],
        "spend": [9.5, 120.0, 33.25],
        "plan": ["pro", "basic", "pro"],
        "active": [True, False, True],
        "since": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"], utc=True),
    }
)
EXPECTED = [
    ("tenure", "integer"),
    ("spend", "float"),
    ("plan", "string"),
    ("active", "boolean"),
    ("since", "datetime"),
]


def _types(sig: Signature) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in sig.columns]


def _problems(excinfo: pytest.ExceptionInfo[SignatureError]) -> dict[str | None, str]:
    return {p["field"]: p["message"] for p in excinfo.value.problems}


# -- inference ------------------------------------------------------------------------------


def test_infer_from_a_dataframe() -> None:
    sig = infer_signature(FRAME)
    assert _types(sig) == EXPECTED
    assert not sig.is_tensor
    assert not any(c.nullable for c in sig.columns)


def test_infer_from_records_and_from_a_dict_of_columns() -> None:
    no_dates = FRAME.drop(columns="since")
    from_records = infer_signature(no_dates.to_dict("records"))
    from_columns = infer_signature(no_dates.to_dict("list"))
    assert _types(from_records) == _types(from_columns) == EXPECTED[:4]


def test_infer_from_an_array_is_a_tensor() -> None:
    sig = infer_signature(np.zeros((4, 3), dtype=np.float32))
    assert sig.is_tensor and (sig.tensor_dtype, sig.tensor_width) == ("float32", 3)
    assert sig.columns == ()
    with pytest.raises(InvalidInput, match="2-D"):
        infer_signature(np.zeros(3))
    with pytest.raises(InvalidInput, match="2-D"):
        infer_signature(np.zeros((2, 3, 4)))


def test_infer_records_the_output_and_classes() -> None:
    sig = infer_signature(FRAME, np.array([0, 1, 1]), np.array(["no", "yes"]))
    assert sig.output == {"dtype": "int64", "shape": [], "classes": ["no", "yes"]}
    probs = infer_signature(FRAME, np.zeros((3, 2)))
    assert probs.output == {"dtype": "float64", "shape": [2]}


def test_signature_survives_to_dict_and_back() -> None:
    for sig in (
        infer_signature(FRAME, [1, 0, 1], [0, 1], nullable=["plan"]),
        infer_signature(np.zeros((2, 5), dtype=np.int32)),
    ):
        assert Signature.from_dict(sig.to_dict()) == sig


def test_nullable_is_inferred_from_gaps_and_can_be_asked_for() -> None:
    records = [
        {"n": 1, "x": 0.5, "s": "a", "k": 1},
        {"n": None, "x": None, "s": None, "k": 2},
    ]
    sig = infer_signature(records)
    specs = {c.name: c for c in sig.columns}
    # integers with gaps come back from pandas as floats: still integers, nullable
    assert specs["n"] == ColumnSpec("n", "integer", True)
    assert specs["x"] == ColumnSpec("x", "float", True)
    assert specs["s"] == ColumnSpec("s", "string", True)
    assert specs["k"] == ColumnSpec("k", "integer", False)
    assert all(c.nullable for c in infer_signature(FRAME, nullable=True).columns)
    chosen = infer_signature(FRAME, nullable=["plan"])
    assert [c.name for c in chosen.columns if c.nullable] == ["plan"]


def test_a_boolean_column_with_gaps_is_a_nullable_boolean() -> None:
    records = [{"flag": True}, {"flag": None}, {"flag": False}]
    sig = infer_signature(records)
    assert sig.columns == (ColumnSpec("flag", "boolean", True),)
    sig.enforce(records)


# -- enforcement: what is converted ---------------------------------------------------------


def test_enforce_accepts_the_three_input_shapes_alike() -> None:
    sig = infer_signature(FRAME.drop(columns="since"))
    frame = FRAME.drop(columns="since")
    for given_ in (frame, frame.to_dict("records"), frame.to_dict("list")):
        out = sig.enforce(given_)
        assert list(out.columns) == ["tenure", "spend", "plan", "active"]
        assert out["tenure"].dtype == np.int64 and out["spend"].dtype == np.float64
        assert out["tenure"].tolist() == [3, 10, 7]


def test_enforce_reorders_columns_to_the_signature() -> None:
    sig = infer_signature(FRAME)
    out = sig.enforce(FRAME[["since", "plan", "active", "spend", "tenure"]])
    assert list(out.columns) == [name for name, _ in EXPECTED]


def test_whole_floats_become_integers_and_ints_become_floats() -> None:
    sig = infer_signature(pd.DataFrame({"i": [1, 2], "f": [0.5, 1.5]}))
    out = sig.enforce({"i": [3.0, -4.0], "f": [1, 2]})
    assert out["i"].dtype == np.int64 and out["i"].tolist() == [3, -4]
    assert out["f"].dtype == np.float64 and out["f"].tolist() == [1.0, 2.0]


def test_nullable_integer_keeps_its_gaps() -> None:
    sig = Signature(columns=(ColumnSpec("n", "integer", True),))
    out = sig.enforce({"n": [1, None, 3]})
    assert out["n"].isna().tolist() == [False, True, False]
    assert out["n"].dropna().tolist() == [1, 3]


# -- enforcement: what is refused -----------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "values", "needle"),
    [
        ("tenure", [2.0, 1.5, 3.0], "expects integer, got"),
        ("tenure", [np.inf, 2, 3], "expects integer"),
        ("tenure", ["3", "4", "5"], "expects integer, got '3'"),
        ("tenure", [True, False, True], "expects integer, got True"),
        ("spend", ["cheap", 1.0, 2.0], "expects float, got 'cheap'"),
        ("spend", [1.0, np.nan, 2.0], "may not be null or NaN"),
        ("spend", [1.0, None, 2.0], "may not be null or NaN"),
        ("plan", [1, 2, 3], "expects string, got 1"),
        ("plan", ["pro", None, "pro"], "may not be null or NaN"),
        ("active", [1, 0, 1], "expects boolean, got 1"),
        ("active", ["yes", "no", "yes"], "expects boolean, got 'yes'"),
        ("since", ["2024-01-01", "not a date", "2024-01-02"], "expects datetime, got 'not a date'"),
    ],
)
def test_each_bad_column_is_named_with_its_expected_type(
    column: str, values: list[Any], needle: str
) -> None:
    sig = infer_signature(FRAME)
    bad = FRAME.copy()
    bad[column] = pd.Series(values, dtype=object)
    with pytest.raises(SignatureError) as info:
        sig.enforce(bad)
    problems = _problems(info)
    assert list(problems) == [column]
    assert needle in problems[column]
    if "got" in needle and needle.endswith("got"):
        assert "1.5" in problems[column]
    assert repr(column) in str(info.value)
    assert info.value.http_status == 422 and info.value.exit_code == 2


def test_every_problem_is_listed_at_once() -> None:
    sig = infer_signature(FRAME.drop(columns="since"))
    bad = {
        "tenure": [1.25],  # a fraction
        "spend": ["lots"],  # a string in a number column
        "plan": [7],  # a number in a string column
        # "active" is missing
        "colour": ["red"],  # not in the signature
    }
    with pytest.raises(SignatureError) as info:
        sig.enforce(bad, strict=True)
    problems = _problems(info)
    assert set(problems) == {"tenure", "spend", "plan", "active", "colour"}
    assert "missing column 'active' (boolean)" in problems["active"]
    assert "unexpected column 'colour'" in problems["colour"]
    expected = {p["field"]: p.get("expected") for p in info.value.problems}
    assert expected["tenure"] == "integer" and expected["plan"] == "string"


def test_more_than_five_problems_are_summarised() -> None:
    sig = Signature(columns=tuple(ColumnSpec(f"c{i}", "float") for i in range(8)))
    with pytest.raises(SignatureError) as info:
        sig.enforce({"other": [1.0]}, strict=True)
    assert len(info.value.problems) == 9
    assert "(and 4 more)" in str(info.value)


@pytest.mark.parametrize("empty", [[], {}, pd.DataFrame({"tenure": []})])
def test_empty_input_is_refused(empty: Any) -> None:
    sig = infer_signature(FRAME)
    with pytest.raises(SignatureError, match="no rows"):
        sig.enforce(empty)


@pytest.mark.parametrize(
    ("given_", "needle"),
    [
        ([1, 2, 3], "list of records"),
        ("tenure=3", "expected a DataFrame, a list of records or a dict of columns"),
        ({"tenure": [1, 2], "spend": [1.0]}, "different lengths"),
    ],
)
def test_inputs_of_the_wrong_shape_are_refused(given_: Any, needle: str) -> None:
    with pytest.raises(SignatureError, match=needle):
        infer_signature(FRAME).enforce(given_)


def test_a_dict_of_scalars_is_one_record() -> None:
    sig = infer_signature(pd.DataFrame({"tenure": [1, 2]}))
    out = sig.enforce({"tenure": 3})
    assert out["tenure"].tolist() == [3]


def test_integers_out_of_range_are_refused_not_wrapped() -> None:
    sig = Signature(columns=(ColumnSpec("n", "integer"),))
    with pytest.raises(SignatureError) as info:
        sig.enforce({"n": [1e300]})
    assert "n" in _problems(info)


def test_nullable_integers_keep_their_exact_values() -> None:
    frame = pd.DataFrame({"n": pd.array([2**53 + 1, None], dtype="Int64")})
    out = infer_signature(frame).enforce(frame)
    assert int(out["n"].iloc[0]) == 2**53 + 1


def test_a_frame_with_integer_column_names_matches_its_own_signature() -> None:
    frame = pd.DataFrame(np.arange(6.0).reshape(3, 2))
    sig = infer_signature(frame)
    out = sig.enforce(frame)
    np.testing.assert_array_equal(out.to_numpy(), frame.to_numpy())


def test_naive_datetimes_stay_naive() -> None:
    frame = pd.DataFrame({"ts": pd.to_datetime(["2020-01-01 12:00", "2020-06-01 08:30"])})
    out = infer_signature(frame).enforce(frame)
    assert out["ts"].dt.tz is None
    assert (out["ts"] == frame["ts"]).all()


def test_aware_datetimes_are_normalised_to_utc() -> None:
    frame = pd.DataFrame({"ts": pd.to_datetime(["2020-01-01 12:00+02:00"])})
    out = infer_signature(frame).enforce(frame)
    assert str(out["ts"].dt.tz) == "UTC"
    assert out["ts"].iloc[0] == pd.Timestamp("2020-01-01 10:00", tz="UTC")


# -- tensors --------------------------------------------------------------------------------


TENSOR = Signature(tensor_dtype="float32", tensor_width=3)


def test_tensor_accepts_rows_and_one_row() -> None:
    out = TENSOR.enforce([[1, 2, 3], [4, 5, 6]])
    assert out.dtype == np.float32 and out.shape == (2, 3)
    assert TENSOR.enforce([1.0, 2.0, 3.0]).shape == (1, 3)


@pytest.mark.parametrize(
    ("given_", "needle"),
    [
        (np.zeros((2, 4)), "(rows, 3), got (2, 4)"),
        (np.zeros((2, 3, 1)), "(rows, 3), got (2, 3, 1)"),
        (np.zeros(5), "(rows, 3), got (5,)"),
        ([[1, 2, 3], [1, 2]], "rows of different lengths"),
        (np.zeros((0, 3)), "no rows"),
        ([["a", "b", "c"]], "expected numbers (float32)"),
        ([[np.nan, 1, 2]], "NaN"),
    ],
)
def test_tensor_refuses_wrong_shape_and_type(given_: Any, needle: str) -> None:
    with pytest.raises(SignatureError) as info:
        TENSOR.enforce(given_)
    assert needle in str(info.value)


def test_integer_tensor_takes_whole_floats_and_refuses_fractions() -> None:
    sig = Signature(tensor_dtype="int64", tensor_width=2)
    out = sig.enforce([[1.0, 2.0]])
    assert out.dtype == np.int64 and out.tolist() == [[1, 2]]
    with pytest.raises(SignatureError, match="whole numbers"):
        sig.enforce([[1.5, 2.0]])


def test_integer_tensor_refuses_values_out_of_range() -> None:
    sig = Signature(tensor_dtype="int64", tensor_width=1)
    with pytest.raises(SignatureError):
        sig.enforce([[1e30]])


# -- property: a frame matches the signature inferred from it -------------------------------

KINDS = ("int", "nullable-int", "Int64", "float", "bool", "str", "object-str")


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(1, 12))
    names = draw(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6, unique=True))
    columns: dict[str, Any] = {}
    for name in names:
        kind = draw(st.sampled_from(KINDS))
        ints = st.integers(-(2**62), 2**62)
        if kind == "int":
            columns[name] = np.array(draw(st.lists(ints, min_size=rows, max_size=rows)), np.int64)
        elif kind == "nullable-int":
            values = draw(
                st.lists(st.none() | st.integers(-(2**50), 2**50), min_size=rows, max_size=rows)
            )
            columns[name] = pd.Series([np.nan if v is None else v for v in values], dtype=float)
        elif kind == "Int64":  # exact in float64, which is what enforce gives with gaps
            exact = st.integers(-(2**53), 2**53)
            values = draw(st.lists(st.none() | exact, min_size=rows, max_size=rows))
            columns[name] = pd.array(values, dtype="Int64")
        elif kind == "float":
            values = draw(st.lists(st.floats(width=64), min_size=rows, max_size=rows))
            columns[name] = np.array(values, np.float64)
        elif kind == "bool":
            columns[name] = np.array(
                draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), bool
            )
        else:
            values = draw(st.lists(st.none() | st.text(max_size=5), min_size=rows, max_size=rows))
            columns[name] = pd.Series(values, dtype=object if kind == "object-str" else "str")
    return pd.DataFrame(columns)


def _values(series: pd.Series) -> list[Any]:
    return [None if pd.isna(v) else v for v in series.astype(object)]


@settings(max_examples=150, deadline=None)
@given(frames())
def test_a_frame_round_trips_through_its_own_signature(frame: pd.DataFrame) -> None:
    sig = infer_signature(frame)
    out = sig.enforce(frame)
    assert list(out.columns) == list(frame.columns)
    assert out.index.equals(frame.index)
    for spec in sig.columns:
        before, after = frame[spec.name], out[spec.name]
        assert _values(after) == _values(before), spec
        kind = before.dtype.kind if isinstance(before.dtype, np.dtype) else None
        if spec.type == "integer":
            assert after.dtype.kind in "if"
            assert after.dtype.kind == "i" or after.isna().any()
        elif spec.type == "float":
            assert after.dtype == np.float64
        elif spec.type == "boolean":
            assert after.dtype.kind == "b" == kind
        else:
            assert spec.type == "string"
            assert all(isinstance(v, str) for v in after.dropna())
    again = sig.enforce(out)  # enforcing twice changes nothing more
    pd.testing.assert_frame_equal(again, out)


def test_extra_columns_are_dropped_with_a_warning_unless_strict() -> None:
    import warnings

    from keel.registry.signature import DroppedColumnsWarning

    sig = infer_signature(FRAME.drop(columns="since"))
    rows = FRAME.drop(columns="since").head(2).assign(colour=["red", "blue"], id=[1, 2])
    with pytest.warns(DroppedColumnsWarning, match="dropped 2 column.*colour, id.*strict=True"):
        out = sig.enforce(rows)
    assert list(out.columns) == [c.name for c in sig.columns]
    with pytest.raises(SignatureError, match="unexpected column 'colour'"):
        sig.enforce(rows, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing extra: no warning
        sig.enforce(FRAME.drop(columns="since").head(2))


def test_a_2d_array_is_read_in_the_signatures_order() -> None:
    import numpy as np

    sig = Signature(columns=(ColumnSpec("tenure", "integer"), ColumnSpec("spend", "float")))
    for rows in ([[3, 70.5], [10, 20.0]], np.array([[3, 70.5], [10, 20.0]])):
        out = sig.enforce(rows)
        assert out["tenure"].tolist() == [3, 10] and out["spend"].tolist() == [70.5, 20.0]
        assert str(out["tenure"].dtype) == "int64"
    with pytest.raises(SignatureError, match=r"shape \(1, 3\): expected rows of 2 values"):
        sig.enforce(np.array([[1, 2.0, 3]]))
    with pytest.raises(SignatureError, match="rows have different lengths"):
        sig.enforce([[1, 2.0], [3]])
