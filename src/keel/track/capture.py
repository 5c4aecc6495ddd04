"""What a run records about its code and environment, so it can be re-created.

Code: the git commit, branch and remote, the uncommitted changes to tracked
files as a binary patch, and the untracked (not ignored) files under a size
limit, so a dirty working tree is reproducible. Environment: Python, the
platform, the CPU count and every installed distribution with its version
(read from ``importlib.metadata``: no ``pip freeze`` subprocess).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.store.objects import ObjectStore, Tree, TreeEntry, store_file

__all__ = [
    "UNTRACKED_FILE_LIMIT",
    "UNTRACKED_TOTAL_LIMIT",
    "CodeState",
    "capture_code",
    "capture_environment",
    "environment_differences",
]

UNTRACKED_FILE_LIMIT = 1 << 20  # larger untracked files are listed as skipped, not stored
UNTRACKED_TOTAL_LIMIT = 32 << 20


@dataclass
class CodeState:
    """The code a run ran: where, which commit, and what was not committed."""

    repo_root: str | None = None
    commit: str | None = None
    branch: str | None = None
    remote: str | None = None
    dirty: bool = False
    patch_oid: str | None = None
    untracked_oid: str | None = None
    untracked_skipped: list[str] = field(default_factory=list)
    cwd: str = "."


def _git(args: list[str], cwd: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        check=False,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
    )


def capture_code(store: ObjectStore, cwd: str | None = None) -> CodeState:
    """Record the repository state around ``cwd``; outside a repository, only the folder."""
    here = os.path.abspath(cwd or os.getcwd())
    state = CodeState(cwd=here)
    try:
        top = _git(["rev-parse", "--show-toplevel"], here)
    except FileNotFoundError:  # no git on this machine
        return state
    if top.returncode != 0:
        return state
    root = top.stdout.decode().strip()
    state.repo_root = root
    state.cwd = os.path.relpath(here, root)
    head = _git(["rev-parse", "--verify", "-q", "HEAD"], root)
    if head.returncode == 0:
        state.commit = head.stdout.decode().strip()
    branch = _git(["symbolic-ref", "--short", "-q", "HEAD"], root)
    state.branch = branch.stdout.decode().strip() or None
    remote = _git(["config", "--get", "remote.origin.url"], root)
    state.remote = remote.stdout.decode().strip() or None
    if state.commit is not None:
        diff = _git(["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"], root)
        if diff.returncode == 0 and diff.stdout:
            state.patch_oid = store.put(diff.stdout)
            state.dirty = True
    others = _git(["ls-files", "--others", "--exclude-standard", "-z"], root)
    names = [n for n in others.stdout.decode(errors="surrogateescape").split("\0") if n]
    entries: list[TreeEntry] = []
    total = 0
    for name in sorted(names):
        if ".keel" in name.split("/"):
            continue  # a workspace inside the repository is data, not code
        path = Path(root, name)
        try:
            st = path.lstat()
        except OSError:
            continue
        if not path.is_file() or path.is_symlink():
            continue
        if st.st_size > UNTRACKED_FILE_LIMIT or total + st.st_size > UNTRACKED_TOTAL_LIMIT:
            state.untracked_skipped.append(name)
            continue
        stored = store_file(store, path)
        entries.append(TreeEntry(name, stored.oid, stored.size, st.st_mode & 0o777, stored.chunked))
        total += st.st_size
    if entries:
        state.untracked_oid = store.put(Tree(entries).encode())
        state.dirty = True
    return state


_PACKAGES: dict[tuple[tuple[str, int], ...], dict[str, str]] = {}


def _installed() -> dict[str, str]:
    """Installed distributions, name → version. Reading them all takes tens of
    milliseconds, so they are kept until a folder on the path changes (an install or an
    uninstall adds or removes a ``.dist-info`` folder there, even from a notebook)."""
    from importlib import metadata

    stamp = []
    for entry in sys.path:
        try:
            stamp.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    key = tuple(stamp)
    known = _PACKAGES.get(key)
    if known is None:
        packages: dict[str, str] = {}
        for dist in metadata.distributions():
            name = dist.name
            if name:
                packages[name.lower().replace("_", "-")] = dist.version
        _PACKAGES.clear()
        known = _PACKAGES[key] = dict(sorted(packages.items()))
    return dict(known)


def capture_environment() -> dict[str, Any]:
    """Python, platform, CPUs and installed distributions (name → version)."""
    packages = _installed()
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": packages,
    }


def environment_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between two environments, one line each (packages and Python)."""
    out = []
    if recorded.get("python") != current.get("python"):
        out.append(f"python {recorded.get('python')} -> {current.get('python')}")
    old, new = recorded.get("packages", {}), current.get("packages", {})
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            out.append(f"{name} {old.get(name, '(absent)')} -> {new.get(name, '(absent)')}")
    return out
