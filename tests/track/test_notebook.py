"""Runs started in a notebook: the notebook is recorded (the file when the kernel names it,
else the cells as executed), and ``keel reproduce`` re-executes it headless with nbclient
on a real ipykernel kernel (no browser, no Jupyter server)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import keel
from tests.conftest import run_keel
from tests.track.helpers import one_error_line

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.slow

IMPORTS = "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\nimport keel"
DATA = "rng = np.random.default_rng(0)\nX = rng.normal(size=(300, 3))\ny = (X[:, 0] - X[:, 1] > 0).astype(int)"
TRAIN = """\
with keel.start_run(name="gbm"{extra}) as run:
    model = LogisticRegression(C=0.5).fit(X, y)
    run.log_metric("accuracy", float(model.score(X, y)))
    run.log_model(model, "nbmodel", input_example=X[:3])
print(run.id)"""


def execute(folder: Path, cells: list[str], env: dict[str, str], name: str = "train.ipynb") -> Any:
    """Write a notebook of ``cells`` (markdown first) and run it as Jupyter would, errors
    allowed; returns the executed notebook."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# training")] + [
        nbformat.v4.new_code_cell(c) for c in cells
    ]
    nbformat.write(nb, folder / name)
    client = nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute(env={**os.environ, **env}, cwd=str(folder))
    return nb


def printed(nb: Any) -> str:
    """The last line the notebook's last cell printed (the run id)."""
    out = [o for o in nb.cells[-1].outputs if o.get("name") == "stdout"]
    assert out, nb.cells[-1].outputs
    return str(out[-1]["text"]).strip().splitlines()[-1]


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    keel.init(tmp_path / "ws").close()
    (tmp_path / "nb").mkdir()
    return tmp_path / "nb", {"KEEL_HOME": str(tmp_path / "ws"), "KEEL_FLUSH_SECONDS": "0.2"}


def reproduce(folder: Path, env: dict[str, str], run_id: str) -> dict[str, Any]:
    proc = run_keel("reproduce", run_id, "--json", cwd=folder, env=env, timeout=300)
    result: dict[str, Any] = json.loads(proc.stdout)
    assert proc.returncode == (0 if result["ok"] else 1), proc.stderr
    return result


def test_cells_as_executed_are_recorded_and_reproduce_identical(
    folder: tuple[Path, dict[str, str]],
) -> None:
    where, env = folder
    nb = execute(where, [IMPORTS, DATA, "1 / 0  # a mistake, fixed below", TRAIN.format(extra="")], env)
    run_id = printed(nb)
    doc = json.loads(run_keel("runs", "show", run_id, "--json", cwd=where, env=env).stdout)
    recorded = doc["code"]["notebook"]
    # no server named the notebook (nbclient sets no JPY_SESSION_NAME): the input history
    assert recorded["source"] == "history" and recorded["cells"] == 3
    assert recorded["shell"] == "ZMQInteractiveShell"
    text = run_keel("runs", "show", run_id, "--code", cwd=where, env=env).stdout
    assert "# In[1]:\nimport numpy as np" in text and "# In[4]:\nwith keel.start_run" in text
    assert "1 / 0" not in text  # the cell that raised is left out
    assert "its cells as executed, 3 code cells" in run_keel(
        "runs", "show", run_id, cwd=where, env=env
    ).stdout

    result = reproduce(where, env, run_id)
    assert result["verdict"] == "identical", (result["notes"], result["differences"])
    assert "notebook re-executed headless (history, 3 cells)" in result["notes"]
    again = json.loads(
        run_keel("runs", "show", result["reproduction"], "--json", cwd=where, env=env).stdout
    )
    assert again["reproduction_of"] == run_id
    assert again["metrics"]["accuracy"] == doc["metrics"]["accuracy"]
    assert [m["registered"] for m in again["models"]] == [False]  # the registry stays clean
    listed = json.loads(run_keel("models", "show", "nbmodel", "--json", cwd=where, env=env).stdout)
    assert len(listed["versions"]) == 1


def test_the_named_notebook_file_is_recorded_and_reproduced(
    folder: tuple[Path, dict[str, str]],
) -> None:
    where, env = folder
    # Jupyter Server names the notebook in JPY_SESSION_NAME (relative to the kernel's folder)
    nb = execute(where, [IMPORTS, DATA, TRAIN.format(extra="")], {**env, "JPY_SESSION_NAME": "train.ipynb"})
    run_id = printed(nb)
    doc = json.loads(run_keel("runs", "show", run_id, "--json", cwd=where, env=env).stdout)
    recorded = doc["code"]["notebook"]
    assert recorded["source"] == "file" and recorded["path"] == str(where / "train.ipynb")
    assert recorded["cells"] == 3
    (where / "train.ipynb").unlink()  # gone from disk: the record is what re-runs
    result = reproduce(where, env, run_id)
    assert result["verdict"] == "identical", (result["notes"], result["differences"])

    # the path given to start_run; a path that is no notebook is refused in the cell
    nb = execute(
        where,
        [IMPORTS, DATA, TRAIN.format(extra=', notebook="named.ipynb"')],
        env,
        name="named.ipynb",
    )
    doc = json.loads(run_keel("runs", "show", printed(nb), "--json", cwd=where, env=env).stdout)
    assert doc["code"]["notebook"]["path"] == str(where / "named.ipynb")
    nb = execute(where, [IMPORTS, 'keel.start_run(notebook="missing.ipynb")'], env, name="x.ipynb")
    [error] = [o for o in nb.cells[-1].outputs if o["output_type"] == "error"]
    assert error["ename"] == "InvalidInput" and "missing.ipynb" in error["evalue"]


def test_a_run_ended_in_a_later_cell_records_every_cell_until_its_end(
    folder: tuple[Path, dict[str, str]],
) -> None:
    where, env = folder
    cells = [
        IMPORTS,
        DATA,
        'run = keel.start_run(name="steps")',
        "for step in range(3):\n    run.log_metric('loss', 1.0 / (step + 1))",
        "run.end()\nprint(run.id)",
    ]
    run_id = printed(execute(where, cells, env))
    doc = json.loads(run_keel("runs", "show", run_id, "--json", cwd=where, env=env).stdout)
    assert doc["code"]["notebook"]["cells"] == 5
    result = reproduce(where, env, run_id)
    assert result["verdict"] == "identical", (result["notes"], result["differences"])


def test_a_cell_that_now_fails_is_named(folder: tuple[Path, dict[str, str]]) -> None:
    where, env = folder
    (where / "rows.txt").write_text("3\n")  # read by the notebook, not recorded with it
    cells = [
        "import keel",
        'with keel.start_run(name="reads") as run:\n'
        '    run.log_metric("rows", float(open("rows.txt").read()))\nprint(run.id)',
    ]
    run_id = printed(execute(where, cells, env))
    result = reproduce(where, env, run_id)
    assert result["verdict"] == "failed"
    assert "cell 2 raised" in result["differences"][0]
    assert "FileNotFoundError" in result["differences"][0]


def test_without_nbclient_reproduce_says_how_to_install_it(
    folder: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    where, env = folder
    run_id = printed(execute(where, [IMPORTS, DATA, TRAIN.format(extra="")], env))
    hide = tmp_path / "hide"
    (hide / "nbclient").mkdir(parents=True)
    (hide / "nbclient" / "__init__.py").write_text("raise ImportError('hidden for the test')\n")
    proc = run_keel(
        "reproduce", run_id, cwd=where, env={**env, "PYTHONPATH": str(hide)}, timeout=120
    )
    assert "pip install 'keel-mlops[notebook]'" in one_error_line(proc, 2)
