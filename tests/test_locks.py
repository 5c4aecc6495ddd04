"""The dependency locks: fresh, whole, and a stale one stops `make` in one line.

``requirements/lockfile.py`` is a standard-library script (it runs before any
environment exists), so it is loaded from its path here.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)", re.MULTILINE)


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "keel_lockfile", ROOT / "requirements" / "lockfile.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


lockfile = _load()


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, set[str]]:
    """Package name -> the versions a lock pins (one per Python-version marker)."""
    found: dict[str, set[str]] = {}
    for name, version in NAME.findall(path.read_text(encoding="utf-8")):
        found.setdefault(_canon(name), set()).add(version)
    return found


def _requirement_name(requirement: str) -> str:
    return _canon(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what the locks are checked against: the Makefile, pyproject.toml, the locks."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    return tmp_path


def _add_dependency(root: Path, requirement: str, after: str = '"click>=8.1",') -> None:
    path = root / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    assert after in text
    path.write_text(text.replace(after, f'{after}\n    "{requirement}",', 1), encoding="utf-8")


def _message(root: Path) -> str:
    with pytest.raises(lockfile.LockError) as caught:
        lockfile.check(root)
    message = str(caught.value)
    assert "\n" not in message and "make lock" in message
    return message


# --- the committed locks ---------------------------------------------------------------


def test_committed_locks_match_pyproject() -> None:
    lockfile.check(ROOT)


def test_every_requirement_is_pinned_in_its_lock() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dev, demo = pins(ROOT / "requirements" / "dev.lock"), pins(ROOT / "requirements" / "demo.lock")
    wanted_dev = (
        project["project"]["dependencies"] + project["project"]["optional-dependencies"]["dev"]
    )
    assert {_requirement_name(r) for r in wanted_dev} <= dev.keys()
    assert {_requirement_name(r) for r in project["project"]["dependencies"]} <= demo.keys()
    build = pins(ROOT / "requirements" / "build.lock")
    assert {_requirement_name(r) for r in project["build-system"]["requires"]} <= build.keys()
    assert "uv" in pins(ROOT / "requirements" / "tools.lock")


def test_demo_and_dev_agree_on_every_shared_version() -> None:
    """`make test` then `make demo` in one environment changes nothing: one version per package."""
    dev, demo = pins(ROOT / "requirements" / "dev.lock"), pins(ROOT / "requirements" / "demo.lock")
    assert demo.keys() <= dev.keys()
    assert {name: demo[name] for name in demo} == {name: dev[name] for name in demo}


def test_every_pin_is_exact_and_hashed() -> None:
    for path in sorted((ROOT / "requirements").glob("*.lock")):
        text = path.read_text(encoding="utf-8")
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 3)[3])
        for entry in entries:
            if not entry.strip() or entry.startswith("#"):
                continue
            assert "==" in entry.split("\\")[0], f"{path.name}: not an exact pin: {entry[:60]}"
            assert "--hash=sha256:" in entry, f"{path.name}: no hash for {entry[:60]}"


# --- what makes a lock stale -----------------------------------------------------------


def test_a_dependency_added_to_pyproject_only_is_stale(tree: Path) -> None:
    _add_dependency(tree, "tqdm>=4")
    message = _message(tree)
    assert message.startswith("requirements/dev.lock does not match pyproject.toml")


def test_a_dev_only_dependency_makes_the_dev_lock_stale(tree: Path) -> None:
    _add_dependency(tree, "pytest-xdist>=3", after='"pytest>=8",')
    assert "requirements/dev.lock" in _message(tree)


def test_a_changed_range_is_stale(tree: Path) -> None:
    path = tree / "pyproject.toml"
    path.write_text(path.read_text().replace('"duckdb>=1.1"', '"duckdb>=1.2"'), encoding="utf-8")
    assert "requirements/dev.lock does not match" in _message(tree)


def test_a_dependency_added_to_the_lock_only_is_refused(tree: Path) -> None:
    lock = tree / "requirements" / "dev.lock"
    lock.write_text(
        lock.read_text() + "tqdm==4.67.1 \\\n    --hash=sha256:" + "0" * 64 + "\n", encoding="utf-8"
    )
    assert _message(tree) == (
        "requirements/dev.lock was edited by hand (its pins do not match its header): run `make lock`"
    )


def test_a_changed_build_backend_is_stale(tree: Path) -> None:
    path = tree / "pyproject.toml"
    path.write_text(
        path.read_text().replace('"setuptools>=77"', '"setuptools>=80"'), encoding="utf-8"
    )
    assert _message(tree).startswith("requirements/build.lock does not match pyproject.toml")


def test_demo_relocked_apart_from_dev_is_stale(tree: Path) -> None:
    """The demo lock keeps the dev lock's versions; a dev lock rewritten alone leaves it stale."""
    lock = lockfile._lock("dev")
    path = lock.path(tree)
    head, _, body = lockfile.split(path.read_text(encoding="utf-8"))
    body = body.replace("alembic==", "alembic==9", 1)
    digest = lockfile.inputs_digest(lock, tree)
    path.write_text(f"{head}# keel-lock: inputs={digest} pins={lockfile._sha256(body)}\n{body}")
    assert _message(tree).startswith(
        "requirements/demo.lock does not match pyproject.toml and requirements/dev.lock"
    )


