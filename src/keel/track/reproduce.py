"""``keel reproduce RUN``: re-create a run from its record and say whether it came out the same.

1. Check out the recorded commit in a temporary git worktree, apply the
   recorded patch and write the recorded untracked files; for code outside git,
   write the recorded script and local modules into a scratch folder.
2. Check the input dataset versions still exist; materialize each at the
   path it was added from when that path lies inside the repository.
3. Warn about environment differences (Python, package versions).
4. Re-run the recorded command there (or re-execute the recorded notebook
   headless with nbclient), as a new run linked to the original
   (``reproduction_of``), against the same workspace.
5. Compare: params, inputs, metrics, model and artifact digests all equal →
   ``identical``; metrics within the tolerance (or files that changed while the
   metrics did not) → ``reproduced``; otherwise ``differs``, with exactly what
   differs. Volatile metrics (wall-clock times: ``training_duration_s`` and any
   logged with ``volatile=True``) are recorded but not compared.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError, NotFound
from keel.track.records import VOLATILE_METRICS, VOLATILE_TAG, RunRecord, get_run

REGISTER_ENV = "KEEL_REPRODUCE_REGISTER"  # the reproduction's log_model registers versions

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["CannotReproduce", "Reproduction", "reproduce"]


class CannotReproduce(InvalidInput):
    """Something the run needs is gone: its commit, its data, or a command to re-run."""


@dataclass
class Reproduction:
    """The outcome of ``reproduce``."""

    original: str
    reproduction: str | None
    verdict: str  # identical, reproduced, differs, failed
    tolerance: float
    returncode: int
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    environment_differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict in ("identical", "reproduced")

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "reproduction": self.reproduction,
            "verdict": self.verdict,
            "ok": self.ok,
            "tolerance": self.tolerance,
            "returncode": self.returncode,
            "differences": self.differences,
            "notes": self.notes,
            "environment_differences": self.environment_differences,
        }


def _git(args: list[str], cwd: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def _repository(rec: RunRecord) -> str:
    commit = rec.code.get("commit")
    if commit is None:
        raise CannotReproduce(
            f"run {rec.id[:8]} was not started in a git repository with a commit; "
            "there is no code to check out"
        )
    candidates = [rec.code.get("repo_root"), os.getcwd()]
    for folder in candidates:
        if folder and Path(folder).is_dir():
            top = _git(["rev-parse", "--show-toplevel"], folder)
            if top.returncode == 0:
                root = top.stdout.strip()
                if _git(["cat-file", "-e", f"{commit}^{{commit}}"], root).returncode == 0:
                    return root
    raise CannotReproduce(
        f"run {rec.id[:8]} needs commit {commit[:12]}, which is not in this repository "
        "(fetch it, or run keel reproduce inside the repository that has it)"
    )


def _check_command(rec: RunRecord) -> None:
    argv = list(rec.command.get("argv") or [])
    if not argv or argv[0] in ("", "-c") or "ipykernel" in argv[0]:
        raise CannotReproduce(
            f"run {rec.id[:8]} was started from an interactive session or `python -c` "
            f"(argv {argv!r}) and recorded no notebook; only a script, a module or a "
            "notebook run can be re-run"
        )


def _command(rec: RunRecord, repo_root: str, worktree: Path) -> list[str]:
    argv = list(rec.command.get("argv") or [])
    if argv[0] != "-m":
        script = Path(argv[0])
        if not script.is_absolute() and rec.code.get("kind") == "folder":
            script = Path(str(rec.code["cwd"]), script)  # outside git the cwd is absolute
        if script.is_absolute():
            try:
                argv[0] = str(worktree / script.relative_to(repo_root))
            except ValueError:
                pass  # a script outside the repository: run it where it is
    return [sys.executable, *argv]


def _check_inputs(ws: Workspace, rec: RunRecord) -> list[Any]:
    from keel.data.catalog import resolve
    from keel.errors import MissingObject
    from keel.store.walk import children

    versions = []
    for item in rec.inputs:
        version = resolve(ws, item["ref"])
        if version.deleted_at is not None:
            raise CannotReproduce(
                f"input {version.ref} of run {rec.id[:8]} was removed (keel data rm); "
                "its data may be gone"
            )
        try:
            for oid, shape in children(ws.objects, version.digest, "tree"):
                if not ws.objects.has(oid):
                    raise MissingObject(oid)
                if shape == "chunks":
                    for chunk, _ in children(ws.objects, oid, "chunks"):
                        if not ws.objects.has(chunk):
                            raise MissingObject(chunk)
        except MissingObject as exc:
            raise CannotReproduce(
                f"input {version.ref} of run {rec.id[:8]} was garbage-collected "
                f"(object {exc.oid[:12]} is gone)"
            ) from None
        versions.append(version)
    return versions


def _prepare(
    ws: Workspace, rec: RunRecord, repo_root: str, worktree: Path, inputs: list[Any]
) -> list[str]:
    notes: list[str] = []
    added = _git(["worktree", "add", "--detach", str(worktree), str(rec.code["commit"])], repo_root)
    if added.returncode != 0:
        raise KeelError(f"git worktree add failed: {added.stderr.strip()}")
    patch = rec.patch()
    if patch:
        patch_file = worktree.parent / "keel-run.patch"
        patch_file.write_bytes(patch)
        applied = _git(["apply", "--binary", "--whitespace=nowarn", str(patch_file)], worktree)
        if applied.returncode != 0:
            raise KeelError(f"the recorded patch does not apply: {applied.stderr.strip()}")
    untracked = rec.code.get("untracked_oid")
    if untracked:
        from keel.store.objects import Tree, write_content

        for entry in Tree.decode(ws.objects.get(untracked)):
            dest = worktree / entry.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                write_content(ws.objects, entry.oid, entry.chunked, str(dest), entry.mode)
    return notes + _materialize(inputs, repo_root, worktree)


def _prepare_folder(ws: Workspace, rec: RunRecord, base: Path, inputs: list[Any]) -> list[str]:
    """Outside git: write the recorded script and local modules into ``base``."""
    from keel.store.objects import Tree, write_content

    base.mkdir(parents=True, exist_ok=True)
    for entry in Tree.decode(ws.objects.get(rec.code["files_oid"])):
        dest = base / entry.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_content(ws.objects, entry.oid, entry.chunked, str(dest), entry.mode)
    notes = []
    if rec.code["files"]:
        count = len(rec.code["files"])
        notes.append(
            f"code outside git: {count} file{'' if count == 1 else 's'} from {rec.code['files_root']}"
        )
    if rec.code["files_skipped"]:
        notes.append(f"not recorded (over the size limit): {', '.join(rec.code['files_skipped'])}")
    return notes + _materialize(inputs, str(rec.code["files_root"]), base)


def _materialize(inputs: list[Any], original_root: str, base: Path) -> list[str]:
    """Each input dataset version added from inside the code's folder, back at its path."""
    notes = []
    for version in inputs:
        try:
            rel = Path(version.source).relative_to(original_root)
        except ValueError:
            continue  # added from outside the code's folder: the code reads it through keel
        dest = base / rel
        if dest.exists():
            notes.append(f"{version.ref}: {rel} exists in the checkout; left as it is")
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        version.materialize(str(dest), link="copy")
        notes.append(f"{version.ref} materialized at {rel}")
    return notes


