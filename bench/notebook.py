#!/usr/bin/env python3
"""Notebooks and code outside git (issue 26): what recording costs, and re-running a notebook.

1. **Re-executing a notebook headless.** A notebook that makes data, trains a
   scikit-learn model and logs it in a keel run is run once as a user would (nbclient,
   the cells recorded from the input history). Then, in turns (keel, papermill, keel,
   papermill …): ``keel reproduce RUN`` (writes the recorded notebook into a scratch
   folder, re-executes it on a fresh kernel, records the reproduction, compares) and
   ``papermill train.ipynb out.ipynb`` (the tool users run notebooks headless with; its own
   virtualenv, on the same kernel: keel's Python, so the cells are the same). Wall time
   of each whole command, the ratio pair by pair.
2. **What recording the code costs a run.** ``start_run`` then ``end``, with and without
   code capture, N times in one process: in a kernel (the notebook from history) and in a
   script outside git that imported three local modules (the script and the modules).

    .venv/bin/python bench/notebook.py [--runs 5] [--starts 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_DIR, bench_lock, drop_tree, ensure_venv, log, markdown_table

KEEL_PY = REPO_DIR / ".venv" / "bin" / "python"
KEEL = REPO_DIR / ".venv" / "bin" / "keel"
PAPERMILL = ["papermill>=2.6"]

CELLS = [
    "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\nimport keel",
    "rng = np.random.default_rng(0)\nX = rng.normal(size=(5000, 20))\n"
    "y = (X[:, 0] - X[:, 1] + rng.normal(scale=0.5, size=5000) > 0).astype(int)",
    'with keel.start_run(name="nb-bench") as run:\n'
    "    model = LogisticRegression(C=0.5, max_iter=500).fit(X, y)\n"
    '    run.log_metric("accuracy", float(model.score(X, y)))\n'
    '    run.log_model(model, "nb-bench", input_example=X[:3])\n'
    "print(run.id)",
]

TIMING = """
import json, time, keel
def timed(capture, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        run = keel.start_run(name="t", capture_code=capture, capture_environment=False)
        run.end()
        out.append(time.perf_counter() - t)
    return sorted(out)[len(out) // 2]
timed(True, 3)
print(json.dumps({"with": timed(True, N), "without": timed(False, N)}))
"""


def notebook(path: Path, cells: list[str]) -> None:
    doc = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {},
             "outputs": [], "source": c}
            for i, c in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"display_name": "keel", "language": "python", "name": "keelbench"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    path.write_text(json.dumps(doc))


def kernelspec(root: Path) -> dict[str, str]:
    """A kernel of keel's Python that both tools find (JUPYTER_PATH)."""
    spec = root / "jupyter" / "kernels" / "keelbench"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(KEEL_PY), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "keel",
                "language": "python",
            }
        )
    )
    return {"JUPYTER_PATH": str(root / "jupyter")}


def execute_with_nbclient(path: Path, env: dict[str, str]) -> list[str]:
    """Run the notebook as a user would (in keel's Python); the lines its cells printed."""
    code = (
        "import sys, nbformat, nbclient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "nbclient.NotebookClient(nb, timeout=600, resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
        "print('\\n'.join(o.get('text', '') for c in nb.cells for o in c.get('outputs', [])))\n"
    )
    done = subprocess.run(
        [str(KEEL_PY), "-c", code, str(path), str(path.parent)],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return [line for line in done.stdout.splitlines() if line.strip()]


def wall(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({done.returncode}): {done.stderr[-2000:]}")
    return took


def capture_costs(scratch: Path, env: dict[str, str], starts: int) -> dict[str, dict[str, float]]:
    """start_run + end with and without code capture: in a kernel, and outside git."""
    costs = {}
    nb = scratch / "timing.ipynb"
    notebook(nb, [TIMING.replace("N)", f"{starts})")])
    lines = execute_with_nbclient(nb, env)
    costs["kernel"] = json.loads(lines[-1])
    folder = scratch / "outside"
    (folder / "lib").mkdir(parents=True)
    for name in ("prep", "features"):
        (folder / f"{name}.py").write_text(f"NAME = {name!r}\n" * 50)
    (folder / "lib" / "__init__.py").write_text("")
    (folder / "lib" / "models.py").write_text("def make():\n    return None\n" * 50)
    script = folder / "train.py"
    script.write_text(
        "import prep, features\nfrom lib import models\n" + TIMING.replace("N)", f"{starts})")
    )
    done = subprocess.run(
        [str(KEEL_PY), str(script)], cwd=folder, env=env, capture_output=True, text=True,
        check=True, timeout=600,
    )  # fmt: skip
    costs["outside git"] = json.loads(done.stdout.strip().splitlines()[-1])
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="pairs of re-executions")
    parser.add_argument("--starts", type=int, default=30, help="start_run + end per figure")
    args = parser.parse_args()
    papermill_py = ensure_venv("papermill", PAPERMILL)
    papermill = papermill_py.parent / "papermill"
    version = subprocess.run(
        [str(papermill), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    scratch = Path(tempfile.mkdtemp(prefix="keel-bench-notebook-"))
    try:
        env = {**os.environ, "KEEL_HOME": str(scratch / "ws"), **kernelspec(scratch)}
        env.pop("JPY_SESSION_NAME", None)
        subprocess.run([str(KEEL), "init", str(scratch / "ws")], check=True, capture_output=True)
        work = scratch / "nb"
        work.mkdir()
        nb = work / "train.ipynb"
        notebook(nb, CELLS)
        run_id = execute_with_nbclient(nb, env)[-1].strip()
        log(f"[notebook] original run {run_id[:8]}")
        keel_times, papermill_times, ratios = [], [], []
        with bench_lock():
            for i in range(args.runs + 1):  # the first pair warms the caches
                k = wall([str(KEEL), "reproduce", run_id], work, env)
                p = wall([str(papermill), "-k", "keelbench", str(nb), str(work / "out.ipynb")], work, env)
                log(f"[pair {i}] keel reproduce {k:.2f} s, papermill {p:.2f} s")
                if i:
                    keel_times.append(k)
                    papermill_times.append(p)
                    ratios.append(k / p)
            costs = capture_costs(scratch, env, args.starts)
        result = subprocess.run(
            [str(KEEL), "reproduce", run_id, "--json"], cwd=work, env=env,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        verdict = json.loads(result.stdout)["verdict"]
    finally:
        drop_tree(scratch)
    med = statistics.median
    stamp = time.strftime("%Y-%m-%d %H:%M")
    load = os.getloadavg()[0]
    print(f"### notebook benchmark, {stamp}; 2 cores, load {load:.1f}; papermill {version}; "
          f"median of {args.runs} pairs (A B A B, after one warm-up pair)\n")  # fmt: skip
    rows = [
        [
            "re-execute the recorded notebook headless (whole command)",
            f"`keel reproduce`: {med(keel_times):.2f} s (re-executed, recorded, compared: {verdict})",
            f"`papermill`: {med(papermill_times):.2f} s (re-executed)",
            f"{med(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})",
        ]
    ]
    for where, figures in costs.items():
        extra = (figures["with"] - figures["without"]) * 1000
        rows.append(
            [
                f"start_run + end, {where}",
                f"{figures['with'] * 1000:.2f} ms with the code recorded",
                f"{figures['without'] * 1000:.2f} ms without (capture_code=False)",
                f"+{extra:.2f} ms",
            ]
        )
    print(markdown_table(["measure", "keel", "anchor / baseline", "ratio or cost"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
