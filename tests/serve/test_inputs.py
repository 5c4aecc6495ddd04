"""The server's input checks: any JSON gets a Batch or a clear InvalidInput, and the frame a model
gets online equals what Signature.enforce gives it offline."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.errors import InvalidInput
from keel.registry.signature import ColumnSpec, Signature, SignatureError
from keel.serve.inputs import decode_json, parse_inputs, to_frame

SIG = Signature(
    columns=(
        ColumnSpec("n", "integer"),
        ColumnSpec("x", "float"),
        ColumnSpec("s", "string"),
        ColumnSpec("b", "boolean"),
        ColumnSpec("t", "datetime"),
        ColumnSpec("maybe", "float", nullable=True),
    )
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(json_values)
def test_any_json_is_a_batch_or_one_clear_error(doc):
    for body in (doc, {"inputs": doc}):
        try:
            batch = parse_inputs(body, SIG, max_rows=50)
        except InvalidInput as exc:
            assert str(exc)
            continue
        assert batch.rows >= 1
        assert to_frame(batch, SIG).shape == (batch.rows, len(SIG.columns))


valid_rows = st.fixed_dictionaries(
    {
        "n": st.integers(-(2**62), 2**62),
        "x": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-1000, 1000),
        "s": st.text(max_size=10),
        "b": st.booleans(),
        "t": st.datetimes().map(lambda d: d.isoformat()),
        "maybe": st.none() | st.floats(allow_nan=False, allow_infinity=False),
    }
)


@settings(max_examples=150)
@given(st.lists(valid_rows, min_size=1, max_size=6))
def test_valid_rows_give_the_frame_enforce_gives(rows):
    batch = parse_inputs({"inputs": [dict(r) for r in rows]}, SIG, max_rows=50)
    online = to_frame(batch, SIG)
    offline = SIG.enforce([dict(r) for r in rows])
    pd.testing.assert_frame_equal(online, offline, check_dtype=False)
    for name in ("n", "x", "s", "b"):
        assert online[name].dtype.kind == offline[name].dtype.kind, name


def test_columns_and_records_agree():
    rows = [{"n": 1, "x": 2.5, "s": "a", "b": True, "t": "2026-01-01", "maybe": None}]
    columns = {k: [v] for k, v in rows[0].items()}
    a = to_frame(parse_inputs({"inputs": rows}, SIG, max_rows=5), SIG)
    b = to_frame(parse_inputs({"inputs": columns}, SIG, max_rows=5), SIG)
    pd.testing.assert_frame_equal(a, b)


def test_whole_floats_are_integers_and_ints_are_floats():
    batch = parse_inputs(
        {
            "inputs": [
                {"n": 3.0, "x": 2, "s": "a", "b": False, "t": "2026-01-01T00:00:00", "maybe": 1}
            ]
        },
        SIG,
        max_rows=5,
    )
    assert batch.columns["n"] == [3] and isinstance(batch.columns["n"][0], int)
    assert batch.columns["x"] == [2.0] and isinstance(batch.columns["x"][0], float)


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ({"n": 2**63}, "expected integer"),
        ({"t": "yesterday"}, "inputs[0].t: expected datetime, got 'yesterday'"),
        ({"b": 1}, "expected boolean, got 1"),
        ({"x": float("nan")}, "may not be null or NaN"),
    ],
)
def test_each_bad_value_is_named(row, needle):
    good = {"n": 1, "x": 2.5, "s": "a", "b": True, "t": "2026-01-01", "maybe": None}
    with pytest.raises(SignatureError) as info:
        parse_inputs({"inputs": [{**good, **row}]}, SIG, max_rows=5)
    assert needle in str(info.value)


def test_a_sticky_key_rides_along_outside_the_signature():
    good = {"n": 1, "x": 2.5, "s": "a", "b": True, "t": "2026-01-01", "maybe": None}
    batch = parse_inputs({"inputs": [{**good, "customer": "c1"}]}, SIG, max_rows=5, key="customer")
    assert batch.columns["customer"] == ["c1"]
    assert "customer" not in to_frame(batch, SIG).columns


def test_tensor_signatures():
    sig = Signature(tensor_dtype="float64", tensor_width=2)
    batch = parse_inputs({"inputs": [[1, 2], [3, 4.5]]}, sig, max_rows=5)
    assert batch.tensor and batch.frame.shape == (2, 2)
    with pytest.raises(SignatureError, match=r"shape \(rows, 2\)"):
        parse_inputs({"inputs": [[1, 2, 3]]}, sig, max_rows=5)


def test_nan_literals_are_read_so_the_signature_can_refuse_them():
    assert decode_json(b'{"a": NaN}')["a"] != decode_json(b'{"a": NaN}')["a"]
    with pytest.raises(InvalidInput, match="not valid JSON"):
        decode_json(b"{'a': 1}")
