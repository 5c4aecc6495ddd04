"""Dataset names and version references."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.data.names import NAME_RULE, VersionRef, check_name, parse_ref
from keel.errors import BadName, BadRef

FIRST = string.ascii_letters + string.digits
REST = FIRST + "._-"


def follows_rule(name: str) -> bool:
    """The rule, written out independently of the regex in keel.data.names."""
    return (
        1 <= len(name) <= 128
        and name[0] in FIRST
        and all(c in REST for c in name)
        and ".." not in name
    )


valid_names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(FIRST),
    st.text(alphabet=REST, max_size=127),
).filter(lambda n: ".." not in n)
near_names = st.text(alphabet=REST + "/ @\n\t\x00é", max_size=140)
any_names = st.one_of(valid_names, near_names, st.text())
hex_prefixes = st.text(alphabet="0123456789abcdef", min_size=6, max_size=64)


@settings(max_examples=500)
@given(any_names)
def test_check_name_accepts_exactly_the_rule(name):
    if follows_rule(name):
        assert check_name(name) == name
    else:
        with pytest.raises(BadName) as info:
            check_name(name)
        assert NAME_RULE in str(info.value)
        assert info.value.value == name


@given(valid_names)
def test_valid_names_are_accepted(name):
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["a/b", "a b", " a", "a ", "a..b", "..", ".a", "-a", "_a", "a" * 129, "", "a\n", "ä", "a@b"],
)
def test_check_name_rejects(name):
    with pytest.raises(BadName) as info:
        check_name(name, "model name")
    assert NAME_RULE in str(info.value)
    assert "model name" in str(info.value)


def test_name_length_limit():
    assert check_name("a" * 128) == "a" * 128
    with pytest.raises(BadName):
        check_name("a" * 129)


@given(valid_names, st.integers(min_value=1, max_value=9_999_999_999))
def test_parse_ref_round_trips_numbers(name, number):
    ref = parse_ref(f"{name}@v{number}")
    assert ref == VersionRef(name, number=number)
    assert str(ref) == f"{name}@v{number}"
    assert parse_ref(str(ref)) == ref


@given(valid_names, hex_prefixes)
def test_parse_ref_round_trips_named_digest_prefixes(name, prefix):
    ref = parse_ref(f"{name}@{prefix}")
    assert ref == VersionRef(name, digest_prefix=prefix)
    assert str(ref) == f"{name}@{prefix}"
    assert parse_ref(str(ref)) == ref


@given(hex_prefixes)
def test_parse_ref_bare_digest_prefix(prefix):
    # hex is a valid name too: the resolver tries the name first, then the digest
    ref = parse_ref(prefix)
    assert ref == VersionRef(prefix, digest_prefix=prefix)
    assert parse_ref(str(ref)) == ref


@given(valid_names)
def test_parse_ref_bare_name_is_the_head(name):
    ref = parse_ref(name)
    assert ref.name == name
    assert ref.number is None
    assert parse_ref(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a@",
        "a@v0",
        "a@v01",
        "a@vx",
        "a@V1",
        "a@v-1",
        "a@v12345678901",
        "@v1",
        "@",
        "a@b@v1",
        "a b@v1",
        "a@ABCDEF",
        "a@abcde",
        "a/b",
        "..",
        "a@v1 ",
    ],
)
def test_parse_ref_rejects_malformed_refs(text):
    with pytest.raises(BadRef):
        parse_ref(text)


@settings(max_examples=500)
@given(st.one_of(st.text(), near_names, st.builds("{}@{}".format, near_names, near_names)))
def test_parse_ref_raises_only_bad_ref(text):
    try:
        ref = parse_ref(text)
    except BadRef:
        return
    assert ref.name is not None
    assert check_name(ref.name) == ref.name
    assert parse_ref(str(ref)) == ref
