"""JSON for records, reports and ``--json`` output: what a value is, never its ``str``.

Numbers computed with numpy arrive as numpy scalars. ``numpy.float64`` is a
``float`` and encodes as one, but ``numpy.bool_`` and ``numpy.int64`` are not
``bool`` and ``int``: ``json.dumps(..., default=str)`` would write a rejected
gate as the string ``"False"``, which ``jq`` and most scripts read as true.
:func:`plain` turns any scalar with ``.item()`` into its Python value and any
array with ``.tolist()`` into a list, without importing numpy.

>>> import json
>>> import numpy as np
>>> json.dumps({"promote": np.bool_(False), "n": np.int64(3), "xs": np.arange(2)}, default=plain)
'{"promote": false, "n": 3, "xs": [0, 1]}'
"""

from __future__ import annotations

from typing import Any

__all__ = ["plain"]


def plain(value: Any) -> Any:
    """The JSON-encodable form of ``value`` (a ``default=`` for :func:`json.dumps`)."""
    if getattr(getattr(value, "dtype", None), "kind", None) in ("M", "m"):
        return str(value)  # datetime64 / timedelta64: item() would give nanoseconds
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        return value.item()  # a numpy scalar: bool_, int64, float32 ...
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return str(value)  # datetimes, paths, decimals: as they print

