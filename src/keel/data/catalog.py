"""Dataset records in the metadata store: resolve, list, log, record, remove."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, and_, func, insert, select, update

from keel.data.names import check_name, parse_ref
from keel.data.version import DatasetVersion
from keel.errors import BadRef, InvalidInput, NotFound
from keel.store.db import (
    Event,
    actor,
    dataset_versions,
    datasets,
    get_pointer,
    history,
    move_pointer,
    object_refs,
)
from keel.store.db.numbering import claim_name, next_number
from keel.workspace import Workspace

__all__ = [
    "HEAD",
    "DatasetSummary",
    "check_heads",
    "head_history",
    "list_datasets",
    "record_version",
    "remove",
    "resolve",
    "version_id",
    "versions",
]

HEAD = "dataset.head"
OWNER = "dataset_version"
_V = dataset_versions.c


@dataclass(frozen=True)
class DatasetSummary:
    """One line of ``keel data list``."""

    name: str
    head: int | None
    versions: int
    size: int
    files: int
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "head": f"{self.name}@v{self.head}" if self.head else None,
            "versions": self.versions,
            "size": self.size,
            "files": self.files,
            "updated_at": self.updated_at,
        }


def _version(row: Any, name: str, ws: Workspace) -> DatasetVersion:
    return DatasetVersion(
        name=name,
        number=row.number,
        digest=row.digest,
        kind=row.kind,
        size=row.size,
        file_count=row.file_count,
        profile_oid=row.profile_oid,
        profile_error=row.profile_error,
        message=row.message,
        source=row.source,
        created_at=row.created_at,
        created_by=row.created_by,
        deleted_at=row.deleted_at,
        workspace=ws,
    )


def _dataset_id(conn: Connection, name: str) -> int | None:
    row = conn.execute(select(datasets.c.id).where(datasets.c.name == name)).first()
    return None if row is None else int(row[0])


def _numbers(conn: Connection, dataset_id: int) -> list[int]:
    q = select(_V.number).where(_V.dataset_id == dataset_id).order_by(_V.number)
    return [int(n) for (n,) in conn.execute(q)]


def resolve(ws: Workspace, ref: str) -> DatasetVersion:
    """The version ``ref`` names: ``name@vN``, ``name`` (head) or a digest prefix."""
    parsed = parse_ref(ref)
    with ws.db.read() as conn:
        ds_id = _dataset_id(conn, parsed.name) if parsed.name else None
        if ds_id is not None and parsed.name is not None:
            number = parsed.number
            if number is None and parsed.digest_prefix is not None and "@" in ref:
                return _by_digest(conn, ws, parsed.digest_prefix, ds_id, ref)
            if number is None:
                head = get_pointer(conn, HEAD, parsed.name)
                if head is None:
                    raise NotFound(f"dataset {parsed.name} has no versions left")
                number = int(head)
            row = conn.execute(
                select(dataset_versions).where(and_(_V.dataset_id == ds_id, _V.number == number))
            ).first()
            if row is None:
                have = _numbers(conn, ds_id)
                known = (
                    "it has none"
                    if not have
                    else f"its only version is v{have[0]}"
                    if len(have) == 1
                    else f"its versions are v{have[0]}..v{have[-1]}"
                )
                raise NotFound(f"{parsed.name} has no version v{number}; {known}")
            return _version(row, parsed.name, ws)
        if parsed.digest_prefix is not None and "@" not in ref:
            return _by_digest(conn, ws, parsed.digest_prefix, None, ref)
        raise NotFound(f"no dataset named {parsed.name!r}; `keel data list` shows the datasets")


def _by_digest(
    conn: Connection, ws: Workspace, prefix: str, ds_id: int | None, ref: str
) -> DatasetVersion:
    q = (
        select(dataset_versions, datasets.c.name)
        .join(datasets, datasets.c.id == _V.dataset_id)
        .where(_V.digest.startswith(prefix, autoescape=True))
        .order_by(_V.id)
    )
    if ds_id is not None:
        q = q.where(_V.dataset_id == ds_id)
    rows = conn.execute(q.limit(20)).all()
    if not rows:
        raise NotFound(f"no dataset version matches {ref!r} (by name or digest prefix)")
    if len({r.digest for r in rows}) > 1:
        shown = ", ".join(f"{r.name}@v{r.number}" for r in rows[:5])
        raise BadRef(f"digest prefix {prefix!r} is ambiguous ({shown}); give more characters")
    row = rows[-1]  # the same data under several versions: the newest one
    return _version(row, row.name, ws)


def list_datasets(ws: Workspace) -> list[DatasetSummary]:
    """Every dataset with its head."""
    from keel.store.db import pointers

    with ws.db.read() as conn:
        counts: dict[int, int] = {}
        last_change: dict[int, float] = {}  # a head removed with its last version has no time
        for ds_id, n, created, deleted in conn.execute(
            select(
                _V.dataset_id, func.count(), func.max(_V.created_at), func.max(_V.deleted_at)
            ).group_by(_V.dataset_id)
        ).all():
            counts[ds_id] = int(n)
            last_change[ds_id] = max(float(created or 0.0), float(deleted or 0.0))
        rows = conn.execute(
            select(datasets.c.id, datasets.c.name, pointers.c.target, pointers.c.updated_at)
            .select_from(datasets)
            .outerjoin(pointers, and_(pointers.c.kind == HEAD, pointers.c.name == datasets.c.name))
            .order_by(datasets.c.name)
        ).all()
        out = []
        for ds_id, name, target, updated in rows:
            size = files = 0
            if target is not None:
                head = conn.execute(
                    select(_V.size, _V.file_count).where(
                        and_(_V.dataset_id == ds_id, _V.number == int(target))
                    )
                ).first()
                if head is not None:
                    size, files = int(head[0]), int(head[1])
            out.append(
                DatasetSummary(
                    name,
                    int(target) if target else None,
                    counts.get(ds_id, 0),
                    size,
                    files,
                    float(updated or last_change.get(ds_id, 0.0)),
                )
            )
        return out


def versions(ws: Workspace, name: str) -> list[DatasetVersion]:
    """Every version of ``name``, newest first."""
    check_name(name)
    with ws.db.read() as conn:
        ds_id = _dataset_id(conn, name)
        if ds_id is None:
            raise NotFound(f"no dataset named {name!r}; `keel data list` shows the datasets")
        rows = conn.execute(
            select(dataset_versions).where(_V.dataset_id == ds_id).order_by(_V.number.desc())
        ).all()
    return [_version(r, name, ws) for r in rows]


def head_history(ws: Workspace, name: str) -> list[Event]:
    """Every move of ``name``'s head, newest first."""
    check_name(name)
    with ws.db.read() as conn:
        return history(conn, HEAD, name)


