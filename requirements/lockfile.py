"""The dependency locks of keel's own environments: write them, and check them.

``make demo`` and ``make test`` install exact versions, with hashes, from the
files beside this script; ``pyproject.toml`` keeps compatible ranges for users.

=============  ====================================================  ==========================
lock           resolved from                                         installed by
=============  ====================================================  ==========================
``tools``      ``uv`` (the resolver and installer itself)            pip, into ``.venv/uv``
``build``      ``[build-system] requires``                           uv, to build keel editable
``dev``        ``[project] dependencies`` + the ``dev`` extra        ``uv pip sync`` (make test)
``demo``       ``[project] dependencies``, at ``dev``'s versions     ``uv pip install`` (make demo)
=============  ====================================================  ==========================

Each lock is ``uv pip compile --universal --generate-hashes`` output for
Python 3.11 and newer, with one more header line::

    # keel-lock: inputs=<sha256 of what it was resolved from> pins=<sha256 of the lines below>

``check`` recomputes both, so a lock that no longer matches ``pyproject.toml``
(a dependency added to one and not the other) or that was edited by hand fails
at once, in one line naming the file and the fix, before anything installs.
The script needs only the standard library: it runs before any environment
exists.

    python requirements/lockfile.py check
    python requirements/lockfile.py lock --uv .venv/uv/bin/uv [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

PYTHON = "3.11"  # the lowest Python keel supports, the one the README names and CI runs
COMPILE_COMMAND = "make lock"
HEADER = re.compile(r"^# keel-lock: inputs=([0-9a-f]{64}) pins=([0-9a-f]{64})$")
FORMAT = 1  # bump when what goes into the inputs digest changes


class LockError(Exception):
    """A lock that cannot be used as it is; the message is one line ending in the fix."""


@dataclass(frozen=True)
class Lock:
    """One lock file and what it is resolved from."""

    name: str
    extras: tuple[str, ...] = ()
    from_project: bool = True  # the project's dependencies (else ``requirements`` below)
    build: bool = False  # the build backend's requirements
    literal: tuple[str, ...] = ()  # requirements named here, not in pyproject.toml
    constrained_by: str | None = None  # another lock whose versions this one keeps

    def path(self, root: Path) -> Path:
        return root / "requirements" / f"{self.name}.lock"


# In the order they are written: a lock comes after the one that constrains it.
LOCKS = (
    Lock("tools", from_project=False, literal=("uv",)),
    Lock("build", from_project=False, build=True),
    Lock("dev", extras=("dev",)),
    Lock("demo", constrained_by="dev"),
)


def _lock(name: str) -> Lock:
    return next(lock for lock in LOCKS if lock.name == name)


def _normalize(requirement: str) -> str:
    return " ".join(requirement.split())


def _project(root: Path) -> dict[str, object]:
    path = root / "pyproject.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LockError(f"{path} is missing: the locks are resolved from it") from None
    except tomllib.TOMLDecodeError as error:
        raise LockError(
            f"{path} is not valid TOML ({error}): fix it, then run `make lock`"
        ) from None


def requirements(lock: Lock, project: dict[str, object]) -> list[str]:
    """What ``lock`` is resolved from, as sorted, whitespace-normalized requirement strings."""
    reqs: list[str] = list(lock.literal)
    if lock.build:
        reqs += project.get("build-system", {}).get("requires", [])  # type: ignore[attr-defined]
    if lock.from_project:
        meta = project.get("project", {})
        reqs += meta.get("dependencies", [])  # type: ignore[attr-defined]
        optional = meta.get("optional-dependencies", {})  # type: ignore[attr-defined]
        for extra in lock.extras:
            if extra not in optional:
                raise LockError(
                    f"pyproject.toml has no optional dependency group {extra!r} "
                    f"(the {lock.name} lock needs it): add it back, then run `make lock`"
                )
            reqs += optional[extra]
    return sorted({_normalize(r) for r in reqs})


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def inputs_digest(lock: Lock, root: Path, project: dict[str, object] | None = None) -> str:
    """The digest of everything ``lock`` was resolved from.

    A constrained lock also depends on the pins of the lock that constrains it,
    so that re-locking one without the other shows as stale.
    """
    project = _project(root) if project is None else project
    described: dict[str, object] = {
        "format": FORMAT,
        "python": PYTHON,
        "requirements": requirements(lock, project),
    }
    if lock.from_project:
        described["requires-python"] = project.get("project", {}).get("requires-python")  # type: ignore[attr-defined]
    if lock.constrained_by:
        described["constraints"] = read(_lock(lock.constrained_by), root)[1]
    return _sha256(json.dumps(described, sort_keys=True))


def split(text: str) -> tuple[str, str, str]:
    """Split a lock's text into (uv's header, the keel-lock line, the pins below it)."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("# keel-lock:"):
            return "".join(lines[:i]), line.rstrip("\n"), "".join(lines[i + 1 :])
        if not line.startswith("#"):
            break
    raise LockError("no '# keel-lock:' header")


