"""End-to-end faults: kill -9, flipped bytes, missing objects, many writers, gc, bad input.

Every test drives the real ``keel`` executable (ARCHITECTURE.md §5, issue 2
"Bad input and faults"). Checks of the store's state are made independently
of keel's own code where that is cheap: objects are rehashed with ``blake3``
and the references a record holds are followed by reading the SQLite file
and the tree / chunk-list objects directly, so a bug in ``keel verify`` cannot
hide a bug in ``keel data add``.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import blake3
import pytest

from tests.conftest import KEEL, age, run_keel, write_files

# -- helpers -------------------------------------------------------------------


def keel_ok(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run keel and insist that it succeeded."""
    proc = run_keel(*args, cwd=cwd)
    assert proc.returncode == 0, (
        f"keel {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


def keel_json(*args: str, cwd: Path) -> Any:
    return json.loads(keel_ok(*args, "--json", cwd=cwd).stdout)


def one_error_line(proc: subprocess.CompletedProcess[str], *, code: int | None = None) -> str:
    """A failed command printed exactly one ``keel: error:`` line on stderr and nothing else."""
    assert proc.returncode != 0, f"expected a failure, got exit 0\n{proc.stdout}"
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    assert lines[0].startswith("keel: error: "), lines[0]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    return lines[0]


def objects_dir(root: Path) -> Path:
    return root / ".keel" / "objects"


def object_path(root: Path, oid: str) -> Path:
    return objects_dir(root) / oid[:2] / oid[2:]


def store_listing(root: Path) -> set[str]:
    """Every file under .keel/objects (committed objects and temporaries), as relative paths."""
    top = objects_dir(root)
    return {str(p.relative_to(top)) for p in top.rglob("*") if p.is_file()}


def temporaries(root: Path) -> list[str]:
    return sorted(p for p in store_listing(root) if p.endswith(".tmp"))


def committed(root: Path) -> dict[str, Path]:
    """Committed objects: oid -> path."""
    out = {}
    for rel in store_listing(root):
        if not rel.endswith(".tmp"):
            prefix, rest = rel.split("/")
            out[prefix + rest] = objects_dir(root) / rel
    return out


def count_temporaries(root: Path, stop_at: int) -> int:
    """Count temporaries, stopping early at ``stop_at`` (cheap enough to poll)."""
    n = 0
    top = objects_dir(root)
    try:
        prefixes = os.listdir(top)
    except FileNotFoundError:
        return 0
    for prefix in prefixes:
        try:
            with os.scandir(top / prefix) as it:
                for entry in it:
                    if entry.name.endswith(".tmp"):
                        n += 1
                        if n >= stop_at:
                            return n
        except (FileNotFoundError, NotADirectoryError):
            continue
    return n


def any_committed(root: Path) -> bool:
    top = objects_dir(root)
    try:
        prefixes = os.listdir(top)
    except FileNotFoundError:
        return False
    for prefix in prefixes:
        try:
            with os.scandir(top / prefix) as it:
                if any(not e.name.endswith(".tmp") for e in it):
                    return True
        except (FileNotFoundError, NotADirectoryError):
            continue
    return False


@contextmanager
def sqlite_ro(root: Path) -> Iterator[sqlite3.Connection]:
    con = sqlite3.connect(f"file:{root / '.keel' / 'keel.db'}?mode=ro", uri=True, timeout=30)
    try:
        yield con
    finally:
        con.close()


def version_count(root: Path) -> int:
    try:
        with sqlite_ro(root) as con:
            return int(con.execute("SELECT count(*) FROM dataset_versions").fetchone()[0])
    except sqlite3.Error:
        return 0


def needed_objects(root: Path) -> tuple[dict[str, set[str]], list[str]]:
    """Every object some record needs (oid -> labels), read without keel's code.

    Also returns the digests of live dataset versions that hold no content reference.
    """
    with sqlite_ro(root) as con:
        refs = con.execute("SELECT oid, shape, label FROM object_refs").fetchall()
        live = [
            d
            for (d,) in con.execute("SELECT digest FROM dataset_versions WHERE deleted_at IS NULL")
        ]
    needed: dict[str, set[str]] = defaultdict(set)
    stack = [(str(o), str(s), str(label)) for o, s, label in refs]
    seen: set[str] = set()
    while stack:
        oid, shape, label = stack.pop()
        needed[oid].add(label)
        path = object_path(root, oid)
        if shape == "blob" or oid in seen or not path.exists():
            continue
        seen.add(oid)
        doc = json.loads(path.read_bytes())
        if shape == "tree":
            for _rel, child, _size, _mode, chunked in doc["entries"]:
                stack.append((child, "chunks" if chunked else "blob", label))
        else:
            assert shape == "chunks", shape
            for child, _length in doc["chunks"]:
                stack.append((child, "blob", label))
    unreferenced = [d for d in live if d not in needed]
    return needed, unreferenced


def assert_store_whole(root: Path) -> None:
    """No half object is visible and no record points at a missing object (checked directly)."""
    for oid, path in committed(root).items():
        assert blake3.blake3(path.read_bytes()).hexdigest() == oid, f"half or bad object {oid}"
    needed, unreferenced = needed_objects(root)
    assert not unreferenced, f"dataset versions without a content reference: {unreferenced}"
    present = committed(root)
    missing = {oid: labels for oid, labels in needed.items() if oid not in present}
    assert not missing, f"records point at missing objects: {missing}"


def assert_same_tree(restored: Path, source: Path) -> None:
    def files(top: Path) -> dict[str, Path]:
        return {str(p.relative_to(top)): p for p in top.rglob("*") if p.is_file()}

    got, want = files(restored), files(source)
    assert sorted(got) == sorted(want)
    for rel, path in want.items():
        assert got[rel].read_bytes() == path.read_bytes(), rel


def flip_byte(path: Path, offset: int | None = None) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))
    path.chmod(0o444)


