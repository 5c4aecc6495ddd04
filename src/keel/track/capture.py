"""What a run records about its code and environment, so it can be re-created.

Code, in a git repository: the commit, branch and remote, the uncommitted
changes to tracked files as a binary patch, and the untracked (not ignored)
files under a size limit, so a dirty working tree is reproducible. Outside
one: the script and the local modules it imported from its folder, as a tree
(the same size limits). In Jupyter or IPython, the notebook too
(``keel.track.notebook``). Environment: Python, the platform, the CPU count and
every installed distribution with its version (read from
``importlib.metadata``: no ``pip freeze`` subprocess).
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
    # outside git: the folder the files were taken from, the tree of them, and their paths
    files_root: str | None = None
    files_oid: str | None = None
    files: list[str] = field(default_factory=list)
    notebook: dict[str, Any] | None = None  # keel.track.notebook: where its cells came from

    @property
    def kind(self) -> str | None:
        """``git``, ``folder`` (files outside git), or None (nothing recorded)."""
        if self.commit is not None:
            return "git"
        if self.files_oid is not None:
            return "folder"
        return None

    def record(self) -> dict[str, Any]:
        """What the run's command record keeps of the code beyond the git columns."""
        doc: dict[str, Any] = {}
        if self.files_oid is not None:
            doc["code"] = {
                "kind": "folder",
                "root": self.files_root,
                "tree": self.files_oid,
                "files": self.files,
                "skipped": self.untracked_skipped,
            }
        if self.notebook is not None:
            doc["notebook"] = self.notebook
        return doc


def _git(args: list[str], cwd: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        check=False,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
    )


def capture_code(
    store: ObjectStore,
    cwd: str | None = None,
    *,
    argv: list[str] | None = None,
    notebook: str | os.PathLike[str] | None = None,
) -> CodeState:
    """Record the repository state around ``cwd``; outside a repository, the script
    (``argv[0]``) and the local modules imported from its folder. In Jupyter or IPython (or
    given ``notebook``), the notebook as well."""
    from keel.track.notebook import capture_notebook

    here = os.path.abspath(cwd or os.getcwd())
    argv = list(sys.argv if argv is None else argv)
    nb = capture_notebook(store, here, notebook)
    state = _capture_git(store, here)
    if state.commit is None:
        base = _folder_of(argv, here, nb)
        _capture_folder(store, state, base, argv, nb)
    state.notebook = nb
    return state


def _capture_git(store: ObjectStore, here: str) -> CodeState:
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


def _folder_of(argv: list[str], here: str, nb: dict[str, Any] | None) -> str:
    """Where the code lives outside git: the script's folder, the notebook's, or the cwd."""
    if nb is not None and nb.get("folder"):
        return str(nb["folder"])
    if argv and argv[0] not in ("", "-c", "-m") and os.path.isfile(argv[0]):
        return os.path.dirname(os.path.abspath(argv[0]))
    return here


def _installed_prefixes() -> tuple[str, ...]:
    """Where installed packages live (as written and resolved): never the user's code."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(
        {os.path.join(f(p), "") for p in prefixes for f in (os.path.abspath, os.path.realpath)}
    )


def _local_modules(base: str) -> list[str]:
    """Files of modules imported from under ``base`` (not an installed package), sorted.
    Module paths are compared as written first: resolving each of a few thousand would
    cost a start tens of milliseconds."""
    roots = {os.path.join(os.path.abspath(base), ""), os.path.join(os.path.realpath(base), "")}
    skip = _installed_prefixes()
    found = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py") or not path.startswith(tuple(roots)):
            continue
        if path.startswith(skip):
            continue
        real = os.path.realpath(path)
        root = next((r for r in roots if real.startswith(r)), None)
        if root is None or real.startswith(skip):
            continue
        rel = real[len(root) :]
        parts = rel.split(os.sep)
        if ".keel" in parts or "site-packages" in parts or "dist-packages" in parts:
            continue
        found.add(rel)
    return sorted(found)


def _capture_folder(
    store: ObjectStore, state: CodeState, base: str, argv: list[str], nb: dict[str, Any] | None
) -> None:
    """Outside git: store the script and the local modules it imported as one tree."""
    names = set(_local_modules(base))
    if argv and argv[0] not in ("", "-c", "-m") and os.path.isfile(argv[0]):
        script = os.path.relpath(os.path.realpath(argv[0]), os.path.realpath(base))
        if not script.startswith(".."):
            names.add(script)
    if not names and nb is None:
        return
    entries: list[TreeEntry] = []
    total = 0
    for name in sorted(names):
        path = Path(base, name)
        try:
            st = path.stat()
        except OSError:
            continue
        if st.st_size > UNTRACKED_FILE_LIMIT or total + st.st_size > UNTRACKED_TOTAL_LIMIT:
            state.untracked_skipped.append(name)
            continue
        stored = store_file(store, path)
        rel = name.replace(os.sep, "/")
        entries.append(TreeEntry(rel, stored.oid, stored.size, st.st_mode & 0o777, stored.chunked))
        total += st.st_size
    state.files_root = base
    state.files = [e.path for e in entries]
    state.files_oid = store.put(Tree(entries).encode())


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
