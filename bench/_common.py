"""Shared helpers for keel's benchmarks (standard library only).

- ensure_venv(name, requirements): a git-ignored virtualenv under bench/.venvs/
  for an anchor tool (never in keel's own dependencies).
- timed(cmd, cwd, env): wall seconds of one subprocess (time.perf_counter).
- median, fmt_s, fmt_bytes, ratio: small numeric/formatting helpers.
- print_table / markdown_table: plain-text and Markdown tables.
- bench_lock(): the exclusive flock every measuring phase holds, so two
  benchmarks never measure at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
VENVS_DIR = BENCH_DIR / ".venvs"
LOCK_PATH = "/tmp/keel-bench.lock"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def bench_lock() -> Iterator[None]:
    """Hold the exclusive flock on LOCK_PATH while measuring (every benchmark takes it)."""
    with open(LOCK_PATH, "w") as fd:
        t = time.perf_counter()
        fcntl.flock(fd, fcntl.LOCK_EX)
        if (waited := time.perf_counter() - t) > 1:
            log(f"[lock] waited {waited:.0f}s for {LOCK_PATH}")
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def ensure_venv(name: str, requirements: Sequence[str]) -> Path:
    """Return the python of bench/.venvs/<name>, creating it if missing.

    The venv is (re)built when it does not exist or when the requirement
    list differs from the one recorded at creation time.
    """
    venv = VENVS_DIR / name
    py = venv / "bin" / "python"
    stamp = venv / ".bench-requirements"
    wanted = "\n".join(requirements) + "\n"
    if py.exists() and stamp.exists() and stamp.read_text() == wanted:
        return py
    log(f"[setup] creating venv {venv} with {' '.join(requirements)} ...")
    VENVS_DIR.mkdir(parents=True, exist_ok=True)
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--upgrade", "pip"],
        check=True,
    )
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
        check=True,
    )
    stamp.write_text(wanted)
    return py


def ensure_apt_tool(binary: str, package: str) -> str | None:
    """Path to `binary`, installing Debian `package` with apt-get if missing.

    Returns None when it cannot be installed (no root, no apt, no network).
    """
    found = shutil.which(binary)
    if found:
        return found
    if shutil.which("apt-get") is None:
        return None
    log(f"[setup] {binary} not found; apt-get install {package} ...")
    try:
        subprocess.run(
            ["apt-get", "update", "-qq"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", package],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except (subprocess.CalledProcessError, OSError):
        return None
    return shutil.which(binary)


class CommandFailed(RuntimeError):
    pass


def run(
    cmd: Sequence[str] | str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    capture: bool = True,
) -> subprocess.CompletedProcess:
    """Run a command (list, or str for a shell command); raise with output on failure."""
    shell = isinstance(cmd, str)
    p = subprocess.run(
        cmd,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        shell=shell,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
        text=True,
    )
    if check and p.returncode != 0:
        raise CommandFailed(
            f"command failed (rc={p.returncode}): {cmd}\n"
            f"cwd={cwd}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        )
    return p


def timed_run(
    cmd: Sequence[str] | str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> tuple[float, subprocess.CompletedProcess]:
    """Like timed(), but also return the CompletedProcess (text stdout/stderr)."""
    shell = isinstance(cmd, str)
    t0 = time.perf_counter()
    p = subprocess.run(
        cmd,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        shell=shell,
        capture_output=True,
        text=True,
    )
    dt = time.perf_counter() - t0
    if check and p.returncode != 0:
        raise CommandFailed(
            f"command failed (rc={p.returncode}): {cmd}\n"
            f"cwd={cwd}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        )
    return dt, p


def timed(
    cmd: Sequence[str] | str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> float:
    """Wall seconds of one subprocess run, timed with time.perf_counter.

    `cmd` is an argv list, or a str run through /bin/sh (for `a && b`).
    Output is captured (not printed) and shown only if the command fails.
    """
    return timed_run(cmd, cwd=cwd, env=env, check=check)[0]


def median(xs: Iterable[float]) -> float:
    xs = list(xs)
    if not xs:
        return float("nan")
    return statistics.median(xs)


def du_bytes(path: Path | str) -> int:
    """Apparent size in bytes (`du -sb`); 0 if the path does not exist."""
    if not Path(path).exists():
        return 0
    out = run(["du", "-sb", str(path)]).stdout
    return int(out.split()[0])


def drop_tree(path: Path | str) -> None:
    """rm -rf that also copes with read-only files/dirs (e.g. DVC hardlinks)."""
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        return
    subprocess.run(
        ["chmod", "-R", "u+w", str(p)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    shutil.rmtree(p, ignore_errors=True)


def fmt_s(x: float | None) -> str:
    if x is None or x != x:  # None or NaN
        return "n/a"
    if x < 0.1:
        return f"{x * 1000:.0f}ms"
    if x < 10:
        return f"{x:.2f}s"
    return f"{x:.1f}s"


def fmt_bytes(n: float | None) -> str:
    if n is None or n != n:
        return "n/a"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a != a or b != b or b == 0:
        return None
    return a / b


def fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], file=None) -> None:
    """Plain aligned text table."""
    file = file or sys.stdout
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(str(c)))
    line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(headers))
    print(line, file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for r in rows:
        print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)), file=file)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(out)


# -- worker plumbing shared by the benchmarks that run a worker per tool -------------------

RESULT = "@@RESULT "

# The top of every worker's code (run as `python -c CODE JSON_ARGS` in a tool's venv).
WORKER_PRELUDE = r"""
import json, os, sys, time
ARGS = json.loads(sys.argv[1])
MODE = ARGS["mode"]

def out(**kw):
    print("@@RESULT " + json.dumps(kw), flush=True)

def timeit(fn):
    t = time.perf_counter()
    r = fn()
    return time.perf_counter() - t, r

def med(xs):
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return None
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
"""


def parse_result(stdout: str) -> dict:
    """The JSON a worker printed on its result line."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    raise ValueError("worker printed no result line")


def base_env() -> dict[str, str]:
    """This environment without keel's and MLflow's settings, so each worker sets its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "MLFLOW_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def keel_env(ws: Path) -> dict[str, str]:
    return {**base_env(), "KEEL_HOME": str(ws)}


def mlflow_env(d: Path, experiment: str | None = None) -> dict[str, str]:
    env = {
        **base_env(),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{d / 'mlflow.db'}",
    }
    if experiment:
        env["MLFLOW_EXPERIMENT_NAME"] = experiment
    return env


def fmt_ms(x: float | None) -> str:
    if x is None or x != x:
        return "n/a"
    if abs(x) >= 1:
        return fmt_s(x)
    if abs(x) < 0.001:
        return f"{x * 1e6:.0f} µs"
    return f"{x * 1000:.{1 if abs(x) < 0.1 else 0}f} ms"


def fmt_x(r: float | None) -> str:
    if r is None:
        return "n/a"
    return f"{r:,.0f}x" if r >= 100 else f"{r:.2f}x"
