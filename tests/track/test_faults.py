"""Tracking under faults: kill -9, SIGTERM, SIGINT, uncaught exceptions, and many writers.

Issue 3, "Bad input and faults": a SIGKILLed run shows as ``crashed`` within
three heartbeat intervals and keeps everything flushed before the kill (at
most the last flush interval is lost); signals and exceptions end runs as
``killed`` / ``failed`` with everything flushed; 8 processes on SQLite (16 on
PostgreSQL) logging at once lose no point and show the user no error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import keel
from keel.workspace import Workspace
from tests.conftest import run_keel
from tests.track.helpers import wait_for

FLUSH = 0.2
BEAT = 0.3

# A child that logs forever. After each point it stores how many it has logged in
# a progress file (so the test knows the count at the instant of a signal), and
# every 1,000 points it flushes and says so on stdout.
LOGGER = """\
import os, sys, time
import keel

ws = keel.connect(sys.argv[1])
progress = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o644)
run = keel.start_run(name=sys.argv[3], workspace=ws, capture_code=False)
print("id", run.id, flush=True)
i = 0
while True:
    run.log_metric("x", i * 0.5, step=i)
    i += 1
    os.pwrite(progress, i.to_bytes(8, "little"), 0)
    if i % 1000 == 0:
        run.flush()
        print("flushed", i, flush=True)
    time.sleep(0.0002)
"""


def child_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "KEEL_FLUSH_SECONDS": str(FLUSH),
        "KEEL_HEARTBEAT_SECONDS": str(BEAT),
        **extra,
    }


class Logger:
    """A logging child process and what it has told us."""

    def __init__(self, tmp: Path, ws: Workspace, name: str) -> None:
        script = tmp / "logger.py"
        script.write_text(LOGGER)
        self.progress = tmp / f"{name}.progress"
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(ws.root), str(self.progress), name],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        assert first[:1] == ["id"], [*first, self.proc.stderr.read() if self.proc.stderr else ""]
        self.id = first[1]
        self.flushed = 0

    def wait_flushed(self, at_least: int) -> None:
        assert self.proc.stdout is not None
        while self.flushed < at_least:
            line = self.proc.stdout.readline()
            assert line, f"the child died: {self.proc.stderr.read() if self.proc.stderr else ''}"
            if line.startswith("flushed"):
                self.flushed = int(line.split()[1])

    def logged(self) -> int:
        return int.from_bytes(self.progress.read_bytes()[:8], "little")

    def signal(self, sig: int) -> float:
        moment = time.time()
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=30)
        for line in out.splitlines():
            if line.startswith("flushed"):
                self.flushed = max(self.flushed, int(line.split()[1]))
        self.stderr = err
        return moment


def status_via_cli(root: Path, run_id: str) -> dict[str, Any]:
    proc = run_keel("runs", "list", "--filter", f"id = {run_id}", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    (found,) = json.loads(proc.stdout)["runs"]
    return found  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.serial
def test_sigkill_shows_crashed_and_keeps_what_was_flushed(ws: Workspace, tmp_path: Path) -> None:
    child = Logger(tmp_path, ws, "victim")
    child.wait_flushed(3000)
    # alive, logging, beating for longer than three intervals: still running
    time.sleep(3 * BEAT + 0.2)
    child.wait_flushed(child.flushed + 1000)
    assert keel.get_run(child.id, workspace=ws).status == "running"
    killed_at = child.signal(signal.SIGKILL)
    logged = child.logged()

    def crashed() -> dict[str, Any] | None:
        found = status_via_cli(ws.root, child.id)
        return found if found["status"] == "crashed" else None

    found = wait_for(crashed, timeout=3 * BEAT + 6.0, interval=0.1)
    assert found["ended_at"] <= killed_at + 0.05  # the time of its last heartbeat

    rec = keel.get_run(child.id, workspace=ws)
    assert rec.status == "crashed"
    hist = rec.history("x")
    stored = len(hist)
    # everything flushed before the kill is there, in order, exactly
    assert stored >= child.flushed >= 4000
    assert hist.steps == list(range(stored))
    assert hist.values == [i * 0.5 for i in range(stored)]
    assert stored <= logged
    # and what is missing is at most about one flush interval of logging
    assert killed_at - hist.timestamps[-1] <= FLUSH + 1.0, (logged, stored)
    assert rec.metrics["x"]["count"] == stored


@pytest.mark.slow
@pytest.mark.serial
def test_idle_run_keeps_beating(ws: Workspace, tmp_path: Path) -> None:
    script = tmp_path / "idle.py"
    script.write_text(
        "import sys, time, keel\n"
        "run = keel.start_run(workspace=keel.connect(sys.argv[1]), capture_code=False)\n"
        "print(run.id, flush=True)\n"
        "sys.stdin.readline()\n"  # wait, logging nothing, until told to stop
        "run.end()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script), str(ws.root)],
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    deadline = time.monotonic() + 6 * BEAT
    while time.monotonic() < deadline:
        assert keel.get_run(run_id, workspace=ws).status == "running"
        time.sleep(BEAT / 2)
    proc.communicate("stop\n", timeout=30)
    assert proc.returncode == 0
    assert keel.get_run(run_id, workspace=ws).status == "finished"


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, "killed"), (signal.SIGINT, "killed")])
def test_signal_ends_killed_with_everything_flushed(
    ws: Workspace, tmp_path: Path, sig: int, status: str
) -> None:
    child = Logger(tmp_path, ws, f"sig{sig}")
    child.wait_flushed(2000)
    child.signal(sig)
    logged = child.logged()
    assert "database is locked" not in child.stderr
    rec = keel.get_run(child.id, workspace=ws)
    assert rec.status == status
    assert rec.ended_at is not None
    hist = rec.history("x")
    # every point logged is there (one more if the signal came between log and count)
    assert len(hist) in (logged, logged + 1), (len(hist), logged)
    assert hist.steps == list(range(len(hist)))
    assert hist.values == [i * 0.5 for i in range(len(hist))]


# The signal is sent from inside the metadata write of an explicit run.flush(), so it
# arrives, deterministically, while the main thread is flushing: as it may in real life.
SIGNAL_IN_FLUSH = """\
import os, signal, sys, threading, time
import keel

