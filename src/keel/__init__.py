"""keel: a model that works in a notebook is a hypothesis; keel turns it into a system.

The face of the library. Nothing heavy is imported here: each capability
loads on first use, so ``import keel`` and ``keel --help`` stay fast.

>>> import keel
>>> keel.__version__
'0.1.0'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from keel import data, errors, features, monitor
    from keel.data import DatasetVersion
    from keel.errors import KeelError
    from keel.evaluation import evaluate, gate
    from keel.evaluation import outcomes as outcomes
    from keel.registry import LoadedModel, PythonModel, load_model
    from keel.track import Run, active_run, start_run
    from keel.track.records import RunRecord
    from keel.workspace import Workspace, connect, init

__all__ = [
    "DatasetVersion",
    "KeelError",
    "LoadedModel",
    "PythonModel",
    "Run",
    "RunRecord",
    "Workspace",
    "__version__",
    "active_run",
    "autolog",
    "connect",
    "data",
    "end_run",
    "errors",
    "evaluate",
    "features",
    "gate",
    "get_run",
    "init",
    "load_model",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "monitor",
    "search_runs",
    "set_tag",
    "set_tags",
    "start_run",
]

_LAZY = {
    "data": ("keel.data", None),
    "errors": ("keel.errors", None),
    "features": ("keel.features", None),
    "DatasetVersion": ("keel.data", "DatasetVersion"),
    "KeelError": ("keel.errors", "KeelError"),
    "Workspace": ("keel.workspace", "Workspace"),
    "connect": ("keel.workspace", "connect"),
    "init": ("keel.workspace", "init"),
    "Run": ("keel.track", "Run"),
    "RunRecord": ("keel.track.records", "RunRecord"),
    "active_run": ("keel.track", "active_run"),
    "start_run": ("keel.track", "start_run"),
    "autolog": ("keel.track.autolog", "autolog"),
    "LoadedModel": ("keel.registry", "LoadedModel"),
    "PythonModel": ("keel.registry", "PythonModel"),
    "load_model": ("keel.registry", "load_model"),
    "evaluate": ("keel.evaluation", "evaluate"),
    "gate": ("keel.evaluation", "gate"),
    "outcomes": ("keel.evaluation.outcomes", None),
    "monitor": ("keel.monitor", None),
}


# Module-level twins of the active run's methods, for notebooks (as MLflow users expect).
def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log a metric on the active run."""
    from keel.track.run import require_active

    require_active().log_metric(key, value, step)


def log_metrics(values: dict[str, float], step: int | None = None) -> None:
    """Log several metrics on the active run."""
    from keel.track.run import require_active

    require_active().log_metrics(values, step)


def log_param(key: str, value: Any) -> None:
    """Log a parameter on the active run."""
    from keel.track.run import require_active

    require_active().log_param(key, value)


def log_params(params: dict[str, Any]) -> None:
    """Log parameters on the active run."""
    from keel.track.run import require_active

    require_active().log_params(params)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    from keel.track.run import require_active

    require_active().set_tag(key, value)


def set_tags(tags: dict[str, Any]) -> None:
    """Set tags on the active run."""
    from keel.track.run import require_active

    require_active().set_tags(tags)


def log_artifact(path: str, name: str | None = None) -> str:
    """Store a file or folder with the active run."""
    from keel.track.run import require_active

    return require_active().log_artifact(path, name)


def end_run(status: str = "finished") -> None:
    """End the active run."""
    from keel.track.run import require_active

    require_active().end(status)


def get_run(ref: str, *, workspace: Workspace | None = None, latest: bool = False) -> RunRecord:
    """Read a run back by id, id prefix or name: params, metrics, inputs, code, environment.
    A name several runs carry is bad input naming them, unless ``latest`` (the newest)."""
    from keel.track.records import get_run as _get
    from keel.workspace import connect

    return _get(workspace or connect(), ref, latest=latest)


def search_runs(
    filter: str | None = None,
    *,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
    workspace: Workspace | None = None,
) -> Any:
    """Runs matching a filter such as ``metrics.auc > 0.9 and params.depth = 6``."""
    from keel.track.search import search_runs as _search
    from keel.workspace import connect

    return _search(workspace or connect(), filter, sort, limit, offset)


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'keel' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    return value if attr is None else getattr(value, attr)


def __dir__() -> list[str]:
    return sorted(__all__)


def _in_a_kernel() -> None:
    """In Jupyter or IPython, note from now on which cells raise: a notebook rebuilt from the
    input history leaves them out (re-running them would stop its re-execution)."""
    import sys

    if "IPython" in sys.modules:
        from keel.track.notebook import shell, watch

        found = shell()
        if found is not None:
            watch(found)


_in_a_kernel()