def _inside(path: str | None, root: str, base: Path, fallback: Path) -> Path:
    """``path`` (absolute, under ``root`` when the run started) moved under ``base``."""
    if path:
        try:
            return base / Path(path).relative_to(root)
        except ValueError:
            pass
    return fallback


def _same(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    return bool(a == b)


def compare(
    original: RunRecord, again: RunRecord, tolerance: float
) -> tuple[str, list[str], list[str]]:
    """(verdict, differences, notes) between a run and its reproduction."""
    differences: list[str] = []
    notes: list[str] = []
    for key in sorted(set(original.params) | set(again.params)):
        a, b = original.params.get(key), again.params.get(key)
        if a != b:
            differences.append(f"param {key}: {a!r} -> {b!r}")
    if sorted(i["ref"] for i in original.inputs) != sorted(i["ref"] for i in again.inputs):
        differences.append(
            f"inputs: {[i['ref'] for i in original.inputs]} -> {[i['ref'] for i in again.inputs]}"
        )
    exact = True
    volatile = set(VOLATILE_METRICS)
    for rec in (original, again):
        volatile.update(k for k in rec.tags.get(VOLATILE_TAG, "").split(",") if k)
    for key in sorted(set(original.metrics) | set(again.metrics)):
        a = original.metrics.get(key, {}).get("last")
        b = again.metrics.get(key, {}).get("last")
        if a is None or b is None:
            differences.append(f"metric {key}: {a!r} -> {b!r}")
            continue
        if key in volatile:
            notes.append(f"metric {key}: {a!r} -> {b!r} (volatile: not compared)")
            continue
        if not _same(a, b, 0.0):
            exact = False
            if not _same(a, b, tolerance):
                differences.append(f"metric {key}: {a!r} -> {b!r} (beyond tolerance {tolerance})")
            else:
                notes.append(f"metric {key}: {a!r} -> {b!r} (within tolerance)")
    models_a = {m["name"]: m["digest"] for m in original.models}
    models_b = {m["name"]: m["digest"] for m in again.models}
    for name in sorted(set(models_a) | set(models_b)):
        a_oid, b_oid = models_a.get(name), models_b.get(name)
        if a_oid is None or b_oid is None:
            differences.append(
                f"model {name}: {'logged' if a_oid else 'absent'} -> "
                f"{'logged' if b_oid else 'absent'}"
            )
        elif a_oid != b_oid:
            exact = False
            notes.append(f"model {name}: files {a_oid[:12]} -> {b_oid[:12]}")
    arts_a = {x["path"]: x["oid"] for x in original.artifacts}
    arts_b = {x["path"]: x["oid"] for x in again.artifacts}
    artifacts_equal = arts_a == arts_b
    for path in sorted(set(arts_a) | set(arts_b)):
        if arts_a.get(path) != arts_b.get(path):
            a_oid, b_oid = arts_a.get(path), arts_b.get(path)
            notes.append(
                f"artifact {path}: {a_oid[:12] if a_oid else 'absent'} -> "
                f"{b_oid[:12] if b_oid else 'absent'}"
            )
    if differences:
        return "differs", differences + [n for n in notes if n.startswith("artifact")], notes
    if artifacts_equal and exact:
        return "identical", differences, notes
    return "reproduced", differences, notes


def reproduce(
    ws: Workspace,
    ref: str,
    *,
    tolerance: float = 1e-9,
    keep: bool = False,
    output: IO[str] | int | None = None,
    timeout: float | None = None,
    latest: bool = False,
    register: bool = False,
) -> Reproduction:
    """Re-run ``ref`` from its record and compare. Raises CannotReproduce when something is gone.
    A name several runs carry is bad input unless ``latest``. The models the reproduction
    logs are recorded with it, not registered as versions, unless ``register``."""
    from keel.track.capture import capture_environment, environment_differences

    if not (0 <= tolerance < 1):
        raise InvalidInput(f"invalid tolerance {tolerance}: expected a number from 0 up to 1")
    rec = get_run(ws, ref, latest=latest)
    kind = rec.code.get("kind")
    notebook = rec.code.get("notebook")
    if kind is None:
        raise CannotReproduce(
            f"run {rec.id[:8]} recorded no code: it was started outside a git repository "
            "with no script, notebook or local module to record (or with capture_code=False)"
        )
    repo_root = _repository(rec) if kind == "git" else None
    if notebook is None:
        _check_command(rec)
    inputs = _check_inputs(ws, rec)
    # reading every installed distribution takes a fifth of a second: beside the re-run
    here = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="keel-env")
    current = here.submit(capture_environment)
    here.shutdown(wait=False)
    scratch = Path(tempfile.mkdtemp(prefix=f"keel-reproduce-{rec.id[:8]}-"))
    base = scratch / "checkout"
    try:
        if repo_root is not None:
            notes = _prepare(ws, rec, repo_root, base, inputs)
            original_root = repo_root
            cwd = base / str(rec.code.get("cwd") or ".")
        else:
            # the files' folder and the cwd keep their places relative to each other
            original_root = str(rec.code["files_root"])
            started_in = str(rec.code.get("cwd") or original_root)
            common = os.path.commonpath([original_root, started_in])
            cwd = base / os.path.relpath(started_in, common)
            base = base / os.path.relpath(original_root, common)
            notes = _prepare_folder(ws, rec, base, inputs)
        cwd.mkdir(parents=True, exist_ok=True)
        started = time.time()
        env = {**os.environ, "KEEL_HOME": str(ws.root), "KEEL_REPRODUCTION_OF": rec.id}
        env.pop(REGISTER_ENV, None)
        if register:
            env[REGISTER_ENV] = "1"
        failure = None
        if notebook is not None:
            returncode, failure = _run_notebook(
                ws, notebook, original_root, base, cwd, env, timeout, output
            )
            notes.append(f"notebook re-executed headless ({notebook['source']}, {notebook['cells']} cells)")
        else:
            proc = subprocess.run(
                _command(rec, original_root, base),
                cwd=cwd,
                env=env,
                stdout=output or sys.stdout,
                stderr=output or sys.stderr,
                check=False,
                timeout=timeout,
            )
            returncode = proc.returncode
        again = _find_reproduction(ws, rec, started)
        env_diff = environment_differences(rec.environment or {}, current.result())
        if again is None:
            why = failure or f"the command exited {returncode}"
            return Reproduction(
                rec.id,
                None,
                "failed",
                tolerance,
                returncode,
                [f"{why} and recorded no keel run"],
                notes,
                env_diff,
            )
        verdict, differences, more = compare(rec, again, tolerance)
        if returncode != 0 or again.status != "finished":
            verdict = "failed"
            differences.insert(
                0, failure or f"the reproduction ended {again.status} (exit {returncode})"
            )
        return Reproduction(
            rec.id,
            again.id,
            verdict,
            tolerance,
            returncode,
            differences,
            notes + more,
            env_diff,
        )
    finally:
        if not keep:
            if repo_root is not None:
                _git(["worktree", "remove", "--force", str(base)], repo_root)
            shutil.rmtree(scratch, ignore_errors=True)
            if repo_root is not None:
                _git(["worktree", "prune"], repo_root)


