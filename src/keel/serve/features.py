"""Serving a model trained on a training set: its features looked up by entity key.

A model version whose signature names feature views (``keel.features.online_table.
model_features``) is served by entity key: a request carries the key (and any column the
model takes that is not a feature, a request-time field); the server looks the stored
features up in the online table, one query per request, computes on-demand features by
their recorded functions, checks the assembled row against the signature, and logs it
whole, so drift monitoring sees what the model saw.

At start the online table's builds are checked against the versions the model was
trained on: a view built from an older version, or from one whose code or parameters
changed since, is refused with both versions named (``--allow-stale-features`` serves
it with a warning). A newer version with the same definition (the same code over newer
source data) is what an online table is for.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError
from keel.registry.signature import ColumnSpec, Signature, SignatureError
from keel.serve.inputs import _check, _problem

if TYPE_CHECKING:
    from keel.serve.inputs import Batch
    from keel.workspace import Workspace

__all__ = ["FeatureAssembler", "StaleFeatures"]

log = logging.getLogger("keel.serve")


class StaleFeatures(KeelError):
    """The online table does not hold the feature versions a model was trained on."""

    exit_code = 2
    http_status = 409


@dataclass(frozen=True)
class _View:
    name: str
    key: str
    columns: tuple[str, ...]
    defaults: dict[str, Any]


class FeatureAssembler:
    """Looks a model's features up for each request and adds them to its batch."""

    def __init__(
        self, ws: Workspace, model: str, sig: Signature, *, allow_stale: bool = False
    ) -> None:
        from keel.features.online_table import current_builds
        from keel.features.versions import resolve_feature, stored_definition

        block = sig.features or {}
        self.ws = ws
        self.model = model
        self.warnings: list[str] = []
        builds = current_builds(ws, [v["name"] for v in block.get("views", [])])
        self.views: list[_View] = []
        for need in block.get("views", []):
            name, ref = need["name"], need["ref"]
            build = builds.get(name)
            if build is None:
                raise StaleFeatures(
                    f"{model} was trained on feature view {ref}, and the online table holds no "
                    f"build of {name}: `keel features build {name} --online` first"
                )
            missing = [c for c in need["columns"] if c not in build.columns]
            if missing:
                raise StaleFeatures(
                    f"{model} takes {', '.join(missing)} from {ref}, and the online table's "
                    f"build of {name} ({build.ref}) has no such column"
                )
            expected, served = resolve_feature(ws, ref), resolve_feature(ws, build.ref)
            why = None
            if served.number < expected.number:
                why = f"an older version than {ref}, which {model} was trained on"
            elif changed := served.changed_from(expected):
                why = (
                    f"a version whose {', '.join(changed)} changed since {ref}, which {model} "
                    "was trained on"
                )
            if why is not None:
                text = f"the online table's {name} was built from {build.ref}: {why}"
                if not allow_stale:
                    raise StaleFeatures(
                        f"{text}; `keel features build {ref} --online` (or serve with "
                        "--allow-stale-features)"
                    )
                log.warning("keel serve: %s (served anyway: --allow-stale-features)", text)
                self.warnings.append(text)
            declared = served.definition.get("default")
            defaults = (
                {c: declared.get(c) for c in need["columns"]}
                if isinstance(declared, dict)
                else dict.fromkeys(need["columns"], declared)
            )
            self.views.append(_View(name, need["key"], tuple(need["columns"]), defaults))
        self.on_demand = []
        for need in block.get("on_demand", []):
            version = resolve_feature(ws, need["ref"])
            reads = [c for v in self.views if v.name in need["inputs"] for c in v.columns]
            self.on_demand.append((need["name"], stored_definition(ws, version).function, reads))
        self.provided = {c for v in self.views for c in v.columns} | {
            n for n, _, _ in self.on_demand
        }
        self.specs = {c.name: c for c in sig.columns}
        keys = block.get("entities", {})
        request = [c for c in sig.columns if c.name not in self.provided and c.name not in keys]
        self.request = Signature(
            columns=tuple(ColumnSpec(k, t) for k, t in keys.items()) + tuple(request)
        )
        self._names = [v.name for v in self.views]

    def _fetch(self, entities: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
        from keel.features.online_table import lookup

        return lookup(self.ws.db, self._names, entities)

    def assemble(self, batch: Batch) -> None:
        """Add each feature column to ``batch`` (looked up, or computed), checked against the
        signature. An entity the table does not hold takes the view's default, else null
        where the model's column may be null, else the request is refused (422)."""
        from keel.features.online_table import entity_text

        n = batch.rows
        texts = {
            v.key: [entity_text(k) for k in batch.columns[v.key]] for v in self.views
        }
        wanted = sorted({t for values in texts.values() for t in values if t is not None})
        found = self._fetch(wanted)
        problems: list[dict[str, Any]] = []
        for view in self.views:
            columns: dict[str, list[Any]] = {c: [None] * n for c in view.columns}
            for i, entity in enumerate(texts[view.key]):
                row = found.get((view.name, entity)) if entity is not None else None
                for c in view.columns:
                    value = row.get(c) if row is not None else view.defaults.get(c)
                    if value is None and row is None:
                        spec = self.specs.get(c)
                        if spec is not None and not spec.nullable:
                            problems.append(
                                {
                                    "field": c,
                                    "row": i,
                                    "reason": "unknown_entity",
                                    "message": f"inputs[{i}].{view.key}: no value of {c} "
                                    f"({view.name}) for {view.key}={entity}: the online table "
                                    f"does not hold this entity and {view.name} declares no default",
                                }
                            )
                            break
                    columns[c][i] = value
            batch.columns.update(columns)
            if problems:
                raise SignatureError(problems)
        if self.on_demand:
            from keel.features.build import on_demand_values

            rows = [{c: batch.columns[c][i] for c in batch.columns} for i in range(n)]
        for name, function, reads in self.on_demand:

            def failed(i: int, exc: Exception, name: str = name) -> InvalidInput:
                return InvalidInput(  # the user's function raised: one line, 422
                    f"on-demand feature {name} failed on inputs[{i}]: {type(exc).__name__}: {exc}"
                )

            batch.columns[name] = on_demand_values(function, rows, reads, failed)
        for column in self.provided:
            spec = self.specs.get(column)
            if spec is None:
                continue
            values = batch.columns[column]
            for i, v in enumerate(values):
                if isinstance(v, float) and math.isnan(v):
                    v = values[i] = None
                ok, converted = _check(spec.type, spec.nullable, v)
                if not ok:
                    problems.append(_problem(i, column, spec.type, v))
                    break
                if converted is not v:
                    values[i] = converted
        if problems:
            raise SignatureError(problems)