def test_a_missing_lock_or_header(tree: Path) -> None:
    (tree / "requirements" / "build.lock").unlink()
    assert _message(tree) == "requirements/build.lock is missing: run `make lock`"
    shutil.copy(ROOT / "requirements" / "build.lock", tree / "requirements" / "build.lock")
    lock = tree / "requirements" / "tools.lock"
    lock.write_text("\n".join(x for x in lock.read_text().splitlines() if "keel-lock" not in x))
    assert "tools.lock has no '# keel-lock:' header" in _message(tree)


def test_a_removed_extra_is_named(tree: Path) -> None:
    path = tree / "pyproject.toml"
    path.write_text(path.read_text().replace("\ndev = [", "\ndevel = ["), encoding="utf-8")
    assert "no optional dependency group 'dev'" in _message(tree)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1), st.data())
def test_any_edit_of_the_pins_is_caught(body: str, data: st.DataObject) -> None:
    """The header's pins digest changes with every character below it."""
    text = f"# uv header\n# keel-lock: inputs={'0' * 64} pins={lockfile._sha256(body)}\n{body}"
    _, line, parsed = lockfile.split(text)
    assert parsed == body and lockfile.HEADER.match(line).group(2) == lockfile._sha256(body)
    i = data.draw(st.integers(0, len(body) - 1))
    edited = body[:i] + ("x" if body[i] != "x" else "y") + body[i + 1 :]
    assert lockfile._sha256(edited) != lockfile._sha256(body)


# --- as a developer meets it -----------------------------------------------------------


def test_check_command_is_one_line_and_exit_2(tree: Path) -> None:
    _add_dependency(tree, "tqdm>=4")
    done = subprocess.run(
        [sys.executable, str(tree / "requirements" / "lockfile.py"), "check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "run `make lock`" in done.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
@pytest.mark.parametrize("goal", ["test", "demo"])
def test_make_stops_before_installing_anything(tree: Path, goal: str) -> None:
    _add_dependency(tree, "tqdm>=4")
    done = subprocess.run(
        ["make", "--no-print-directory", goal],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "requirements/dev.lock does not match pyproject.toml" in lines[0]
    assert "make lock" in lines[0]
    assert done.stdout == "" and not (tree / ".venv").exists()


def _uv() -> str | None:
    beside = Path(sys.prefix) / "uv" / "bin" / "uv"  # where `make` puts it
    return str(beside) if beside.exists() else shutil.which("uv")


@pytest.mark.slow
@pytest.mark.skipif(_uv() is None, reason="needs uv (make puts it in .venv/uv)")
def test_lock_keep_adds_the_new_dependency_and_changes_no_other_pin(tree: Path) -> None:
    before = pins(tree / "requirements" / "dev.lock")
    _add_dependency(tree, "tqdm>=4")
    assert lockfile.main(["--root", str(tree), "lock", "--uv", _uv(), "--keep"]) == 0
    lockfile.check(tree)
    after = pins(tree / "requirements" / "dev.lock")
    assert "tqdm" in after and "tqdm" in pins(tree / "requirements" / "demo.lock")
    assert {name: after[name] for name in before} == before
    assert after.keys() - before.keys() <= {"tqdm", "colorama"}  # colorama: tqdm's, on Windows
