"""keel.data.add / get / materialize / remove through the Python API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import keel
from keel.errors import BadName, BadPath, BadRef, CorruptObject, InvalidInput, NotFound
from keel.store.objects import CHUNKED_FROM
from tests.conftest import age, write_files


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_add_folder_then_restore_byte_for_byte(ws, tmp_path):
    src = write_files(
        tmp_path / "data",
        {"a.csv": "x,y\n1,2\n", "sub/b.bin": os.urandom(5000), "sub/deep/c.txt": "c"},
    )
    v1 = keel.data.add(src, name="churn", message="first", workspace=ws)
    assert (v1.ref, v1.number, v1.is_new, v1.kind) == ("churn@v1", 1, True, "dir")
    assert v1.file_count == 3
    assert v1.size == sum(len(b) for b in _tree_bytes(src).values())
    assert [e.path for e in v1.files()] == ["a.csv", "sub/b.bin", "sub/deep/c.txt"]
    methods = v1.materialize(str(tmp_path / "out"))
    assert sum(methods.values()) == 3
    assert _tree_bytes(tmp_path / "out") == _tree_bytes(src)


def test_add_single_file_and_get_into_folder(ws, tmp_path):
    src = write_files(tmp_path, {"one.csv": "a\n1\n"}) / "one.csv"
    v = keel.data.add(src, name="one", workspace=ws)
    assert v.kind == "file"
    out = tmp_path / "restored"
    out.mkdir()
    v.materialize(str(out))
    assert (out / "one.csv").read_text() == "a\n1\n"
    v.materialize(str(tmp_path / "renamed.csv"))
    assert (tmp_path / "renamed.csv").read_text() == "a\n1\n"


def test_unchanged_data_makes_no_new_version(ws, tmp_path):
    src = write_files(tmp_path / "d", {"a.txt": "a", "b.txt": "b"})
    v1 = keel.data.add(src, name="d", workspace=ws)
    again = keel.data.add(src, name="d", workspace=ws)  # fresh mtimes: rehashed, same tree
    assert (again.ref, again.is_new, again.digest) == ("d@v1", False, v1.digest)
    age(src)
    keel.data.add(src, name="d", workspace=ws)  # learns trustworthy stat entries
    fast = keel.data.add(src, name="d", workspace=ws)  # stat cache only
    assert (fast.ref, fast.is_new) == ("d@v1", False)
    assert len(keel.data.log("d", workspace=ws)) == 1


def test_stat_cache_spares_unchanged_files(ws, tmp_path, monkeypatch):
    src = write_files(tmp_path / "d", {f"f{i}.txt": f"{i}" for i in range(50)})
    age(src)
    keel.data.add(src, name="d", workspace=ws)
    (src / "f7.txt").write_text("changed")
    age(src / "f7.txt", 5)
    read: list[str] = []
    import importlib

    add_module = importlib.import_module("keel.data.add")

    real = add_module.store_file

    def spy(store, path):
        read.append(os.path.basename(path))
        return real(store, path)

    monkeypatch.setattr(add_module, "store_file", spy)
    v2 = keel.data.add(src, name="d", workspace=ws)
    assert v2.ref == "d@v2"
    assert read == ["f7.txt"]


def test_refs_resolve_by_number_head_and_digest(ws, tmp_path):
    src = write_files(tmp_path / "d", {"a.txt": "1"})
    v1 = keel.data.add(src, name="d", workspace=ws)
    (src / "a.txt").write_text("2")
    v2 = keel.data.add(src, name="d", workspace=ws)
    assert keel.data.get("d", workspace=ws).ref == "d@v2"
    assert keel.data.get("d@v1", workspace=ws).digest == v1.digest
    assert keel.data.get(v2.digest[:10], workspace=ws).ref == "d@v2"
    assert keel.data.get(f"d@{v1.digest[:8]}", workspace=ws).ref == "d@v1"
    with pytest.raises(NotFound, match=r"d has no version v9; its versions are v1\.\.v2"):
        keel.data.get("d@v9", workspace=ws)
    with pytest.raises(NotFound, match="no dataset named 'zz'"):
        keel.data.get("zz@v1", workspace=ws)
    with pytest.raises(BadRef):
        keel.data.get("d@latest", workspace=ws)


def test_same_data_under_two_names_is_stored_once(ws, tmp_path):
    src = write_files(tmp_path / "d", {"big.bin": os.urandom(100_000)})
    keel.data.add(src, name="a", workspace=ws)
    before = ws.objects.disk_usage()
    keel.data.add(src, name="b", workspace=ws)
    assert ws.objects.disk_usage() - before < 1000  # a second tree manifest at most


@pytest.mark.parametrize("name", ["a/b", "..", "has space", "x" * 129, "-lead", ""])
def test_bad_names_are_refused_and_nothing_is_written(ws, tmp_path, name):
    src = write_files(tmp_path / "d", {"a.txt": "a"})
    with pytest.raises(BadName, match="expected 1 to 128 characters"):
        keel.data.add(src, name=name, workspace=ws)
    assert list(ws.objects.iter_oids()) == []
    assert keel.data.list_datasets(workspace=ws) == []


def test_missing_path_and_escaping_symlink_are_refused(ws, tmp_path):
    with pytest.raises(BadPath, match="no such file or folder"):
        keel.data.add(tmp_path / "nope", name="x", workspace=ws)
    outside = write_files(tmp_path / "outside", {"secret.txt": "s"})
    src = write_files(tmp_path / "d", {"a.txt": "a"})
    (src / "link").symlink_to(outside / "secret.txt")
    with pytest.raises(BadPath, match="leads outside"):
        keel.data.add(src, name="x", workspace=ws)
    assert list(ws.objects.iter_oids()) == []


def test_symlinks_inside_the_folder_are_followed(ws, tmp_path):
    src = write_files(tmp_path / "d", {"real/a.txt": "a"})
    (src / "alias.txt").symlink_to(src / "real" / "a.txt")
    (src / "dirlink").symlink_to(src / "real")
    v = keel.data.add(src, name="x", workspace=ws)
    assert [e.path for e in v.files()] == ["alias.txt", "dirlink/a.txt", "real/a.txt"]


def test_broken_symlink_is_refused(ws, tmp_path):
    src = write_files(tmp_path / "d", {"a.txt": "a"})
    (src / "dangling").symlink_to(src / "gone")
    with pytest.raises(BadPath, match="leads"):
        keel.data.add(src, name="x", workspace=ws)


def test_unreadable_file_is_refused(ws, tmp_path, monkeypatch):
    src = write_files(tmp_path, {"a.txt": "a"}) / "a.txt"
    real_open = os.open

    def deny(path, *args, **kwargs):
        if str(path) == str(src):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(BadPath, match="permission denied"):
        keel.data.add(src, name="x", workspace=ws)


def test_keel_and_git_folders_are_not_versioned(ws, tmp_path):
    src = write_files(tmp_path / "d", {"a.txt": "a", ".git/HEAD": "ref", ".keel/x": "y"})
    v = keel.data.add(src, name="x", workspace=ws)
    assert [e.path for e in v.files()] == ["a.txt"]


def test_large_file_is_chunked_and_restored(ws, tmp_path):
    data = os.urandom(CHUNKED_FROM + 3_000_000)
    src = write_files(tmp_path, {"big.bin": data}) / "big.bin"
    v = keel.data.add(src, name="big", workspace=ws)
    (entry,) = v.files()
    assert entry.chunked and entry.size == len(data)
    v.materialize(str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == data


def test_get_refuses_a_corrupted_object_and_leaves_nothing(ws, tmp_path):
    src = write_files(tmp_path / "d", {"a.txt": "hello", "b.txt": "world"})
    v = keel.data.add(src, name="x", workspace=ws)
    victim = ws.objects.path(v.tree().get("b.txt").oid)
    victim.chmod(0o644)
    victim.write_bytes(b"w0rld")
    out = tmp_path / "out"
    with pytest.raises(CorruptObject, match="corrupt"):
        v.materialize(str(out))
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_get_into_non_empty_folder_is_refused(ws, tmp_path):
    src = write_files(tmp_path / "d", {"a.txt": "a"})
    v = keel.data.add(src, name="x", workspace=ws)
    out = write_files(tmp_path / "out", {"keep.txt": "mine"})
    with pytest.raises(BadPath, match="not an empty folder"):
        v.materialize(str(out))
    assert (out / "keep.txt").read_text() == "mine"


def test_copy_mode_makes_independent_writable_files(ws, tmp_path):
    src = write_files(tmp_path / "d", {"a.txt": "a"})
    v = keel.data.add(src, name="x", workspace=ws)
    methods = v.materialize(str(tmp_path / "out"), link="copy")
    assert methods == {"copy": 1}
    out = tmp_path / "out" / "a.txt"
    assert out.stat().st_ino != ws.objects.path(v.files()[0].oid).stat().st_ino


def test_remove_moves_head_back_and_refuses_materialize(ws, tmp_path):
    src = write_files(tmp_path / "d", {"a.txt": "1"})
    keel.data.add(src, name="d", workspace=ws)
    (src / "a.txt").write_text("2")
    keel.data.add(src, name="d", workspace=ws)
    removed = keel.data.remove("d@v2", message="bad export", workspace=ws)
    assert removed.deleted_at is not None
    assert keel.data.get("d", workspace=ws).ref == "d@v1"
    with pytest.raises(InvalidInput, match="was removed"):
        removed.materialize(str(tmp_path / "out"))
    with pytest.raises(InvalidInput, match="already removed"):
        keel.data.remove("d@v2", workspace=ws)
    moves = keel.data.head_history("d", workspace=ws)
    assert [(m.from_target, m.to_target) for m in moves] == [("2", "1"), ("1", "2"), (None, "1")]
    assert moves[0].message == "bad export"


def test_a_dataset_with_every_version_removed_lists_when_that_happened(ws, tmp_path):
    """Its head is gone with its last version; the listing said "20793d ago" (the epoch)."""
    import time

    from tests.conftest import run_keel

    src = write_files(tmp_path / "d", {"a.txt": "1"})
    keel.data.add(src, name="gone", workspace=ws)
    keel.data.remove("gone@v1", workspace=ws)
    [summary] = keel.data.list_datasets(workspace=ws)
    assert summary.head is None and summary.versions == 1
    assert time.time() - 60 < summary.updated_at <= time.time()
    text = run_keel("data", "list", cwd=ws.root).stdout
    row = next(line for line in text.splitlines() if line.startswith("gone"))
    assert "d ago" not in row


def test_to_pandas_reads_tables_back(ws, tmp_path):
    src = write_files(tmp_path / "d", {"part1.csv": "x,y\n1,a\n", "part2.csv": "x,y\n2,b\n"})
    v = keel.data.add(src, name="t", workspace=ws)
    df = v.to_pandas()
    assert sorted(df["x"].tolist()) == [1, 2]
    assert v.to_pandas("part2.csv")["y"].tolist() == ["b"]


def test_postgres_workspace_versions_the_same_way(pg_ws, tmp_path):
    src = write_files(tmp_path / "d", {"a.csv": "x\n1\n2\n"})
    v1 = keel.data.add(src, name="pg", workspace=pg_ws)
    assert keel.data.add(src, name="pg", workspace=pg_ws).is_new is False
    (src / "a.csv").write_text("x\n1\n2\n3\n")
    v2 = keel.data.add(src, name="pg", workspace=pg_ws)
    assert (v1.ref, v2.ref) == ("pg@v1", "pg@v2")
    assert keel.data.diff("pg@v1", "pg@v2", workspace=pg_ws).tables[0]["rows_change"] == 1
    keel.data.remove("pg@v2", workspace=pg_ws)
    assert keel.data.get("pg", workspace=pg_ws).ref == "pg@v1"
