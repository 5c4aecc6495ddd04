"""What /feedback accepts: the served model's own kind of answer, for any JSON value."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from keel.registry.signature import Signature
from keel.serve.outcomes import ExpectedOutcome

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=5,
)

BINARY = ExpectedOutcome.of_signatures([Signature(output={"classes": [0, 1]})])
LABELS = ExpectedOutcome.of_signatures([Signature(output={"classes": ["benign", "malignant"]})])
REGRESSOR = ExpectedOutcome.of_signatures([Signature(output={"dtype": "float64", "shape": []})])
UNKNOWN = ExpectedOutcome.of_signatures([None])


@given(JSON)
def test_a_binary_classifier_takes_exactly_its_two_classes(value: Any) -> None:
    kept = BINARY.check(value)
    is_class = isinstance(value, int | float) and value in (0, 1)  # bool is an int
    assert (kept is not None) == is_class
    assert kept is None or kept in (0.0, 1.0)


@given(JSON)
def test_a_label_classifier_takes_exactly_its_labels(value: Any) -> None:
    assert (LABELS.check(value) is not None) == (value in ("benign", "malignant"))


@given(JSON)
def test_a_regressor_takes_finite_numbers_only(value: Any) -> None:
    finite = (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    )
    assert (REGRESSOR.check(value) is not None) == finite


@given(JSON)
def test_an_unknown_model_takes_numbers_booleans_and_labels(value: Any) -> None:
    ok = (isinstance(value, int | float) and math.isfinite(value)) or (
        isinstance(value, str) and value != ""
    )
    assert (UNKNOWN.check(value) is not None) == ok


def test_the_classes_of_champion_and_challenger_are_both_accepted() -> None:
    both = ExpectedOutcome.of_signatures(
        [Signature(output={"classes": ["a", "b"]}), Signature(output={"classes": ["b", "c"]})]
    )
    assert both.classes == ("a", "b", "c") and str(both) == "one of the classes a, b, c"
