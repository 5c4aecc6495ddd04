"""Tree manifests: canonical encoding, safe relative paths, garbage refused."""

from __future__ import annotations

import json
import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.errors import BadPath, StorageError
from keel.store.objects import Tree, TreeEntry, check_relpath

# -- strategies ---------------------------------------------------------------------------

_segment = st.text(
    alphabet=st.characters(blacklist_characters="/\\\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
safe_paths = st.lists(_segment, min_size=1, max_size=4).map("/".join)
oids = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
entries = st.builds(
    TreeEntry,
    path=safe_paths,
    oid=oids,
    size=st.integers(min_value=0, max_value=1 << 50),
    mode=st.sampled_from([0o644, 0o755, 0o600, 0o444]),
    chunked=st.booleans(),
)
unique_entries = st.lists(entries, max_size=20, unique_by=lambda e: e.path)

# text that is likely to hit the interesting cases, plus anything at all
_tricky = st.lists(st.sampled_from(["a", "b", ".", "..", "/", "\\", "\x00", " ", "é"])).map("".join)
any_text = st.one_of(_tricky, st.text(), safe_paths)


# -- encoding -----------------------------------------------------------------------------


@settings(max_examples=100)
@given(unique_entries)
def test_encode_decode_round_trip(items):
    tree = Tree(items)
    again = Tree.decode(tree.encode())
    assert again == tree
    assert again.entries == tree.entries
    assert again.size == sum(e.size for e in items)
    for e in items:
        assert again.get(e.path) == e


@settings(max_examples=100)
@given(unique_entries, st.randoms(use_true_random=False))
def test_encoding_is_canonical(items, rnd):
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert Tree(shuffled).encode() == Tree(items).encode()
    assert Tree(shuffled) == Tree(items)
    assert hash(Tree(shuffled)) == hash(Tree(items))
    assert [e.path for e in Tree(shuffled)] == sorted(e.path for e in items)


def test_empty_tree():
    tree = Tree([])
    assert len(tree) == 0
    assert tree.size == 0
    assert Tree.decode(tree.encode()) == tree


# -- paths --------------------------------------------------------------------------------


@settings(max_examples=500)
@given(any_text)
def test_check_relpath_accepts_only_safe_paths(path):
    try:
        assert check_relpath(path) == path
    except BadPath as exc:
        assert repr(path) in str(exc)
        return
    assert path
    assert not path.startswith("/")
    assert ".." not in path.split("/")
    assert "\\" not in path
    assert "\x00" not in path
    assert posixpath.normpath(path) == path


@given(safe_paths)
def test_check_relpath_accepts_normal_relative_paths(path):
    assert check_relpath(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "/etc/passwd",
        "//server/share",
        "..",
        "../x",
        "a/..",
        "a/../b",
        "a/../../b",
        "a\\b",
        "..\\x",
        "a\x00b",
        "./a",
        "a/./b",
        "a//b",
        "a/",
        "a/.",
    ],
)
def test_check_relpath_rejects(path):
    with pytest.raises(BadPath):
        check_relpath(path)


# -- garbage ------------------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_decode_of_random_bytes(data):
    with pytest.raises(StorageError):
        Tree.decode(data)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=150)
@given(_json)
def test_decode_of_a_malformed_manifest_raises_storage_error_only(rows):
    data = json.dumps({"format": "keel.tree/1", "entries": rows}).encode()
    try:
        tree = Tree.decode(data)
    except (StorageError, BadPath):  # BadPath: see test_decode_of_unsafe_paths_is_a_storage_error
        return
    for e in tree:
        assert check_relpath(e.path) == e.path


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        b'"keel.tree/1"',
        b'{"entries": []}',
        b'{"format": "keel.tree/2", "entries": []}',
        b'{"format": "keel.tree/1"}',
        b'{"format": "keel.tree/1", "entries": null}',
        b'{"format": "keel.tree/1", "entries": [["a", "x", 1, 420]]}',
        b'{"format": "keel.tree/1", "entries": [["a", "x", "big", 420, 0]]}',
        b'{"format": "keel.tree/1", "entries": [[1, "x", 1, 420, 0]]}',
    ],
)
def test_decode_of_garbage(data):
    with pytest.raises(StorageError):
        Tree.decode(data)


UNSAFE = ["../evil", "/etc/passwd", "a/../../b", "a\\b"]


def _manifest(path: str) -> bytes:
    return json.dumps({"format": "keel.tree/1", "entries": [[path, "0" * 64, 1, 420, 0]]}).encode()


@pytest.mark.parametrize("path", UNSAFE)
def test_decode_refuses_unsafe_paths(path):
    with pytest.raises((StorageError, BadPath)):
        Tree.decode(_manifest(path))


@pytest.mark.parametrize("path", UNSAFE)
def test_decode_of_unsafe_paths_is_a_storage_error(path):
    with pytest.raises(StorageError):
        Tree.decode(_manifest(path))


def test_decode_with_infinite_size():
    with pytest.raises(StorageError):
        Tree.decode(b'{"format":"keel.tree/1","entries":[["a","x",Infinity,420,0]]}')


def test_dot_is_not_a_file_path():
    with pytest.raises(BadPath):
        check_relpath(".")


def test_decode_refuses_a_path_listed_twice():
    oid = "0" * 64
    doc = f'{{"format":"keel.tree/1","entries":[["a","{oid}",1,420,0],["a","{oid}",2,420,0]]}}'
    with pytest.raises(StorageError, match="twice"):
        Tree.decode(doc.encode())
