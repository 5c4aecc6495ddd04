"""Notebooks: the code of a run started in Jupyter or IPython, and running it again headless.

A run started in a kernel records the notebook that produced it, as an ``.ipynb``
object:

- the notebook file, when the kernel can name it: the path given as
  ``keel.start_run(notebook="train.ipynb")``, ``JPY_SESSION_NAME`` (Jupyter Server
  sets it), ``__session__`` (ipykernel copies it into the namespace) or VS Code's
  ``__vsc_ipynb_file__``;
- otherwise the cells as executed: IPython's input history of this session, in
  execution order, as typed (magics included). Cells that raised since keel was
  imported are left out, as re-running them would stop the re-execution; markdown,
  outputs and cells deleted from the document are not in the history.

``keel reproduce`` writes the recorded notebook into a scratch folder and runs it
top to bottom with ``nbclient`` (the ``notebook`` extra) on a fresh kernel of this
Python.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.store.objects import ObjectStore

__all__ = [
    "NotebookFailed",
    "capture_notebook",
    "cell_sources",
    "execute_notebook",
    "history_notebook",
    "recapture",
    "shell",
    "watch",
]

HISTORY_NAME = "session.ipynb"  # the name a notebook rebuilt from history is written under
_FAILED: set[int] = set()  # execution counts of cells that raised, since keel was imported
_WATCHING: list[Any] = []


class NotebookFailed(Exception):
    """A cell raised while the recorded notebook was re-executed."""


def shell() -> Any | None:
    """The running IPython shell (Jupyter kernel or terminal IPython), or None. IPython is
    never imported here: a script that did not import it has no shell."""
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - a broken install
        return None
    return get_ipython()


def watch(sh: Any) -> None:
    """Note the cells that raise from now on (IPython's history does not say)."""
    if sh in _WATCHING:
        return

    def after(result: Any) -> None:
        if not result.success and result.execution_count is not None:
            _FAILED.add(int(result.execution_count))

    try:
        sh.events.register("post_run_cell", after)
    except Exception:  # noqa: BLE001 - an unusual shell: no record of failed cells
        return
    _WATCHING.append(sh)


def _named_file(sh: Any | None, given: str | os.PathLike[str] | None, here: str) -> str | None:
    """The notebook file: given, or named by the kernel's environment or namespace."""
    if given is not None:
        path = Path(here, given)
        if not path.is_file() or path.suffix != ".ipynb":
            raise InvalidInput(
                f"notebook {str(given)!r} is not an .ipynb file (looked in {here}): expected "
                "the path of the notebook that starts the run"
            )
        return str(path.resolve())
    candidates = [os.environ.get("JPY_SESSION_NAME")]
    if sh is not None:
        namespace = getattr(sh, "user_ns", {})
        candidates += [namespace.get("__session__"), namespace.get("__vsc_ipynb_file__")]
    for name in candidates:
        if isinstance(name, str) and name.endswith(".ipynb"):
            path = Path(here, name)
            if path.is_file():
                return str(path.resolve())
    return None


def history_notebook(sh: Any) -> tuple[bytes, int]:
    """This session's cells as executed, in order, as an nbformat 4 notebook (and how many)."""
    cells = []
    for _session, count, source in sh.history_manager.get_range(
        session=0, start=1, stop=None, raw=True, output=False
    ):
        if count in _FAILED or not str(source).strip():
            continue
        cells.append(
            {
                "cell_type": "code",
                "execution_count": count,
                "id": f"in-{count}",
                "metadata": {},
                "outputs": [],
                "source": str(source),
            }
        )
    doc = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "keel": {"source": "history", "skipped_failed_cells": sorted(_FAILED)},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(doc, indent=1, sort_keys=True).encode(), len(cells)


def capture_notebook(
    store: ObjectStore, here: str, given: str | os.PathLike[str] | None = None
) -> dict[str, Any] | None:
    """Store the notebook of a run started in a kernel (or the one ``given``); None when
    there is neither."""
    sh = shell()
    if sh is None and given is None:
        return None
    path = _named_file(sh, given, here)
    if sh is not None:
        watch(sh)
    if path is not None:
        data = Path(path).read_bytes()
        try:
            cells = sum(1 for c in json.loads(data).get("cells", []) if c["cell_type"] == "code")
        except (ValueError, KeyError, AttributeError, TypeError):
            raise InvalidInput(f"notebook {path} is not a notebook (.ipynb JSON)") from None
        folder, name, source = os.path.dirname(path), os.path.basename(path), "file"
    else:
        data, cells = history_notebook(sh)
        folder, name, source = here, HISTORY_NAME, "history"
    return {
        "source": source,
        "path": path,
        "folder": folder,
        "name": name,
        "oid": store.put(data),
        "cells": cells,
        "shell": type(sh).__name__ if sh is not None else None,
    }


def recapture(store: ObjectStore, recorded: dict[str, Any]) -> dict[str, Any] | None:
    """At the end of a run whose cells came from history: the history again, when cells ran
    since it started (a run started in one cell and ended in a later one). None: unchanged."""
    if recorded.get("source") != "history":
        return None
    sh = shell()
    if sh is None:
        return None
    data, cells = history_notebook(sh)
    if cells == recorded.get("cells"):
        return None
    return {**recorded, "oid": store.put(data), "cells": cells}


def cell_sources(data: bytes) -> list[tuple[int | None, str]]:
    """The code cells of a notebook: (execution count, source), in document order."""
    doc = json.loads(data)
    out = []
    for cell in doc.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        out.append((cell.get("execution_count"), "".join(source) if isinstance(source, list) else source))
    return out


def execute_notebook(
    path: Path, cwd: Path, env: dict[str, str], timeout: float | None, output: Any = None
) -> None:
    """Run the notebook at ``path`` top to bottom on a fresh kernel of this Python, in ``cwd``,
    writing the executed notebook back (outputs included) whatever happens.

    Raises :class:`NotebookFailed` naming the cell that raised, and InvalidInput when
    nbclient or ipykernel is not installed."""
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, CellTimeoutError
    except ImportError:
        raise InvalidInput(
            "re-executing a notebook needs nbclient and ipykernel: "
            "pip install 'keel-mlops[notebook]'"
        ) from None
    try:
        import ipykernel  # noqa: F401 - the kernel the notebook runs on
    except ImportError:
        raise InvalidInput(
            "re-executing a notebook needs ipykernel: pip install 'keel-mlops[notebook]'"
        ) from None
    import subprocess

    nb = nbformat.reads(path.read_text(), as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        nb,
        timeout=int(timeout) if timeout else 3600,  # per cell; nbclient's default is no limit
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    # the cells' output comes back into the notebook; the kernel process's own streams
    # carry only its log
    sink = subprocess.DEVNULL if output is None else output
    try:
        client.execute(env=env, cwd=str(cwd), stdout=sink, stderr=sink)
    except (CellExecutionError, CellTimeoutError) as exc:
        cell = next(
            (i for i, c in enumerate(nb.cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))),
            None,
        )
        where = f"cell {cell + 1}" if cell is not None else "a cell"
        first = str(exc).strip().splitlines()
        raise NotebookFailed(f"{where} raised: {first[-1] if first else type(exc).__name__}") from None
    except (RuntimeError, TimeoutError, OSError) as exc:  # the kernel did not start or died
        raise NotebookFailed(f"the kernel failed: {exc}") from None
    finally:
        path.write_text(nbformat.writes(nb))  # type: ignore[no-untyped-call]
