"""The install step of `make test`: keel's locked flow beside the ways a user would do it.

Each run builds the dev environment (keel's dependencies, the `dev` extra, keel
itself editable) into a fresh virtualenv under a temporary folder, one way
after the other (A B C A B C ...), so the ratios come from the same run:

- **make dev**: what `make test` does now: uv from `requirements/tools.lock`,
  `uv pip sync` of `requirements/dev.lock` (hashes required), keel editable
  with the build backend from `requirements/build.lock`;
- **pip, hashed lock**: the pip-tools way with the same lock:
  `pip install --require-hashes -r requirements/dev.lock`, then
  `pip install --no-deps -e .`;
- **pip, unlocked**: what `make test` did before the locks:
  `pip install -e '.[dev]'`, resolving whatever the index serves that day.

Then the no-op: `make dev` again with nothing changed (the second `make test`
installs nothing). Package caches are warm (one untimed warm-up per way), as
they are on a developer's machine and on CI's; `--cold` adds one run of each
with empty caches.

    .venv/bin/python bench/install.py [--runs 3] [--cold]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_DIR, bench_lock, fmt_ratio, fmt_s, log, median, print_table, timed

BASE = shutil.which("python3") or sys.executable  # what `make` uses to make the venv


def _venv(where: Path) -> Path:
    shutil.rmtree(where, ignore_errors=True)
    return where


def make_dev(venv: Path, env: dict[str, str]) -> float:
    return timed(
        ["make", "--no-print-directory", f"VENV={venv}", f"PYTHON={BASE}", "dev"], REPO_DIR, env
    )


def pip_locked(venv: Path, env: dict[str, str]) -> float:
    pip = f"{venv}/bin/python -m pip install --quiet --disable-pip-version-check"
    return timed(
        f"{BASE} -m venv {venv} && {pip} --require-hashes -r requirements/dev.lock"
        f" && {pip} --no-deps -e .",
        REPO_DIR,
        env,
    )


def pip_unlocked(venv: Path, env: dict[str, str]) -> float:
    pip = f"{venv}/bin/python -m pip install --quiet --disable-pip-version-check"
    return timed(f"{BASE} -m venv {venv} && {pip} -e '.[dev]'", REPO_DIR, env)


WAYS: dict[str, Callable[[Path, dict[str, str]], float]] = {
    "make dev (uv, locked)": make_dev,
    "pip, hashed lock": pip_locked,
    "pip, unlocked (before)": pip_unlocked,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--cold", action="store_true", help="also one run of each with empty caches"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="keel-bench-install-"))
    env = dict(os.environ)
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    noop: list[float] = []
    cold: dict[str, float] = {}
    try:
        with bench_lock():
            for name, way in WAYS.items():
                log(f"[warm-up] {name}")
                way(_venv(work / "venv"), env)
            for i in range(args.runs):
                for name, way in WAYS.items():
                    times[name].append(way(_venv(work / "venv"), env))
                    log(f"[run {i + 1}] {name}: {fmt_s(times[name][-1])}")
                make_dev(_venv(work / "venv"), env)
                noop.append(make_dev(work / "venv", env))
            if args.cold:
                caches = {"UV_CACHE_DIR": str(work / "uv-cache"), "PIP_NO_CACHE_DIR": "1"}
                for name, way in WAYS.items():
                    shutil.rmtree(work / "uv-cache", ignore_errors=True)
                    cold[name] = way(_venv(work / "venv"), {**env, **caches})
                    log(f"[cold] {name}: {fmt_s(cold[name])}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = median(times["make dev (uv, locked)"])
    rows = []
    for name, xs in times.items():
        rows.append(
            [
                name,
                fmt_s(median(xs)),
                f"{fmt_s(min(xs))}-{fmt_s(max(xs))}",
                fmt_ratio(median(xs) / base),
            ]
            + ([fmt_s(cold[name])] if cold else [])
        )
    rows.append(
        [
            "make dev again (nothing changed)",
            fmt_s(median(noop)),
            f"{fmt_s(min(noop))}-{fmt_s(max(noop))}",
            "",
        ]
    )
    headers = ["fresh dev environment", "median", "min-max", "x make dev"] + (
        ["cold caches"] if cold else []
    )
    print(f"\n{args.runs} runs each, alternating; warm package caches")
    print_table(headers, rows)


if __name__ == "__main__":
    main()
