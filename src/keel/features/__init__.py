"""Features: definitions as versioned code, and point-in-time-correct training sets.

``entity``, ``feature_view`` and ``on_demand`` declare features in a file;
``keel features apply FILE`` records a version of each definition whose code,
parameters or source data changed (``keel.features.versions``); ``training_set`` joins
them point in time onto entity rows and records the result as a dataset version, with
lineage to the feature versions (``keel.features.build``, ``keel.features.pit``).

```python
ts = keel.features.training_set(labels_df, ["spend", "spend_ratio"], as_of="2026-12-01")
with keel.start_run() as run:
    df = run.use(ts).to_pandas()
```
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.features.definitions import Entity, FeatureView, OnDemand, entity, feature_view, on_demand

if TYPE_CHECKING:
    from keel.data.version import DatasetVersion
    from keel.features.online_table import OnlineBuild
    from keel.features.versions import Applied
    from keel.workspace import Workspace

__all__ = [
    "Entity",
    "FeatureView",
    "OnDemand",
    "apply",
    "build",
    "build_online",
    "entity",
    "feature_view",
    "on_demand",
    "online",
    "training_set",
]


def _ws(workspace: Workspace | None) -> Workspace:
    from keel.workspace import connect

    return workspace or connect()


def apply(path: str | Path, *, message: str = "", workspace: Workspace | None = None) -> list[Applied]:
    """Record a version of each definition in ``path`` whose code, parameters or source
    data changed (``keel features apply``)."""
    from keel.features.versions import apply as _apply

    return _apply(_ws(workspace), path, message)


def build(ref: str, *, message: str = "", workspace: Workspace | None = None) -> DatasetVersion:
    """Compute feature view ``ref`` on its source version and record its rows as a version
    of dataset ``NAME.features`` (``keel features build``)."""
    from keel.features.build import build_view

    return build_view(_ws(workspace), ref, message)[1]


def training_set(
    entities: Any,
    features: list[str],
    *,
    as_of: str | dt.datetime | None = None,
    timestamp: str | None = None,
    name: str = "training-set",
    message: str = "",
    workspace: Workspace | None = None,
) -> DatasetVersion:
    """Entity rows (a DataFrame, a file or a dataset version ``labels@v2``) with each
    feature as of each row's time, recorded as a version of dataset ``name``."""
    from keel.features.build import training_set as _training_set

    return _training_set(
        _ws(workspace),
        entities,
        features,
        as_of=as_of,
        timestamp=timestamp,
        name=name,
        message=message,
    )


def build_online(
    ref: str, *, as_of: str | dt.datetime | None = None, workspace: Workspace | None = None
) -> OnlineBuild:
    """Write view ``ref``'s latest row per entity to the online table, replacing its previous
    build atomically (``keel features build REF --online``)."""
    from keel.features.online_table import build_online as _build_online

    return _build_online(_ws(workspace), ref, as_of=as_of)


def online(
    features: list[str],
    entities: Any,
    *,
    strict: bool = False,
    workspace: Workspace | None = None,
) -> Any:
    """The features of each entity (``{"customer_id": [42, 7]}``, or a DataFrame) from the
    online table, on-demand features computed by their recorded functions: a DataFrame.
    An entity the table does not hold gets the view's default, or null (``strict=True``:
    raises ``MissingFeatures``)."""
    from keel.features.online_table import online as _online

    return _online(_ws(workspace), features, entities, strict=strict)
