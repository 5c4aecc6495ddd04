"""Finding runs: a parsed filter compiled to one SQL query, sorted and paginated."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    not_,
    or_,
    select,
    true,
)

from keel.data.names import parse_ref
from keel.errors import InvalidInput
from keel.store.db import (
    dataset_versions,
    datasets,
    metric_keys,
    run_inputs,
    run_metrics,
    run_params,
    run_tags,
    runs,
)
from keel.track.query import (
    Compare,
    FilterSyntaxError,
    Logical,
    Not,
    _timestamp,
    duration_seconds,
    parse_filter,
    parse_sort,
)
from keel.track.records import mark_crashed

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["RunPage", "RunSummary", "search_runs"]


@dataclass
class RunSummary:
    """A run in a listing: its record and its latest metrics and params."""

    id: str
    name: str
    experiment: str
    status: str
    created_at: float
    ended_at: float | None
    params: dict[str, Any]
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "experiment": self.experiment,
            "status": self.status,
            "created_at": self.created_at,
            "ended_at": self.ended_at,
            "params": self.params,
            "metrics": self.metrics,
        }


@dataclass
class RunPage:
    runs: list[RunSummary]
    offset: int
    limit: int
    next_offset: int | None

    def __iter__(self) -> Iterator[RunSummary]:
        """``for run in keel.search_runs(...)``: this page's runs (``next_offset`` pages on)."""
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: int) -> RunSummary:
        return self.runs[index]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [r.to_dict() for r in self.runs],
            "offset": self.offset,
            "limit": self.limit,
            "next_offset": self.next_offset,
        }


def _key_id(key: str) -> Any:
    return select(metric_keys.c.id).where(metric_keys.c.key == key).scalar_subquery()


