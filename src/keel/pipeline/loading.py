"""Importing a pipeline from its file: ``path/to/file.py:NAME``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from keel.errors import BadPath, InvalidInput

__all__ = ["load_pipeline"]


def load_pipeline(target: str) -> Any:
    """The pipeline ``path/to/file.py:name`` names, imported from its file (its folder on
    the module path first, so its own modules import)."""
    from keel.pipeline.steps import Pipeline

    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text or not name:
        raise InvalidInput(f"invalid pipeline {target!r}: expected FILE.py:NAME")
    path = Path(path_text)
    if not path.is_file():
        raise BadPath(f"pipeline file {path_text!r}: no such file")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_name = path.stem
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{path_text} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so its steps' source and pickles resolve
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file: said in one line
        sys.modules.pop(module_name, None)
        first = (str(exc).strip().splitlines() or [""])[0]
        raise InvalidInput(f"{path_text} does not import: {type(exc).__name__}: {first}") from None
    found = getattr(module, name, None)
    if not isinstance(found, Pipeline):
        have = sorted(k for k, v in vars(module).items() if isinstance(v, Pipeline))
        raise InvalidInput(
            f"{path_text} has no pipeline named {name!r}; its pipelines: {', '.join(have) or 'none'}"
        )
    return found