def _run_notebook(
    ws: Workspace,
    notebook: dict[str, Any],
    original_root: str,
    base: Path,
    cwd: Path,
    env: dict[str, str],
    timeout: float | None,
    output: IO[str] | int | None,
) -> tuple[int, str | None]:
    """Write the recorded notebook where it was (under ``base``) and execute it there;
    (0, None) when every cell ran, else (1, which cell raised)."""
    from keel.track.notebook import NotebookFailed, execute_notebook

    path = _inside(notebook.get("path"), original_root, base, cwd / str(notebook["name"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ws.objects.get(notebook["oid"]))
    # Jupyter starts a kernel in its notebook's folder; a session rebuilt from history ran
    # in the folder the run started in
    where = path.parent if notebook["source"] == "file" else cwd
    try:
        execute_notebook(path, where, env, timeout, output)
    except NotebookFailed as exc:
        return 1, f"the notebook failed: {exc}"
    return 0, None


def _find_reproduction(ws: Workspace, original: RunRecord, since: float) -> RunRecord | None:
    """The run the re-run made in place of ``original``. A script or notebook may start
    several runs (an autolog run per fit, a loop of runs of one name): all are marked as
    reproductions of ``original``; its counterpart is the one of its name started in the
    same order (``ordinal``: how many of that name its process had started before it)."""
    from sqlalchemy import select

    from keel.store.db import runs

    with ws.db.read() as conn:
        rows = conn.execute(
            select(runs.c.id, runs.c.name)
            .where(runs.c.reproduction_of == original.id, runs.c.created_at >= since - 1)
            .order_by(runs.c.created_at, runs.c.pk)
            .limit(1000)
        ).all()
    if not rows:
        return None
    named = [r for r in rows if r.name == original.name] or rows
    ordinal = int(original.command.get("ordinal") or 0)
    chosen = named[min(ordinal, len(named) - 1)] if named is not rows else rows[-1]
    try:
        return get_run(ws, chosen.id)
    except NotFound:  # pragma: no cover - removed between the two reads
        return None