def record_version(
    ws: Workspace,
    *,
    name: str,
    digest: str,
    kind: Literal["file", "dir"],
    size: int,
    file_count: int,
    profile_oid: str | None,
    profile_error: str | None,
    message: str,
    source: str,
    also: Callable[[Connection, int], None] | None = None,
) -> DatasetVersion:
    """Record a new version and move the head to it, unless the head already has this digest.

    ``also(conn, version_id)`` records more in the same transaction (what the version was
    made from), for the new version or the head it matched."""
    who = actor()

    def txn(conn: Connection) -> DatasetVersion:
        now = time.time()
        # The dataset row, locked: concurrent adds to one name get distinct numbers.
        ds_id = claim_name(conn, datasets, name, created_at=now, created_by=who)
        head = get_pointer(conn, HEAD, name)
        if head is not None:
            row = conn.execute(
                select(dataset_versions).where(and_(_V.dataset_id == ds_id, _V.number == int(head)))
            ).first()
            if row is not None and row.digest == digest:
                if also is not None:
                    also(conn, int(row.id))
                return _version(row, name, ws)
        number = next_number(conn, _V.number, _V.dataset_id, ds_id)
        values = dict(
            dataset_id=ds_id,
            number=number,
            digest=digest,
            kind=kind,
            size=size,
            file_count=file_count,
            profile_oid=profile_oid,
            profile_error=profile_error,
            message=message,
            source=source,
            created_at=now,
            created_by=who,
        )
        version_id = conn.execute(insert(dataset_versions).values(**values)).inserted_primary_key
        owner = str(version_id[0]) if version_id else f"{name}@v{number}"
        label = f"{name}@v{number}"
        refs = [
            dict(
                owner_kind=OWNER,
                owner_id=owner,
                role="content",
                oid=digest,
                shape="tree",
                label=label,
            )
        ]
        if profile_oid is not None:
            refs.append(
                dict(
                    owner_kind=OWNER,
                    owner_id=owner,
                    role="profile",
                    oid=profile_oid,
                    shape="blob",
                    label=f"{label} (profile)",
                )
            )
        conn.execute(insert(object_refs), refs)
        move_pointer(conn, HEAD, name, str(number), message or f"add v{number}")
        if also is not None and version_id:
            also(conn, int(version_id[0]))
        return DatasetVersion(
            name=name,
            number=number,
            digest=digest,
            kind=kind,
            size=size,
            file_count=file_count,
            profile_oid=profile_oid,
            profile_error=profile_error,
            message=message,
            source=source,
            created_at=now,
            created_by=who,
            is_new=True,
            workspace=ws,
        )

    return ws.db.write(txn, retry_integrity=True)


