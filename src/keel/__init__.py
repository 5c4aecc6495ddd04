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
    from keel import data, errors
    from keel.data import DatasetVersion
    from keel.errors import KeelError
    from keel.workspace import Workspace, connect, init

__all__ = [
    "DatasetVersion",
    "KeelError",
    "Workspace",
    "__version__",
    "connect",
    "data",
    "errors",
    "init",
]

_LAZY = {
    "data": ("keel.data", None),
    "errors": ("keel.errors", None),
    "DatasetVersion": ("keel.data", "DatasetVersion"),
    "KeelError": ("keel.errors", "KeelError"),
    "Workspace": ("keel.workspace", "Workspace"),
    "connect": ("keel.workspace", "connect"),
    "init": ("keel.workspace", "init"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'keel' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    return value if attr is None else getattr(value, attr)


def __dir__() -> list[str]:
    return sorted(__all__)