ws = keel.connect(sys.argv[1])
run = keel.start_run(name="in-flush", workspace=ws, capture_code=False)
print(run.id, flush=True)
write, sent = ws.db.write, []

def write_then_signal(fn, **options):
    if threading.current_thread() is threading.main_thread() and not sent:
        sent.append(1)
        os.kill(os.getpid(), getattr(signal, sys.argv[2]))
        time.sleep(0.2)
    return write(fn, **options)

ws.db.write = write_then_signal
for i in range(100):
    run.log_metric("x", float(i))
run.flush()
time.sleep(30)
"""


@pytest.mark.parametrize(
    "sig",
    [
        "SIGTERM",
        "SIGINT",
    ],
)
def test_signal_during_an_explicit_flush_loses_nothing(
    ws: Workspace, tmp_path: Path, sig: str
) -> None:
    script = tmp_path / "in_flush.py"
    script.write_text(SIGNAL_IN_FLUSH)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(ws.root), sig],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{sig} during run.flush(): the process hung")
    finally:
        proc.stdout.close()
    rec = keel.get_run(run_id, workspace=ws)
    assert rec.status == "killed"
    assert rec.history("x").values == [float(i) for i in range(100)]


def run_script(tmp: Path, ws: Workspace, body: str) -> subprocess.CompletedProcess[str]:
    script = tmp / "script.py"
    script.write_text(
        "import sys, keel\nws = keel.connect(sys.argv[1])\n"
        "run = keel.start_run(name='script', workspace=ws, capture_code=False)\n"
        "print(run.id, flush=True)\n" + body
    )
    return subprocess.run(
        [sys.executable, str(script), str(ws.root)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_uncaught_exception_without_with_marks_failed(ws: Workspace, tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        ws,
        "for i in range(5000):\n    run.log_metric('x', float(i))\n"
        "def deep():\n    raise ValueError('exploded at step 5000')\ndeep()\n",
    )
    assert proc.returncode == 1
    assert "ValueError: exploded at step 5000" in proc.stderr  # the user still sees it
    rec = keel.get_run(proc.stdout.split()[0], workspace=ws)
    assert rec.status == "failed"
    assert rec.error is not None
    assert "Traceback" in rec.error and "in deep" in rec.error
    assert "ValueError: exploded at step 5000" in rec.error
    assert len(rec.history("x")) == 5000


def test_script_that_never_ends_its_run_is_finished_at_exit(ws: Workspace, tmp_path: Path) -> None:
    proc = run_script(tmp_path, ws, "for i in range(5000):\n    run.log_metric('x', float(i))\n")
    assert proc.returncode == 0, proc.stderr
    rec = keel.get_run(proc.stdout.split()[0], workspace=ws)
    assert rec.status == "finished" and rec.error is None
    assert rec.history("x").values == [float(i) for i in range(5000)]


def test_uncaught_keyboard_interrupt_marks_killed(ws: Workspace, tmp_path: Path) -> None:
    proc = run_script(tmp_path, ws, "run.log_metric('x', 1.0)\nraise KeyboardInterrupt\n")
    assert proc.returncode != 0
    rec = keel.get_run(proc.stdout.split()[0], workspace=ws)
    assert rec.status == "killed" and rec.metrics["x"]["last"] == 1.0


# -- many writers at once ---------------------------------------------------------------

WRITER = """\
import os, sys, time
import keel