def _number(c: Compare, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FilterSyntaxError(f"{c.field}.{c.key} {c.op} {value!r}: metrics compare with numbers")
    return float(value)


def _cmp(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    ops = {
        "=": column == value,
        "!=": column != value,
        "<": column < value,
        "<=": column <= value,
        ">": column > value,
        ">=": column >= value,
    }
    if op == "~":  # case-insensitive on SQLite and PostgreSQL alike
        return cast("ColumnElement[bool]", column.icontains(str(value), autoescape=True))
    return cast("ColumnElement[bool]", ops[op])


def _param_values(value: Any) -> list[str]:
    """A parameter is stored as JSON: match the JSON of the value, and the bare text."""
    return list(dict.fromkeys([json.dumps(value), str(value)]))


def _compile(node: Any) -> ColumnElement[bool]:
    if isinstance(node, Logical):
        parts = [_compile(n) for n in node.items]
        return and_(*parts) if node.op == "and" else or_(*parts)
    if isinstance(node, Not):
        return not_(_compile(node.item))
    c: Compare = node
    if c.field == "metrics":
        base = [run_metrics.c.run_pk == runs.c.pk, run_metrics.c.key_id == _key_id(str(c.key))]
        if c.op == "is null":
            return ~exists().where(*base)
        if c.op == "is not null":
            return exists().where(*base)
        if c.op == "in":
            nums = [_number(c, v) for v in c.value]
            return exists().where(*base, run_metrics.c.value.in_(nums))
        return exists().where(*base, _cmp(run_metrics.c.value, c.op, _number(c, c.value)))
    if c.field == "params":
        base = [run_params.c.run_pk == runs.c.pk, run_params.c.key == c.key]
        if c.op in ("is null", "is not null"):
            found = exists().where(*base)
            return ~found if c.op == "is null" else found
        values = c.value if c.op == "in" else (c.value,)
        if c.op == "~":
            return exists().where(
                *base, run_params.c.value.icontains(str(c.value), autoescape=True)
            )
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric:
            if c.op == "in":
                return exists().where(*base, run_params.c.value_num.in_([float(v) for v in values]))
            return exists().where(*base, _cmp(run_params.c.value_num, c.op, float(c.value)))
        texts = [t for v in values for t in _param_values(v)]
        if c.op in ("=", "in"):
            return exists().where(*base, run_params.c.value.in_(texts))
        if c.op == "!=":
            return exists().where(*base, run_params.c.value.not_in(texts))
        return exists().where(*base, _cmp(run_params.c.value, c.op, json.dumps(c.value)))
    if c.field == "tags":
        base = [run_tags.c.run_pk == runs.c.pk, run_tags.c.key == c.key]
        if c.op in ("is null", "is not null"):
            found = exists().where(*base)
            return ~found if c.op == "is null" else found
        if c.op == "in":
            return exists().where(*base, run_tags.c.value.in_([str(v) for v in c.value]))
        return exists().where(*base, _cmp(run_tags.c.value, c.op, str(c.value)))
    if c.field == "data":
        return _data(c)
    if c.field == "created":
        return _cmp(runs.c.created_at, c.op, _timestamp(c.value, ""))
    if c.field == "age":
        # age < 2h  <=>  created after now - 2h
        flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[c.op]
        return _cmp(runs.c.created_at, flipped, time.time() - duration_seconds(str(c.value)))
    column = {
        "status": runs.c.status,
        "name": runs.c.name,
        "experiment": runs.c.experiment,
        "id": runs.c.id,
    }[c.field]
    if c.op in ("is null", "is not null"):
        return false() if c.op == "is null" else true()
    if c.op == "in":
        return column.in_([str(v) for v in c.value])
    if c.field == "id" and c.op == "=":
        return column.startswith(str(c.value), autoescape=True)
    return _cmp(column, c.op, str(c.value))


def _data(c: Compare) -> ColumnElement[bool]:
    if c.op not in ("=", "!=", "in"):
        raise FilterSyntaxError(f"data takes = != or in, not {c.op}")
    conditions = []
    for text in c.value if c.op == "in" else (c.value,):
        ref = parse_ref(str(text))
        cond = [run_inputs.c.run_pk == runs.c.pk, datasets.c.name == ref.name]
        if ref.number is not None:
            cond.append(dataset_versions.c.number == ref.number)
        elif ref.digest_prefix is not None and "@" in str(text):
            cond.append(dataset_versions.c.digest.startswith(ref.digest_prefix, autoescape=True))
        conditions.append(
            exists()
            .select_from(
                run_inputs.join(
                    dataset_versions, dataset_versions.c.id == run_inputs.c.dataset_version_id
                ).join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            )
            .where(*cond)
        )
    combined = or_(*conditions)
    return ~combined if c.op == "!=" else combined


def search_runs(
    ws: Workspace,
    filter: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> RunPage:
    """Runs matching ``filter``, ordered by ``sort`` (default: newest first)."""
    if limit < 1 or limit > 100_000:
        raise InvalidInput(f"invalid limit {limit}: expected 1 to 100000")
    if offset < 0:
        raise InvalidInput(f"invalid offset {offset}: expected 0 or more")
    condition = _compile(parse_filter(filter)) if filter and filter.strip() else true()
    query = select(
        runs.c.pk,
        runs.c.id,
        runs.c.name,
        runs.c.experiment,
        runs.c.status,
        runs.c.created_at,
        runs.c.ended_at,
    ).where(condition)
    if sort:
        field, key, descending = parse_sort(sort)
        if field == "metrics":
            sort_metric = run_metrics.alias("sort_metric")
            query = query.outerjoin(
                sort_metric,
                and_(sort_metric.c.run_pk == runs.c.pk, sort_metric.c.key_id == _key_id(str(key))),
            )
            column: Any = sort_metric.c.value
        elif field == "params":
            sort_param = run_params.alias("sort_param")
            query = query.outerjoin(
                sort_param, and_(sort_param.c.run_pk == runs.c.pk, sort_param.c.key == key)
            )
            column = sort_param.c.value_num
        elif field == "duration":
            column = runs.c.ended_at - runs.c.created_at
        else:
            column = {
                "created": runs.c.created_at,
                "name": runs.c.name,
                "status": runs.c.status,
                "experiment": runs.c.experiment,
            }[field]
        ordered = column.desc() if descending else column.asc()
        query = query.order_by(ordered.nulls_last(), runs.c.created_at.desc())
    else:
        query = query.order_by(runs.c.created_at.desc())
    query = query.limit(limit + 1).offset(offset)
    ws.db.write(lambda conn: mark_crashed(conn))
    with ws.db.read() as conn:
        rows = conn.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        pks = [r.pk for r in rows]
        params: dict[int, dict[str, Any]] = {pk: {} for pk in pks}
        metric_values: dict[int, dict[str, float]] = {pk: {} for pk in pks}
        if pks:
            for pk, key, value in conn.execute(
                select(run_params.c.run_pk, run_params.c.key, run_params.c.value).where(
                    run_params.c.run_pk.in_(pks)
                )
            ):
                params[pk][key] = json.loads(value)
            for pk, key, value in conn.execute(
                select(run_metrics.c.run_pk, metric_keys.c.key, run_metrics.c.value)
                .join(metric_keys, metric_keys.c.id == run_metrics.c.key_id)
                .where(run_metrics.c.run_pk.in_(pks))
            ):
                metric_values[pk][key] = float("nan") if value is None else value
    summaries = [
        RunSummary(
            r.id,
            r.name,
            r.experiment,
            r.status,
            r.created_at,
            r.ended_at,
            params[r.pk],
            metric_values[r.pk],
        )
        for r in rows
    ]
    return RunPage(summaries, offset, limit, offset + limit if more else None)