def show(ref: str, cwd: Path) -> dict[str, Any]:
    doc: dict[str, Any] = keel_json("data", "show", ref, "--files", cwd=cwd)
    return doc


def file_entry(ref: str, rel: str, cwd: Path) -> dict[str, Any]:
    for entry in show(ref, cwd)["files_list"]:
        if entry["path"] == rel:
            return dict(entry)
    raise AssertionError(f"{rel} not in {ref}")


def chunks_of(root: Path, chunk_list_oid: str) -> list[str]:
    doc = json.loads(object_path(root, chunk_list_oid).read_bytes())
    return [str(c) for c, _ in doc["chunks"]]


def new_workspace(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    keel_ok("init", cwd=path)
    return path


def pg_workspace(path: Path, url: str) -> Path:
    """A workspace folder whose metadata store is PostgreSQL, not yet initialised."""
    (path / ".keel").mkdir(parents=True)
    (path / ".keel" / "config.toml").write_text(f'[metadata]\nurl = "{url}"\n')
    return path


def small_dataset(folder: Path, seed: int) -> Path:
    rng = random.Random(seed)
    return write_files(
        folder,
        {
            "notes.txt": f"dataset {seed}\n",
            f"sub/blob{seed}.bin": rng.randbytes(3000),
        },
    )


@contextmanager
def started(
    cmds: list[tuple[list[str], Path]], logs: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start every command at once (stdout/stderr to files); always reap them."""
    logs.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("KEEL_DEBUG", "KEEL_HOME")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i, (args, cwd) in enumerate(cmds):
            with open(logs / f"{i}.out", "wb") as out, open(logs / f"{i}.err", "wb") as err:
                procs.append(
                    subprocess.Popen([KEEL, *args], cwd=cwd, stdout=out, stderr=err, env=env)
                )
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def _flock_waiters(inode: int) -> int:
    """How many processes wait for a flock on the file with this inode (Linux /proc/locks)."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return 0
    return sum(1 for ln in lines if "->" in ln and f":{inode} " in ln)


def run_all(
    cmds: list[tuple[list[str], Path]], logs: Path, *, gate: Path | None = None
) -> list[tuple[int, str, str]]:
    """Run commands concurrently; (exit code, stdout, stderr) of each.

    With ``gate`` (a workspace), hold its exclusive object lock (what `keel gc` holds) until
    every writer queues behind it, then let them all go at once: their metadata writes
    (and, on a fresh workspace, their migrations) collide instead of trickling in.
    """
    fd = -1
    if gate is not None:
        fd = os.open(gate / ".keel" / "objects.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with started(cmds, logs) as procs:
            if fd >= 0:
                inode = os.fstat(fd).st_ino
                deadline = time.monotonic() + 30
                while (
                    _flock_waiters(inode) < len(procs)
                    and time.monotonic() < deadline
                    and all(p.poll() is None for p in procs)
                ):
                    time.sleep(0.01)
                fcntl.flock(fd, fcntl.LOCK_UN)
            for p in procs:
                p.wait(timeout=120)
    finally:
        if fd >= 0:
            os.close(fd)
    return [
        (p.returncode, (logs / f"{i}.out").read_text(), (logs / f"{i}.err").read_text())
        for i, p in enumerate(procs)
    ]


def assert_clean_results(results: list[tuple[int, str, str]]) -> None:
    for i, (code, out, err) in enumerate(results):
        assert code == 0, f"writer {i} exited {code}\n{out}\n{err}"
        assert "database is locked" not in err.lower(), err
        assert "Traceback" not in err and "error" not in err.lower(), err


# -- 1. kill -9 during `keel data add` -------------------------------------------


@pytest.fixture(scope="module")
def large_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 small files in 30 folders, a CSV, and one 24 MiB file (so the chunked path runs)."""
    root = tmp_path_factory.mktemp("large") / "data"
    rng = random.Random(1)
    files: dict[str, bytes | str] = {
        f"d{i % 30:02d}/f{i:04d}.txt": rng.randbytes(200) + str(i).encode() for i in range(1500)
    }
    files["big.bin"] = rng.randbytes(24 << 20)  # sorts first: it is stored before the small files
    files["table.csv"] = "id,x\n" + "".join(f"{i},{i * 0.5}\n" for i in range(200))
    return write_files(root, files)


KILL_POINTS: dict[str, Callable[[Path], bool]] = {
    # early: the chunked file is being cut and written
    "first-temporary": lambda root: count_temporaries(root, 1) >= 1,
    # mid-way: through the small files
    "700-temporaries": lambda root: count_temporaries(root, 700) >= 700,
    # late: objects are being renamed into place; the record has not committed
    "first-rename": any_committed,
    # latest: the version record has committed; the stat cache and the output have not
    "recorded": lambda root: version_count(root) > 0,
}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_during_add_leaves_a_whole_workspace(
    tmp_path: Path, large_folder: Path, point: str
) -> None:
    root = new_workspace(tmp_path / "ws")
    env = {k: v for k, v in os.environ.items() if k not in ("KEEL_DEBUG", "KEEL_HOME")}
    proc = subprocess.Popen(
        [KEEL, "data", "add", str(large_folder), "--name", "churn"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        condition = KILL_POINTS[point]
        while proc.poll() is None and time.monotonic() < deadline and not condition(root):
            time.sleep(0.001)
    finally:
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
    if point != "recorded":  # else this point would test nothing: the add must be cut short
        assert code == -signal.SIGKILL, f"add finished (exit {code}) before the kill at {point}"
    stray = temporaries(root)
    if point in ("first-temporary", "700-temporaries"):
        assert stray, "the kill came mid-write, so temporaries were expected"

    # keel verify: whole; temporaries are counted and called harmless, not a problem.
    if point == "700-temporaries":
        text = keel_ok("verify", cwd=root).stdout
        assert f"{len(stray)} temporary file(s)" in text and "harmless" in text, text
    report = run_keel("verify", "--json", cwd=root)
    assert report.returncode == 0, report.stdout + report.stderr
    doc = json.loads(report.stdout)
    assert doc["ok"] is True
    assert doc["missing"] == doc["corrupt"] == doc["unreadable"] == doc["problems"] == []
    assert doc["stray_temporaries"] == len(stray)
    # And independently of keel verify: no half object, no record pointing at nothing.
    assert_store_whole(root)
    landed = version_count(root)
    assert landed == (1 if point == "recorded" else 0)

    # gc removes the temporaries (and any objects the dead writer never recorded).
    gc = keel_json("gc", cwd=root)
    assert gc["temporaries_removed"] == len(stray)
    assert temporaries(root) == []

    # A second add completes; the workspace is whole; the data comes back byte for byte.
    again = keel_json("data", "add", str(large_folder), "--name", "churn", cwd=root)
    assert again["ref"] == "churn@v1" and again["files"] == 1502
    assert again["status"] == ("unchanged" if landed else "created")
    verify = run_keel("verify", "--json", cwd=root)
    assert verify.returncode == 0, verify.stdout
    assert json.loads(verify.stdout)["stray_temporaries"] == 0
    assert_store_whole(root)
    assert version_count(root) == 1
    if point == "first-rename":
        keel_ok("data", "get", "churn", "--out", str(tmp_path / "restored"), cwd=root)
        assert_same_tree(tmp_path / "restored", large_folder)


# -- 2. flipped bytes and missing objects ----------------------------------------


@pytest.fixture(scope="module")
def churn_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """churn@v1 (a CSV, small files, a 9 MiB chunked file) and churn@v2 (one file more).

    Returns the workspace, to be copied by each test, and the ids of its objects.
    """
    base = tmp_path_factory.mktemp("churn")
    rng = random.Random(2)
    data = write_files(
        base / "data",
        {
            "table.csv": "id,x\n" + "".join(f"{i},{i % 7}\n" for i in range(100)),
            "small.txt": rng.randbytes(5000),
            "sub/other.txt": "other\n",
            "big.bin": rng.randbytes(9 << 20),
        },
    )
    root = new_workspace(base / "ws")
    assert keel_json("data", "add", str(data), "--name", "churn", cwd=root)["ref"] == "churn@v1"
    (data / "extra.txt").write_text("only in v2\n")
    assert keel_json("data", "add", str(data), "--name", "churn", cwd=root)["ref"] == "churn@v2"
    v1 = show("churn@v1", root)
    files = {e["path"]: e for e in v1["files_list"]}
    assert files["big.bin"]["chunked"] is True
    versions = keel_json("data", "log", "churn", cwd=root)["versions"]
    ids = {
        "blob": files["small.txt"]["oid"],
        "chunk-list": files["big.bin"]["oid"],
        "chunk": chunks_of(root, files["big.bin"]["oid"])[1],
        "tree": v1["digest"],
        "profile": next(v["profile_oid"] for v in versions if v["ref"] == "churn@v1"),
    }
    assert ids["profile"], "the CSV should have been profiled"
    return root, ids


@pytest.fixture
def churn(
    churn_template: tuple[Path, dict[str, str]], tmp_path: Path
) -> tuple[Path, dict[str, str]]:
    template, ids = churn_template
    root = tmp_path / "ws"
    shutil.copytree(template, root, symlinks=True)
    return root, ids


# Which versions use each object (the tree is v1's own; everything else v2 shares).
USERS = {
    "blob": ["churn@v1", "churn@v2"],
    "chunk-list": ["churn@v1", "churn@v2"],
    "chunk": ["churn@v1", "churn@v2"],
    "tree": ["churn@v1"],
}


def _assert_get_refuses(root: Path, oid: str, tmp_path: Path, *, also_copy: bool) -> None:
    for extra in ([], ["--copy"]) if also_copy else ([],):
        out = tmp_path / "v1"
        proc = run_keel("data", "get", "churn@v1", "--out", str(out), *extra, cwd=root)
        line = one_error_line(proc)
        assert oid in line, line
        assert not out.exists(), "a refused get must leave nothing at --out"
        assert list(tmp_path.glob(".v1.keel-*")) == [], "staging folder left behind"


def _assert_named(used_by: list[str], what: str) -> None:
    # Every label is a real user, and the version under test is among them. (That every user
    # is named is test_verify_names_every_user, which documents a bug.)
    assert "churn@v1" in used_by and set(used_by) <= set(USERS[what]), used_by


@pytest.mark.parametrize("what", list(USERS))
def test_flipped_byte_is_named_and_refused(
    churn: tuple[Path, dict[str, str]], tmp_path: Path, what: str
) -> None:
    root, ids = churn
    oid = ids[what]
    flip_byte(object_path(root, oid))

    proc = run_keel("verify", cwd=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if oid in ln]
    assert lines and lines[0].startswith(f"corrupt object {oid}"), proc.stdout
    assert "churn@v1" in lines[0], lines[0]
    assert "PROBLEMS FOUND" in proc.stdout

    proc = run_keel("verify", "--json", cwd=root)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False
    assert [c["oid"] for c in doc["corrupt"]] == [oid]
    _assert_named(doc["corrupt"][0]["used_by"], what)
    assert doc["missing"] == []

    _assert_get_refuses(root, oid, tmp_path, also_copy=what == "blob")


@pytest.mark.parametrize("what", ["blob", "chunk", "tree"])
def test_missing_object_is_named_and_refused(
    churn: tuple[Path, dict[str, str]], tmp_path: Path, what: str
) -> None:
    root, ids = churn
    oid = ids[what]
    object_path(root, oid).unlink()

    proc = run_keel("verify", cwd=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if oid in ln]
    assert lines and lines[0].startswith(f"missing object {oid} (used by "), proc.stdout
    assert "churn@v1" in lines[0]

    proc = run_keel("verify", "--json", cwd=root)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert [m["oid"] for m in doc["missing"]] == [oid]
    _assert_named(doc["missing"][0]["used_by"], what)
    assert doc["corrupt"] == []

    _assert_get_refuses(root, oid, tmp_path, also_copy=what == "blob")


def test_flipped_byte_in_a_profile_is_named(churn: tuple[Path, dict[str, str]]) -> None:
    root, ids = churn
    flip_byte(object_path(root, ids["profile"]))
    proc = run_keel("verify", "--json", cwd=root)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert [(c["oid"], c["used_by"]) for c in doc["corrupt"]] == [
        (ids["profile"], ["churn@v1 (profile)", "churn@v2 (profile)"])  # one CSV, one profile
    ]


def test_verify_names_every_user(churn: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, ids = churn
    object_path(root, ids["chunk"]).unlink()  # under the chunk list v1 and v2 share
    doc = json.loads(run_keel("verify", "--json", cwd=root).stdout)
    assert doc["missing"] == [{"oid": ids["chunk"], "used_by": ["churn@v1", "churn@v2"]}]


def test_refused_get_leaves_no_parent_folders(
    churn: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """`get --out new/deeper/v1` that fails must not leave new/ and new/deeper/ behind."""
    root, ids = churn
    flip_byte(object_path(root, ids["blob"]))
    out = tmp_path / "new" / "deeper" / "v1"
    one_error_line(run_keel("data", "get", "churn@v1", "--out", str(out), cwd=root))
    assert not (tmp_path / "new").exists()


# -- 3 and 4. many writers at once ---------------------------------------------


def _eight_datasets(tmp_path: Path, root: Path) -> list[tuple[list[str], Path]]:
    cmds = []
    for i in range(8):
        src = small_dataset(tmp_path / f"src{i}", seed=i)
        cmds.append((["data", "add", str(src), "--name", f"ds{i}", "--json"], root))
    return cmds


def _check_eight_datasets(root: Path, results: list[tuple[int, str, str]]) -> None:
    assert_clean_results(results)
    assert sorted(json.loads(out)["ref"] for _, out, _ in results) == [
        f"ds{i}@v1" for i in range(8)
    ]
    listed = keel_json("data", "list", cwd=root)
    assert sorted(d["name"] for d in listed) == [f"ds{i}" for i in range(8)]
    assert all(d["head"] == f"{d['name']}@v1" and d["versions"] == 1 for d in listed)
    keel_ok("verify", cwd=root)


@pytest.mark.parametrize("fresh", ["after-init", "no-database-yet"])
def test_eight_writers_fresh_workspace_sqlite(tmp_path: Path, fresh: str) -> None:
    root = tmp_path / "ws"
    if fresh == "after-init":
        new_workspace(root)
    else:
        (root / ".keel").mkdir(parents=True)  # every writer races the migrations
    results = run_all(_eight_datasets(tmp_path, root), tmp_path / "logs", gate=root)
    _check_eight_datasets(root, results)
    assert_store_whole(root)


@pytest.mark.postgres
@pytest.mark.parametrize("fresh", ["after-init", "no-database-yet"])
def test_eight_writers_fresh_workspace_postgres(tmp_path: Path, pg_url: str, fresh: str) -> None:
    root = pg_workspace(tmp_path / "ws", pg_url)
    if fresh == "after-init":
        keel_ok("init", cwd=root)
    results = run_all(_eight_datasets(tmp_path, root), tmp_path / "logs", gate=root)
    _check_eight_datasets(root, results)
    assert not (root / ".keel" / "keel.db").exists(), "the PostgreSQL workspace made a SQLite file"


def _eight_versions_one_name(tmp_path: Path, root: Path) -> None:
    cmds = []
    for i in range(8):
        src = small_dataset(tmp_path / f"src{i}", seed=100 + i)
        cmds.append((["data", "add", str(src), "--name", "churn", "--json"], root))
    results = run_all(cmds, tmp_path / "logs", gate=root)
    assert_clean_results(results)
    added = [json.loads(out) for _, out, _ in results]
    assert all(a["status"] == "created" for a in added), added
    assert sorted(a["version"] for a in added) == list(range(1, 9))
    assert len({a["digest"] for a in added}) == 8

    log = keel_json("data", "log", "churn", cwd=root)
    numbers = sorted(v["version"] for v in log["versions"])
    assert numbers == list(range(1, 9)), numbers
    by_ref = {a["ref"]: a["digest"] for a in added}
    assert {v["ref"]: v["digest"] for v in log["versions"]} == by_ref
    moves = log["head_moves"]  # newest first
    assert len(moves) == 8
    assert moves[-1]["from"] is None
    for newer, older in itertools.pairwise(moves):
        assert newer["from"] == older["to"], moves  # a chain: no lost or crossed update
    assert sorted(int(m["to"]) for m in moves) == list(range(1, 9))

    listed = keel_json("data", "list", cwd=root)
    assert len(listed) == 1 and listed[0]["versions"] == 8
    assert listed[0]["head"] in by_ref
    assert listed[0]["head"] == f"churn@v{moves[0]['to']}"
    keel_ok("verify", cwd=root)


def test_eight_writers_same_name_sqlite(tmp_path: Path) -> None:
    root = new_workspace(tmp_path / "ws")
    _eight_versions_one_name(tmp_path, root)
    assert_store_whole(root)


@pytest.mark.postgres
def test_eight_writers_same_name_postgres(tmp_path: Path, pg_url: str) -> None:
    root = pg_workspace(tmp_path / "ws", pg_url)
    keel_ok("init", cwd=root)
    _eight_versions_one_name(tmp_path, root)


# -- 5. gc after rm ---------------------------------------------------------------


def test_gc_reclaims_a_removed_version_and_nothing_else(tmp_path: Path) -> None:
    rng = random.Random(5)
    big = rng.randbytes(9 << 20)
    v1 = write_files(
        tmp_path / "v1",
        {
            "shared.txt": "in both\n",
            "table.csv": "id,x\n1,2\n3,4\n",
            "only_v1.bin": rng.randbytes(4000),
            "big.bin": big,
        },
    )
    v2 = write_files(
        tmp_path / "v2",
        {
            "shared.txt": "in both\n",
            "table.csv": "id,x\n1,2\n3,4\n5,6\n",
            "only_v2.bin": rng.randbytes(4000),
            "big.bin": big + rng.randbytes(1 << 20),  # shares most chunks with v1
        },
    )
    age(v1)
    age(v2)  # so the stat cache trusts them (tested again after gc)
    root = new_workspace(tmp_path / "ws")
    keel_ok("data", "add", str(v1), "--name", "churn", cwd=root)
    keel_ok("data", "add", str(v2), "--name", "churn", cwd=root)
    v1_files = {e["path"]: e for e in show("churn@v1", root)["files_list"]}
    needed, _ = needed_objects(root)
    v2_needed = {o for o, labels in needed.items() if any("churn@v2" in x for x in labels)}

    rm = run_keel("data", "rm", "churn@v1", cwd=root)
    assert rm.returncode == 0, rm.stderr
    before = store_listing(root)
    dry = keel_json("gc", "--dry-run", cwd=root)
    assert dry["dry_run"] is True
    assert store_listing(root) == before, "--dry-run removed something"
    doomed = set(dry["objects"])
    assert v1_files["only_v1.bin"]["oid"] in doomed
    assert v1_files["big.bin"]["oid"] in doomed  # v1's chunk list
    assert show("churn@v1", root)["digest"] in doomed  # v1's tree
    assert not doomed & v2_needed, "gc would remove objects churn@v2 needs"
    assert v1_files["shared.txt"]["oid"] not in doomed

    done = keel_json("gc", cwd=root)
    assert done["dry_run"] is False
    assert sorted(done["objects"]) == sorted(doomed)
    assert done["objects_removed"] == len(doomed)
    left = committed(root)
    assert not doomed & set(left)
    assert v2_needed <= set(left)

    keel_ok("verify", cwd=root)
    assert_store_whole(root)
    keel_ok("data", "get", "churn@v2", "--out", str(tmp_path / "r2"), cwd=root)
    assert_same_tree(tmp_path / "r2", v2)
    out = tmp_path / "r1"
    line = one_error_line(run_keel("data", "get", "churn@v1", "--out", str(out), cwd=root), code=2)
    assert "churn@v1" in line and "removed" in line, line
    assert not out.exists()

    # The stat cache still knows v1's files; adding them again must store their bytes again.
    again = keel_json("data", "add", str(v1), "--name", "churn", cwd=root)
    assert again["ref"] == "churn@v3" and again["status"] == "created"
    assert_store_whole(root)
    keel_ok("data", "get", "churn@v3", "--out", str(tmp_path / "r3"), cwd=root)
    assert_same_tree(tmp_path / "r3", v1)


# -- 6. bad input changes nothing ------------------------------------------------


def metadata_dump(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the SQLite metadata store."""
    with sqlite_ro(root) as con:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}


@pytest.fixture
def populated(tmp_path: Path) -> tuple[Path, Path]:
    root = new_workspace(tmp_path / "ws")
    good = small_dataset(tmp_path / "good", seed=6)
    keel_ok("data", "add", str(good), "--name", "churn", cwd=root)
    return root, good


def _bad_input_cases(tmp_path: Path, good: Path) -> dict[str, tuple[list[str], str]]:
    """case -> (arguments, what the error line must name)."""
    outside = write_files(tmp_path / "outside", {"secret.txt": "not yours\n"})
    leaky = small_dataset(tmp_path / "leaky", seed=7)
    (leaky / "sub" / "link.txt").symlink_to(outside / "secret.txt")
    dangling = small_dataset(tmp_path / "dangling", seed=9)
    (dangling / "gone.txt").symlink_to(dangling / "nothing-here")
    g, o = str(good), str(tmp_path / "o")
    return {
        "missing path": (["data", "add", str(tmp_path / "nope"), "--name", "x"], "nope"),
        "symlink to a file outside": (["data", "add", str(leaky), "--name", "x"], "link.txt"),
        "dangling symlink": (["data", "add", str(dangling), "--name", "x"], "gone.txt"),
        "name a/b": (["data", "add", g, "--name", "a/b"], "'a/b'"),
        "name ..": (["data", "add", g, "--name", ".."], "'..'"),
        "name with a space": (["data", "add", g, "--name", "has space"], "'has space'"),
        "name of 129 characters": (["data", "add", g, "--name", "n" * 129], "128 characters"),
        "unknown version": (["data", "get", "churn@v9", "--out", o], "v9"),
    }


def test_bad_input_changes_nothing(populated: tuple[Path, Path], tmp_path: Path) -> None:
    root, good = populated
    listed = keel_json("data", "list", cwd=root)
    meta, objects = metadata_dump(root), store_listing(root)
    failed = []
    for case, (args, word) in _bad_input_cases(tmp_path, good).items():
        proc = run_keel(*args, cwd=root)
        try:
            line = one_error_line(proc, code=2)
            assert word in line, f"the error does not name {word!r}: {line}"
            assert proc.stdout == ""
            assert metadata_dump(root) == meta, "metadata changed"
            assert store_listing(root) == objects, "object store changed"
            assert not (tmp_path / "o").exists()
        except AssertionError as exc:
            failed.append(f"{case}: {exc}")
    assert not failed, "\n".join(failed)
    assert keel_json("data", "list", cwd=root) == listed
    # The boundary itself is fine: 128 characters is a valid name.
    assert keel_json("data", "add", str(good), "--name", "n" * 128, cwd=root)["version"] == 1


def _without_root_powers(probe: Path) -> list[str]:
    """A prefix that runs a command unable to read ``probe`` (mode 000), even as root."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    check = subprocess.run([*prefix, "cat", str(probe)], capture_output=True, check=False)
    if check.returncode == 0 or b"Permission denied" not in check.stderr:
        pytest.skip(f"cannot make a file unreadable here: {check.stderr!r}")
    return prefix


def test_unreadable_file_in_folder_changes_nothing(
    populated: tuple[Path, Path], tmp_path: Path
) -> None:
    root, _ = populated
    locked = small_dataset(tmp_path / "locked", seed=10)
    (locked / "zz-secret.txt").write_text("secret\n")  # sorts last: the others are stored first
    (locked / "zz-secret.txt").chmod(0)
    meta, objects = metadata_dump(root), store_listing(root)
    env = {k: v for k, v in os.environ.items() if k not in ("KEEL_DEBUG", "KEEL_HOME")}
    proc = subprocess.run(
        [
            *_without_root_powers(locked / "zz-secret.txt"),
            KEEL,
            "data",
            "add",
            str(locked),
            "--name",
            "x",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert metadata_dump(root) == meta
    assert store_listing(root) == objects, "the failed add left files in the object store"
    line = one_error_line(proc, code=2)
    assert "zz-secret.txt" in line and "permission denied" in line, line
