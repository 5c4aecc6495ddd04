"""Feature definitions as code: entities, feature views and on-demand features.

```python
from keel.features import entity, feature_view, on_demand

customer = entity("customer_id")

@feature_view(entity=customer, source="transactions", timestamp="ts", ttl="90d")
def spend(tx):                  # tx: the source dataset version as a DuckDB relation
    return tx.query("tx", "select customer_id, ts, sum(amount) over (...) as spend_30d ...")

@on_demand(inputs=[spend])
def spend_ratio(row):           # one row (a dict) in, one value out: the same code offline and online
    return row["spend_30d"] / max(row["spend_90d"], 1)
```

A view's function gets its source table and returns rows keyed by (entity key, event
time) with feature columns. What makes a version is its **definition**: the function's
source, its parameters (entity key, timestamp column, ttl, created column, source name)
and, when it is applied, the source dataset version it reads; see ``keel.features.versions``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keel.errors import InvalidInput

__all__ = [
    "COLLECTING",
    "Entity",
    "FeatureView",
    "OnDemand",
    "digest",
    "entity",
    "feature_view",
    "on_demand",
    "parse_ttl",
]

# While a definitions file is imported (keel features apply), what its decorators made, in order
COLLECTING: list[list[Any]] = []

_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_ttl(text: str | int | float | dt.timedelta | None) -> dt.timedelta | None:
    """``"90d"``, ``"12h"``, seconds, a timedelta, or None (no limit).

    >>> parse_ttl("90d")
    datetime.timedelta(days=90)
    >>> parse_ttl(None) is None
    True
    """
    if text is None or isinstance(text, dt.timedelta):
        return text
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _TTL.match(str(text))
        if match is None:
            raise InvalidInput(f"invalid ttl {text!r}: expected a duration such as 90d, 12h, 30m")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise InvalidInput(f"invalid ttl {text!r}: expected a positive duration, or none")
    return dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class Entity:
    """What features describe: rows are keyed by its ``key`` column (``customer_id``)."""

    key: str


def entity(key: str) -> Entity:
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput(f"invalid entity key {key!r}: expected a column name")
    return Entity(key)


def _source_code(fn: Callable[..., Any]) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        raise InvalidInput(
            f"the source of {getattr(fn, '__name__', fn)!r} cannot be read: define features in "
            "a file (a module), not in a string or a lambda"
        ) from None


@dataclass
class FeatureView:
    """A function from a source dataset to feature rows keyed by (entity key, event time)."""

    name: str
    entity: Entity
    source: str  # a dataset name: its head at apply time, or a pinned ``name@vN``
    timestamp: str
    ttl: dt.timedelta | None
    function: Callable[..., Any]
    created: str | None = None
    code: str = ""
    description: str = ""
    # served for an entity the online table does not hold: one value, or one per column
    default: Any = None

    kind = "view"

    def definition(self) -> dict[str, Any]:
        """What the version is made of, besides the source version: code and parameters."""
        made = {
            "kind": self.kind,
            "entity": self.entity.key,
            "source": self.source,
            "timestamp": self.timestamp,
            "ttl_seconds": self.ttl.total_seconds() if self.ttl is not None else None,
            "created": self.created,
            "code": self.code,
        }
        if self.default is not None:  # only when declared: older versions keep their digest
            made["default"] = self.default
        return made

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)


@dataclass
class OnDemand:
    """A feature computed from one row of other features, by the same function offline (over
    a training set) and online (per request)."""

    name: str
    inputs: list[str]
    function: Callable[[dict[str, Any]], Any]
    code: str = ""
    description: str = ""
    views: list[FeatureView] = field(default_factory=list, repr=False)

    kind = "on_demand"

    def definition(self) -> dict[str, Any]:
        return {"kind": self.kind, "inputs": sorted(self.inputs), "code": self.code}

    def __call__(self, row: dict[str, Any]) -> Any:
        return self.function(row)


def digest(definition: dict[str, Any], sources: dict[str, str]) -> str:
    """A version's identity: its definition and the source versions (by digest) it reads."""
    text = json.dumps({"definition": definition, "sources": sources}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def feature_view(
    *,
    entity: Entity,
    source: str,
    timestamp: str,
    ttl: str | int | float | dt.timedelta | None = None,
    created: str | None = None,
    name: str | None = None,
    default: Any = None,
) -> Callable[[Callable[..., Any]], FeatureView]:
    """Declare a feature view: ``fn(table)`` returns rows with ``entity.key``, ``timestamp``
    and feature columns. ``ttl``: how old a feature row may be and still count (``"90d"``;
    None: any age). ``created``: the column saying when each row was written (ties, and
    ``as_of``). ``default``: what is served for an entity the online table does not hold
    (one JSON value for every column, or a dict of column -> value); none by default, and
    such a request is refused (422) unless the model's column may be null."""
    from keel.names import check_name

    if not isinstance(entity, Entity):
        raise InvalidInput(f"entity= must be keel.features.entity(...), not {entity!r}")
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput(f"invalid source {source!r}: expected a dataset name such as transactions")
    window = parse_ttl(ttl)
    try:
        json.dumps(default, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"invalid default {default!r}: expected a JSON value (a number, text, true/false) "
            "or a dict of column -> value"
        ) from None

    def wrap(fn: Callable[..., Any]) -> FeatureView:
        view_name = name or fn.__name__
        check_name(view_name, "feature view name")
        view = FeatureView(
            name=view_name,
            entity=entity,
            source=source,
            timestamp=timestamp,
            ttl=window,
            function=fn,
            created=created,
            code=_source_code(fn),
            description=(inspect.getdoc(fn) or "").strip(),
            default=default,
        )
        if COLLECTING:
            COLLECTING[-1].append(view)
        return view

    return wrap


def on_demand(
    *, inputs: list[FeatureView | OnDemand | str], name: str | None = None
) -> Callable[[Callable[[dict[str, Any]], Any]], OnDemand]:
    """Declare an on-demand feature: ``fn(row)`` → a value, from the features of ``inputs``."""
    from keel.names import check_name

    if not inputs:
        raise InvalidInput("on_demand needs inputs=[the feature views it reads]")
    names = []
    for item in inputs:
        if isinstance(item, FeatureView | OnDemand):
            names.append(item.name)
        elif isinstance(item, str):
            names.append(item)
        else:
            raise InvalidInput(f"invalid on_demand input {item!r}: expected a feature view")

    def wrap(fn: Callable[[dict[str, Any]], Any]) -> OnDemand:
        feature_name = name or fn.__name__
        check_name(feature_name, "feature name")
        made = OnDemand(
            name=feature_name,
            inputs=names,
            function=fn,
            code=_source_code(fn),
            description=(inspect.getdoc(fn) or "").strip(),
            views=[i for i in inputs if isinstance(i, FeatureView)],
        )
        if COLLECTING:
            COLLECTING[-1].append(made)
        return made

    return wrap