root, gate, n, index = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
while not os.path.exists(gate):
    time.sleep(0.005)
ws = keel.connect(root)
with keel.start_run(
    name=f"writer-{index}", params={"index": index}, tags={"kind": "stress"},
    workspace=ws, capture_code=False,
) as run:
    for i in range(n):
        run.log_metric("a", float(i * 1000 + index))
        if i % 4 == 0:
            run.log_metric("b", float(i), step=i)
        if i % 500 == 499:
            run.flush()
    run.set_tag("done", "yes")
print(run.id)
"""


def many_writers(tmp: Path, root: Path, processes: int, points: int) -> dict[int, str]:
    script = tmp / "writer.py"
    script.write_text(WRITER)
    gate = tmp / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(root), str(gate), str(points), str(i)],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    time.sleep(0.5)
    gate.write_text("go")  # they all start logging at once
    ids = {}
    for i, proc in enumerate(procs):
        out, err = proc.communicate(timeout=300)
        assert "database is locked" not in err.lower(), err
        assert "Traceback" not in err, err
        assert proc.returncode == 0, err
        assert err.strip() == "", err
        ids[i] = out.strip()
    return ids


def check_every_point(ws: Workspace, ids: dict[int, str], points: int) -> None:
    for index, run_id in ids.items():
        rec = keel.get_run(run_id, workspace=ws)
        assert rec.status == "finished"
        assert rec.params == {"index": index} and rec.tags == {"kind": "stress", "done": "yes"}
        a = rec.history("a")
        assert len(a) == points
        assert a.steps == list(range(points))
        assert a.values == [float(i * 1000 + index) for i in range(points)]
        b = rec.history("b")
        assert b.steps == list(range(0, points, 4))
        assert rec.metrics["a"]["count"] == points
        assert rec.metrics["a"]["last"] == float((points - 1) * 1000 + index)
    page = keel.search_runs("tags.kind = stress", limit=100, workspace=ws)
    assert {r.id for r in page.runs} == set(ids.values())


@pytest.mark.slow
def test_eight_processes_on_sqlite_lose_nothing(ws: Workspace, tmp_path: Path) -> None:
    ids = many_writers(tmp_path, ws.root, 8, 10_000)
    check_every_point(ws, ids, 10_000)


@pytest.mark.slow
@pytest.mark.postgres
def test_sixteen_processes_on_postgres_lose_nothing(pg_ws: Workspace, tmp_path: Path) -> None:
    ids = many_writers(tmp_path, pg_ws.root, 16, 10_000)
    check_every_point(pg_ws, ids, 10_000)