def remove(ws: Workspace, ref: str, message: str = "") -> DatasetVersion:
    """Mark a version removed and drop its object references, so ``keel gc`` can reclaim them.

    The record stays (lineage still names it). If it was the head, the head
    moves back to the newest version left.
    """
    version = resolve(ws, ref)
    if version.deleted_at is not None:
        raise InvalidInput(f"{version.ref} was already removed")

    def txn(conn: Connection) -> None:
        ds_id = _dataset_id(conn, version.name)
        row_id = conn.execute(
            select(_V.id).where(and_(_V.dataset_id == ds_id, _V.number == version.number))
        ).scalar_one()
        conn.execute(update(dataset_versions).where(_V.id == row_id).values(deleted_at=time.time()))
        conn.execute(
            object_refs.delete().where(
                and_(object_refs.c.owner_kind == OWNER, object_refs.c.owner_id == str(row_id))
            )
        )
        if get_pointer(conn, HEAD, version.name) == str(version.number):
            newest = conn.execute(
                select(func.max(_V.number)).where(
                    and_(_V.dataset_id == ds_id, _V.deleted_at.is_(None))
                )
            ).scalar()
            target = None if newest is None else str(newest)
            move_pointer(conn, HEAD, version.name, target, message or f"remove v{version.number}")

    ws.db.write(txn)
    return resolve(ws, version.ref)


def check_heads(ws: Workspace) -> list[str]:
    """Problems with dataset heads: a head naming a version that does not exist or was removed."""
    from keel.store.db import pointers

    problems = []
    with ws.db.read() as conn:
        heads = conn.execute(
            select(pointers.c.name, pointers.c.target).where(pointers.c.kind == HEAD)
        ).all()
        for name, target in heads:
            row = conn.execute(
                select(_V.deleted_at)
                .join(datasets, datasets.c.id == _V.dataset_id)
                .where(and_(datasets.c.name == name, _V.number == int(target)))
            ).first()
            if row is None:
                problems.append(f"head of {name} points at v{target}, which does not exist")
            elif row[0] is not None:
                problems.append(f"head of {name} points at v{target}, which was removed")
    return problems


def version_id(conn: Connection, name: str, number: int) -> int:
    """The row id of ``name@v{number}`` (for records that point at a dataset version)."""
    return int(
        conn.execute(
            select(_V.id)
            .join(datasets, datasets.c.id == _V.dataset_id)
            .where(and_(datasets.c.name == name, _V.number == number))
        ).scalar_one()
    )
