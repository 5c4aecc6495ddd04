#!/usr/bin/env python3
"""Data versioning benchmark: keel vs DVC 3.x, side by side, in one run.

    .venv/bin/python bench/versioning.py [--quick] [--runs N] [--keep]
                                         [--workdir DIR] [--no-keel] [--no-dvc]

Scenarios (fresh workspace/repo per run, warm page cache: data is written and
synced just before each timed command):

  A. one 1 GiB random file: first add; append 1 MiB and add again (time and
     bytes of new objects stored).
  B. 20,000 random ~10 KB files in 100 folders: first add; re-add unchanged;
     change one file and re-add; `dvc status`; restore (keel `data get` vs
     `rm -r data && dvc checkout`).
  C. start-up: `keel --help` vs `dvc --version` (median of 10).

Floors (cp, cp && sync, b3sum, cp -r, ...) are measured in the same run,
interleaved with the tools. Every figure is a median of N runs; ratios are
ratios of medians from this same run. Standard library only: the tools are
called through subprocess and timed with time.perf_counter.

DVC lives in its own virtualenv, bench/.venvs/dvc (created if missing).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_DIR,
    CommandFailed,
    drop_tree,
    du_bytes,
    ensure_apt_tool,
    ensure_venv,
    fmt_bytes,
    fmt_ratio,
    fmt_s,
    log,
    markdown_table,
    median,
    ratio,
    run,
    timed,
    timed_run,
)

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
DVC_REQUIREMENTS = ["dvc>=3,<4"]
DVC_SITE_CACHE = Path("/var/tmp/dvc")  # DVC keeps per-repo state here
APPEND_TARGET_BYTES = 8_000_000  # "at most 8 MB new" (decimal MB)
STARTUP_RUNS = 10


# --------------------------------------------------------------------------
# Result rows
# --------------------------------------------------------------------------


class Row:
    """One scenario: samples for keel, dvc and each floor."""

    def __init__(self, key: str, unit: str = "s", target: str | None = None, check=None):
        self.key = key
        self.unit = unit  # "s" or "B"
        self.keel: list[float] = []
        self.dvc: list[float] = []
        self.floors: dict[str, list[float]] = {}
        self.target = target
        self.check = check  # fn(keel_median, floor_medians) -> bool
        self.notes: list[str] = []

    def add(self, who: str, value: float) -> None:
        if who == "keel":
            self.keel.append(value)
        elif who == "dvc":
            self.dvc.append(value)
        else:
            self.floors.setdefault(who, []).append(value)
        log(f"    {self.key:<22} {who:<12} {self.fmt(value)}")

    def fmt(self, v: float | None) -> str:
        if v is None or v != v:
            return "n/a"
        return fmt_s(v) if self.unit == "s" else fmt_bytes(v)

    def med(self, samples: list[float]) -> float | None:
        return median(samples) if samples else None

    def summary(self) -> dict:
        k = self.med(self.keel)
        d = self.med(self.dvc)
        fl = {name: median(s) for name, s in self.floors.items() if s}
        verdict = None
        if self.check is not None and k is not None:
            try:
                verdict = "met" if self.check(k, fl) else "MISSED"
            except (KeyError, TypeError, ZeroDivisionError):
                verdict = None
        return {"keel": k, "dvc": d, "floors": fl, "verdict": verdict}

    def line(self) -> str:
        s = self.summary()
        parts = [
            f"{self.key:<20}",
            f"keel {self.fmt(s['keel']):>8}",
            f"dvc {self.fmt(s['dvc']):>8}",
        ]
        for name, v in s["floors"].items():
            parts.append(f"{name} {self.fmt(v)}")
        for name, v in s["floors"].items():
            parts.append(f"keel/{name} {fmt_ratio(ratio(s['keel'], v))}")
        parts.append(f"dvc/keel {fmt_ratio(ratio(s['dvc'], s['keel']))}")
        if self.target:
            parts.append(f"[target {self.target}: {s['verdict'] or 'n/a'}]")
        return "  ".join(parts)

    def md_cells(self) -> list[str]:
        s = self.summary()
        floors = "; ".join(f"{n} {self.fmt(v)}" for n, v in s["floors"].items())
        kf = "; ".join(f"{fmt_ratio(ratio(s['keel'], v))} {n}" for n, v in s["floors"].items())
        tgt = f"{self.target} ({s['verdict'] or 'n/a'})" if self.target else ""
        return [
            f"`{self.key}`",
            self.fmt(s["keel"]),
            self.fmt(s["dvc"]),
            floors or "",
            kf or "",
            fmt_ratio(ratio(s["dvc"], s["keel"])),
            tgt,
        ]


# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------


def parse_json_output(text: str):
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


class Keel:
    name = "keel"

    def __init__(self, exe: Path):
        self.exe = str(exe)
        self.env = dict(os.environ)

    def init(self, ws: Path) -> None:
        run([self.exe, "init"], cwd=ws, env=self.env)

    def store(self, ws: Path) -> Path:
        return ws / ".keel" / "objects"

    def add(self, ws: Path, target: str, name: str) -> tuple[float, dict]:
        dt, p = timed_run(
            [self.exe, "data", "add", target, "--name", name, "--json"], cwd=ws, env=self.env
        )
        obj = parse_json_output(p.stdout)
        info = obj if isinstance(obj, dict) else {"raw": p.stdout.strip()}
        return dt, info

    def restore(
        self, ws: Path, ref: str, data_rel: str, out: Path, copy: bool = False
    ) -> tuple[float, Path, str]:
        cmd = [self.exe, "data", "get", ref, "--out", str(out), "--json"]
        if copy:
            cmd.append("--copy")
        dt, p = timed_run(cmd, cwd=ws, env=self.env)
        obj = parse_json_output(p.stdout)
        if isinstance(obj, dict) and "methods" in obj:
            said = "methods " + json.dumps(obj["methods"])
        else:
            said = p.stdout.strip() or p.stderr.strip()
        return dt, out, said

    def startup_cmd(self) -> list[str]:
        return [self.exe, "--help"]


class Dvc:
    name = "dvc"

    def __init__(self, exe: Path):
        self.exe = str(exe)
        self.env = dict(os.environ, DVC_NO_ANALYTICS="1")

    def init(self, ws: Path) -> None:
        run(["git", "init", "-q"], cwd=ws, env=self.env)
        run([self.exe, "init", "-q"], cwd=ws, env=self.env)

    def store(self, ws: Path) -> Path:
        return ws / ".dvc" / "cache"

    def add(self, ws: Path, target: str, name: str) -> tuple[float, dict]:
        dt = timed([self.exe, "add", target], cwd=ws, env=self.env)
        dvcfile = ws / f"{target}.dvc"
        return dt, {"dvcfile": dvcfile.read_text() if dvcfile.exists() else ""}

    def restore(
        self, ws: Path, ref: str, data_rel: str, out: Path, copy: bool = False
    ) -> tuple[float, Path, str]:
        # untimed: "remove the data folder" -- moved aside, not deleted, so
        # the kernel's slow path for re-creating deleted inodes is not billed
        # to DVC (see Bench.b_warmup)
        (ws / data_rel).rename(ws.parent / f"{data_rel}.removed")
        os.sync()
        dt, p = timed_run([self.exe, "checkout"], cwd=ws, env=self.env)
        return dt, ws / data_rel, (p.stdout.strip() or p.stderr.strip())

    def status(self, ws: Path) -> float:
        return timed([self.exe, "status"], cwd=ws, env=self.env)

    def startup_cmd(self) -> list[str]:
        return [self.exe, "--version"]


def tree_stats(path: Path) -> tuple[int, int]:
    """(regular files, total bytes) under path, not following symlinks."""
    n = total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(root, f))
            n += 1
            total += st.st_size
    return n, total


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def make_big_file(path: Path, size: int) -> None:
    piece = 64 * MiB
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(piece, left)
            f.write(os.urandom(n))
            left -= n
    os.sync()


def make_small_files(root: Path, n_files: int, n_dirs: int = 100) -> tuple[int, int]:
    rng = random.Random(0)
    per_dir = n_files // n_dirs
    total = 0
    for d in range(n_dirs):
        dd = root / f"d{d:03d}"
        dd.mkdir(parents=True)
        for i in range(per_dir):
            size = rng.randint(9 * KiB, 11 * KiB)  # ~10 KB
            (dd / f"f{i:04d}.bin").write_bytes(os.urandom(size))
            total += size
    os.sync()
    return per_dir * n_dirs, total


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------


class Bench:
    def __init__(
        self,
        args,
        scratch: Path,
        keel: Keel | None,
        dvc: Dvc | None,
        b3sum_cmd: list[str],
        b3sum_label: str,
    ):
        self.args = args
        self.scratch = scratch
        self.tools = [t for t in (keel, dvc) if t is not None]
        self.dvc = dvc
        self.b3sum_cmd = b3sum_cmd
        self.b3sum_label = b3sum_label
        self.errors: list[str] = []
        self.rows: dict[str, Row] = {}
        self.n_files = self.n_bytes = 0

    def row(self, key: str, **kw) -> Row:
        if key not in self.rows:
            self.rows[key] = Row(key, **kw)
        return self.rows[key]

    def guarded(self, what: str, fn, *a) -> None:
        try:
            fn(*a)
        except (CommandFailed, OSError, ValueError, KeyError) as e:
            msg = f"{what}: {type(e).__name__}: {e}"
            self.errors.append(msg)
            log(f"  ERROR {msg}")
            if self.args.verbose:
                traceback.print_exc()

    # ---- A ----------------------------------------------------------------

    def scenario_a(self) -> None:
        size = self.args.big_size
        root = self.scratch / "A"
        src = root / "src" / "big.bin"
        src.parent.mkdir(parents=True)
        log(f"[A] writing {fmt_bytes(size)} random file ...")
        make_big_file(src, size)
        self.row("A.first-add")
        self.row("A.first-add-bytes", unit="B")
        self.row("A.append-add")
        self.row(
            "A.append-new-bytes",
            unit="B",
            target="keel <= 8 MB",
            check=lambda k, fl: k <= APPEND_TARGET_BYTES,
        )
        for i in range(self.args.runs):
            log(f"[A] run {i + 1}/{self.args.runs}")
            self.guarded("A floors", self.a_floors, src, root / f"floor-{i}")
            for tool in self.tools:
                self.guarded(
                    f"A {tool.name} run {i + 1}",
                    self.a_tool,
                    tool,
                    src,
                    root / f"{tool.name}-{i}",
                    i,
                )
        drop_tree(root)

    def a_floors(self, src: Path, d: Path) -> None:
        d.mkdir(parents=True)
        r = self.row("A.first-add")
        dest = d / "copy.bin"
        os.sync()
        r.add("cp", timed(["cp", str(src), str(dest)]))
        dest.unlink()
        os.sync()
        r.add("cp+sync", timed(f"cp {shlex.quote(str(src))} {shlex.quote(str(dest))} && sync"))
        dest.unlink()
        os.sync()
        r.add(self.b3sum_label, timed([*self.b3sum_cmd, str(src)]))
        self.row("A.first-add-bytes").add("file", src.stat().st_size)
        self.row("A.append-new-bytes").add("appended", MiB)
        drop_tree(d)

    def a_tool(self, tool, src: Path, d: Path, i: int) -> None:
        ws = d / "ws"
        ws.mkdir(parents=True)
        try:
            tool.init(ws)
            f = ws / "big.bin"
            run(["cp", str(src), str(f)])
            store = tool.store(ws)
            b0 = du_bytes(store)
            os.sync()
            dt, info = tool.add(ws, "big.bin", "big")
            self.row("A.first-add").add(tool.name, dt)
            self.expect(tool, "A.first-add", info, "created", None)
            b1 = du_bytes(store)
            self.row("A.first-add-bytes").add(tool.name, b1 - b0)
            # append 1 MiB to the (tracked) file, as a user would
            st = f.stat()
            if i == 0 and st.st_nlink > 1:
                self.row("A.append-add").notes.append(
                    f"{tool.name}: workspace file is hard-linked (nlink={st.st_nlink}) after add"
                )
            if not os.access(f, os.W_OK):
                if i == 0:
                    self.row("A.append-add").notes.append(
                        f"{tool.name}: workspace file read-only after add; "
                        "chmod u+w before appending"
                    )
                os.chmod(f, st.st_mode | 0o200)
            with open(f, "ab") as fh:
                fh.write(os.urandom(MiB))
            os.sync()
            dt, info2 = tool.add(ws, "big.bin", "big")
            self.row("A.append-add").add(tool.name, dt)
            self.expect(tool, "A.append-add", info2, "created", info)
            b2 = du_bytes(store)
            self.row("A.append-new-bytes").add(tool.name, b2 - b1)
        finally:
            drop_tree(d)

    # ---- B ----------------------------------------------------------------

    def scenario_b(self) -> None:
        root = self.scratch / "B"
        src = root / "src" / "data"
        log(f"[B] writing {self.args.n_files} small files ...")
        self.n_files, self.n_bytes = make_small_files(src, self.args.n_files)
        log(f"[B] {self.n_files} files, {fmt_bytes(self.n_bytes)}")
        self.row("B.first-add")
        self.row("B.readd-unchanged", target="keel < 0.3 s", check=lambda k, fl: k < 0.3)
        self.row("B.readd-one-changed", target="keel < 0.5 s", check=lambda k, fl: k < 0.5)
        self.row("B.status")
        self.row(
            "B.restore", target="keel <= 1.5x cp -r", check=lambda k, fl: k <= 1.5 * fl["cp -r"]
        )
        self.row("B.restore-copy")
        self.b_warmup(src, root)
        for i in range(self.args.runs):
            log(f"[B] run {i + 1}/{self.args.runs}")
            self.guarded("B floors", self.b_floors, src, root / f"floor-{i}")
            for tool in self.tools:
                self.guarded(
                    f"B {tool.name} run {i + 1}",
                    self.b_tool,
                    tool,
                    src,
                    root / f"{tool.name}-{i}",
                    i,
                )
        # Nothing in B is deleted before this point: see b_warmup.
        drop_tree(root)
        os.sync()

    def b_warmup(self, src: Path, root: Path) -> None:
        """Untimed `cp -r` copies until creating files runs at a steady pace.

        On ext4 without a journal (this machine), creating files right after
        many were deleted is slow (the kernel's inode allocator skips
        recently deleted inodes: `recently_deleted()` in `find_inode_bit()`),
        for whoever comes first -- 10x for `cp -r` here. So B deletes
        nothing until it ends, and first copies the data until a copy is not
        slower than the previous ones (kept on disk until the end).
        """
        times: list[float] = []
        for k in range(8):
            os.sync()
            t = timed(["cp", "-r", str(src), str(root / f"warmup-{k}")])
            times.append(t)
            if k >= 1 and t <= 1.25 * min(times[:-1]):
                break
        log("[B] warm-up cp -r: " + ", ".join(fmt_s(t) for t in times))

    def b_floors(self, src: Path, d: Path) -> None:
        d.mkdir(parents=True)
        dest = d / "copy"
        os.sync()
        t = timed(["cp", "-r", str(src), str(dest)])
        self.row("B.first-add").add("cp -r", t)
        self.row("B.restore").add("cp -r", t)
        self.row("B.restore-copy").add("cp -r", t)
        dest2 = d / "copy2"
        os.sync()
        self.row("B.first-add").add(
            "cp -r+sync", timed(f"cp -r {shlex.quote(str(src))} {shlex.quote(str(dest2))} && sync")
        )
        os.sync()
        # the least work that can tell "unchanged": stat every file
        t = timed(["find", str(src), "-type", "f", "-printf", "%s %T@ %i\n"])
        self.row("B.readd-unchanged").add("stat-walk", t)
        self.row("B.readd-one-changed").add("stat-walk", t)

    def b_tool(self, tool, src: Path, d: Path, i: int) -> None:
        ws = d / "ws"
        ws.mkdir(parents=True)
        try:
            tool.init(ws)
            run(["cp", "-r", str(src), str(ws / "data")])
            os.sync()
            dt, info1 = tool.add(ws, "data", "ds")
            self.row("B.first-add").add(tool.name, dt)
            self.expect(tool, "B.first-add", info1, "created", None)
            os.sync()
            dt, info2 = tool.add(ws, "data", "ds")
            self.row("B.readd-unchanged").add(tool.name, dt)
            self.expect(tool, "B.readd-unchanged", info2, "unchanged", info1)
            victim = ws / "data" / "d050" / "f0007.bin"
            victim.write_bytes(os.urandom(victim.stat().st_size))
            os.sync()
            dt, info3 = tool.add(ws, "data", "ds")
            self.row("B.readd-one-changed").add(tool.name, dt)
            self.expect(tool, "B.readd-one-changed", info3, "created", info2)
            if isinstance(tool, Dvc):
                os.sync()
                self.row("B.status").add(tool.name, tool.status(ws))
            ref = info1.get("ref") or "ds@v1"
            out = d / "restored"
            os.sync()
            dt, where, said = tool.restore(ws, ref, "data", out)
            self.row("B.restore").add(tool.name, dt)
            self.check_tree(tool, where)
            if isinstance(tool, Keel):
                out2 = d / "restored-copy"
                os.sync()
                dt2, where2, said2 = tool.restore(ws, ref, "data", out2, copy=True)
                self.row("B.restore-copy").add(tool.name, dt2)
                self.check_tree(tool, where2)
                if i == 0:
                    self.row("B.restore-copy").notes.append(
                        f"keel get {ref} --copy said: {said2[:300]}"
                    )
            else:  # DVC's default on ext4 is already a copy
                self.row("B.restore-copy").add(tool.name, dt)
            if i == 0:
                if isinstance(tool, Keel):
                    self.row("B.restore").notes.append(f"keel get {ref} said: {said[:300]}")
                    # v1 is the original data: check it byte for byte once
                    res = run(["diff", "-rq", str(src), str(where)], check=False)
                    if res.returncode != 0:
                        raise ValueError("keel restore differs from source:\n" + res.stdout[:2000])
                else:
                    ctype = run(
                        [tool.exe, "config", "cache.type"], cwd=ws, env=tool.env, check=False
                    ).stdout.strip()
                    self.row("B.restore").notes.append(
                        "dvc checkout restores the current version (v2; same "
                        "file count/size); the data folder is moved aside, "
                        "untimed, not deleted (see b_warmup); cache.type="
                        f"{ctype or 'default (reflink,copy -> copy on ext4)'}"
                    )
        finally:
            pass  # deleted with the whole scenario (see b_warmup)

    def check_tree(self, tool, where: Path) -> None:
        n, total = tree_stats(where)
        if (n, total) != (self.n_files, self.n_bytes):
            raise ValueError(
                f"{tool.name} restore gave {n} files / {total} bytes, "
                f"expected {self.n_files} / {self.n_bytes}"
            )

    # ---- C ----------------------------------------------------------------

    def scenario_c(self) -> None:
        log(f"[C] start-up, {STARTUP_RUNS} runs each")
        r = self.row("C.startup")
        for tool in self.tools:  # one untimed warm-up each
            run(tool.startup_cmd(), env=tool.env, check=False)
        for _ in range(STARTUP_RUNS):
            r.add("python -c pass", timed([sys.executable, "-c", "pass"]))
            for tool in self.tools:
                self.guarded(
                    f"C {tool.name}",
                    lambda t=tool: r.add(t.name, timed(t.startup_cmd(), env=t.env)),
                )
        labels = [
            f"{t.name} `{' '.join(Path(c).name if j == 0 else c for j, c in enumerate(t.startup_cmd()))}`"
            for t in self.tools
        ]
        r.notes.append("commands: " + ", ".join(labels))

    # ---- checks -----------------------------------------------------------

    def expect(self, tool, key: str, info: dict, want: str, prev: dict | None) -> None:
        """Sanity-check that the tool did what the scenario assumes."""
        if isinstance(tool, Keel):
            got = info.get("status")
            if got != want:
                msg = (
                    f"keel {key}: status {got!r}, expected {want!r} "
                    f"(output: {json.dumps(info)[:200]})"
                )
                if msg not in self.errors:
                    self.errors.append(msg)
                log(f"  WARNING {msg}")
        elif prev is not None:
            same = info.get("dvcfile") == prev.get("dvcfile")
            if same != (want == "unchanged"):
                msg = f"dvc {key}: .dvc file {'unchanged' if same else 'changed'}"
                self.errors.append(msg)
                log(f"  WARNING {msg}")


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def cleanup_dvc_site_cache(existed: bool, before: set[str]) -> None:
    if not DVC_SITE_CACHE.exists():
        return
    if not existed:
        drop_tree(DVC_SITE_CACHE)
        return
    repo = DVC_SITE_CACHE / "repo"
    if repo.is_dir():
        for name in os.listdir(repo):
            if name not in before:
                drop_tree(repo / name)


def version_of(cmd: list[str], env=None) -> str:
    try:
        p = run(cmd, env=env, check=False)
    except OSError:
        return "?"
    out = (p.stdout or p.stderr).strip().splitlines()
    return out[0] if out and p.returncode == 0 else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 MiB file, 2,000 files, 1 run")
    ap.add_argument(
        "--runs", type=int, default=None, help="runs per scenario (default 3; 1 with --quick)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir")
    ap.add_argument(
        "--workdir", type=Path, default=None, help="parent of the scratch dir (default /tmp)"
    )
    ap.add_argument(
        "--keel", type=Path, default=None, help="keel executable (default: next to sys.executable)"
    )
    ap.add_argument("--no-keel", action="store_true", help="skip keel")
    ap.add_argument("--no-dvc", action="store_true", help="skip DVC")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    args.runs = args.runs or (1 if args.quick else 3)
    args.big_size = 100 * MiB if args.quick else GiB
    args.n_files = 2_000 if args.quick else 20_000

    # ---- tools ----
    keel = dvc = None
    if not args.no_keel:
        exe = args.keel or Path(sys.executable).parent / "keel"
        if not exe.exists():
            exe = REPO_DIR / ".venv" / "bin" / "keel"
        p = (
            subprocess.run([str(exe), "--help"], capture_output=True, text=True)
            if exe.exists()
            else None
        )
        if p is None or p.returncode != 0:
            log(
                f"keel not usable at {exe} (`keel --help` failed); "
                "use --no-keel to run DVC and floors only"
            )
            return 2
        keel = Keel(exe)
    if not args.no_dvc:
        dvc = Dvc(ensure_venv("dvc", DVC_REQUIREMENTS).parent / "dvc")
    b3 = ensure_apt_tool("b3sum", "b3sum")
    if b3:
        b3sum_cmd, b3sum_label = [b3], "b3sum"
    else:
        b3sum_cmd = [
            sys.executable,
            "-c",
            "import sys, blake3; print(blake3.blake3(max_threads="
            "blake3.blake3.AUTO).update_mmap(sys.argv[1]).hexdigest())",
        ]
        b3sum_label = "py-blake3"
        log("b3sum not available: using python blake3 from keel's venv")

    parent = args.workdir or Path("/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="keel-bench-versioning-", dir=parent))
    site_existed = DVC_SITE_CACHE.exists()
    site_before = (
        set(os.listdir(DVC_SITE_CACHE / "repo")) if (DVC_SITE_CACHE / "repo").is_dir() else set()
    )
    log(f"scratch dir: {scratch}")

    bench = Bench(args, scratch, keel, dvc, b3sum_cmd, b3sum_label)
    try:
        bench.scenario_a()
        bench.scenario_b()
        bench.scenario_c()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if args.keep:
            log(f"kept scratch dir {scratch}")
        else:
            drop_tree(scratch)
        cleanup_dvc_site_cache(site_existed, site_before)

    # ---- report ----
    fstype = (
        run(["findmnt", "-no", "FSTYPE", "-T", str(parent)], check=False).stdout.strip()
        or run(["stat", "-f", "-c", "%T", str(parent)], check=False).stdout.strip()
    )
    keel_v = version_of([keel.exe, "--version"]) if keel else "skipped"
    keel_v = keel_v.replace("keel, version ", "")
    dvc_v = version_of([dvc.exe, "--version"], dvc.env) if dvc else "skipped"
    b3_v = version_of([*b3sum_cmd[:1], "--version"]) if b3 else "python blake3"
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    mode = "quick" if args.quick else "full"
    header = (
        f"versioning benchmark ({mode}), {when}; {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, fs {fstype}; "
        f"keel {keel_v}; dvc {dvc_v}; {b3_v}"
    )
    data = (
        f"A: {fmt_bytes(args.big_size)} random file; "
        f"B: {bench.n_files} files / {fmt_bytes(bench.n_bytes)} in 100 "
        f"folders; median of {args.runs} run(s) (C: {STARTUP_RUNS})"
    )
    caveat = (
        "Ratios are of medians from this same run (floors interleaved "
        "with the tools); the machine is noisy, so compare ratios, "
        "not absolute times across runs."
    )
    if args.quick:
        caveat += " Targets are meant for the full-size run."

    print()
    print(header)
    print(data)
    print(caveat)
    print()
    for r in bench.rows.values():
        print(r.line())
    notes = [f"{r.key}: {n}" for r in bench.rows.values() for n in r.notes]
    if notes:
        print("\nnotes:")
        for n in notes:
            print("  " + n)
    if bench.errors:
        print("\nerrors/warnings:")
        for e in bench.errors:
            print("  " + e.replace("\n", "\n    "))

    print("\n--- Markdown (paste into bench/RESULTS.md) ---\n")
    print(f"### Data versioning: keel vs DVC ({mode}, {when})\n")
    print(f"{header}. {data}. {caveat}\n")
    headers = ["scenario", "keel", "DVC", "floors", "keel/floor", "DVC/keel", "target"]
    print(markdown_table(headers, [r.md_cells() for r in bench.rows.values()]))
    if notes:
        print()
        for n in notes:
            print(f"- {n}")
    if bench.errors:
        print()
        for e in bench.errors:
            print(f"- error: {e.splitlines()[0]}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