def read(lock: Lock, root: Path) -> tuple[str, str]:
    """The (inputs digest, pins digest) a lock's header records, after checking its pins."""
    path = lock.path(root)
    rel = _rel(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(f"{rel} is missing: run `make lock`") from None
    try:
        _, line, pins = split(text)
    except LockError:
        raise LockError(
            f"{rel} has no '# keel-lock:' header (not written by `make lock`): run `make lock`"
        ) from None
    match = HEADER.match(line)
    if not match:
        raise LockError(f"{rel} has a malformed '# keel-lock:' header: run `make lock`")
    inputs, pinned = match.groups()
    if _sha256(pins) != pinned:
        raise LockError(
            f"{rel} was edited by hand (its pins do not match its header): run `make lock`"
        )
    return inputs, pinned


def check(root: Path) -> None:
    """Raise :class:`LockError` unless every lock is whole and matches ``pyproject.toml``."""
    project = _project(root)
    for lock in LOCKS:
        recorded, _ = read(lock, root)
        if recorded != inputs_digest(lock, root, project):
            source = "pyproject.toml" if lock.from_project or lock.build else "its inputs"
            if lock.constrained_by:
                source += f" and requirements/{lock.constrained_by}.lock"
            raise LockError(
                f"{_rel(lock.path(root), root)} does not match {source} (a dependency changed "
                f"since the lock was made): run `make lock` (`make lock KEEP=1` keeps the other pins)"
            )


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def compile_lock(lock: Lock, root: Path, uv: str, *, upgrade: bool) -> None:
    """Resolve one lock with uv and write it atomically, with its keel-lock header."""
    project = _project(root)
    target = lock.path(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{lock.name}.", suffix=".lock", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if target.exists():
            shutil.copyfile(target, tmp)  # uv keeps the pins of the file it writes to
        else:
            tmp.unlink()
        cmd = [
            uv, "pip", "compile", "--quiet", "--universal", "--generate-hashes",
            "--python-version", PYTHON, "--custom-compile-command", COMPILE_COMMAND,
            "--output-file", str(tmp),
        ]  # fmt: skip
        if upgrade:
            cmd.append("--upgrade")
        for extra in lock.extras:
            cmd += ["--extra", extra]
        if lock.constrained_by:
            cmd += ["--constraint", str(_lock(lock.constrained_by).path(root))]
        stdin = None
        if lock.from_project:
            cmd.append("pyproject.toml")
            if lock.build or lock.literal:
                raise LockError(f"lock {lock.name!r} mixes the project with other inputs")
        else:
            cmd.append("-")
            stdin = "".join(f"{r}\n" for r in requirements(lock, project))
        done = subprocess.run(cmd, cwd=root, input=stdin, text=True, capture_output=True)
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["uv failed"])[-1]
            raise LockError(f"uv could not resolve {_rel(target, root)}: {why}")
        head, pins = _strip_keel_line(tmp.read_text(encoding="utf-8"))
        line = f"# keel-lock: inputs={inputs_digest(lock, root, project)} pins={_sha256(pins)}\n"
        tmp.write_text(head + line + pins, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _strip_keel_line(text: str) -> tuple[str, str]:
    """uv's header and the pins, without any keel-lock line an older lock carried."""
    try:
        head, _, pins = split(text)
        return head, pins
    except LockError:
        lines = text.splitlines(keepends=True)
        n = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
        return "".join(lines[:n]), "".join(lines[n:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lockfile.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="fail in one line unless every lock matches pyproject.toml")
    lock_cmd = sub.add_parser("lock", help="re-resolve every lock from pyproject.toml")
    lock_cmd.add_argument("--uv", default="uv", help="the uv executable")
    lock_cmd.add_argument(
        "--keep", action="store_true", help="keep current pins where they still fit"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            check(args.root)
        else:
            for lock in LOCKS:
                compile_lock(lock, args.root, args.uv, upgrade=not args.keep)
                print(f"wrote {_rel(lock.path(args.root), args.root)}")
            check(args.root)
    except LockError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
