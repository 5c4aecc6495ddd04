"""``keel verify``: prove that every object is whole and every record's objects exist.

Walks from every object reference a record holds (``object_refs``) through
trees and chunk lists, then rehashes every stored object. A problem names the
object and the records that use it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from keel.errors import CorruptObject, MissingObject, StorageError
from keel.store.db import Database, object_refs
from keel.store.objects import ObjectStore
from keel.store.walk import children

__all__ = ["Reachability", "VerifyReport", "reachable", "verify"]


@dataclass
class VerifyReport:
    """What ``verify`` found. ``ok`` is False when any object is missing or corrupt."""

    objects_checked: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    corrupt: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[dict[str, Any]] = field(default_factory=list)
    stray_temporaries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.unreadable or self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "objects_checked": self.objects_checked,
            "missing": self.missing,
            "corrupt": self.corrupt,
            "unreadable": self.unreadable,
            "stray_temporaries": self.stray_temporaries,
            "problems": self.problems,
        }


@dataclass
class Reachability:
    """Every object some record needs, and the way back from any of them to those records."""

    objects: set[str] = field(default_factory=set)
    failures: list[dict[str, Any]] = field(default_factory=list)
    _parents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _labels: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def users(self, oid: str) -> list[str]:
        """The labels of every record whose objects include ``oid`` (walking up shared trees)."""
        found: set[str] = set()
        stack, seen = [oid], {oid}
        while stack:
            current = stack.pop()
            found |= self._labels.get(current, set())
            for parent in self._parents.get(current, ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return sorted(found)


def reachable(db: Database, store: ObjectStore) -> Reachability:
    """Walk every record's objects once; shared trees and chunks are read once."""
    with db.read() as conn:
        roots = conn.execute(
            select(object_refs.c.oid, object_refs.c.shape, object_refs.c.label)
        ).all()
    result = Reachability()
    expanded: set[tuple[str, str]] = set()
    for root_oid, root_shape, label in roots:
        result._labels[str(root_oid)].add(str(label))
        stack = [(str(root_oid), str(root_shape))]
        while stack:
            oid, shape = stack.pop()
            result.objects.add(oid)
            if shape == "blob" or (oid, shape) in expanded:
                continue
            expanded.add((oid, shape))
            try:
                kids = list(children(store, oid, shape))
            except (MissingObject, CorruptObject, StorageError) as exc:
                result.failures.append({"oid": oid, "shape": shape, "error": str(exc)})
                continue
            for child, child_shape in kids:
                result._parents[child].add(oid)
                stack.append((child, child_shape))
    return result


def verify(
    db: Database, store: ObjectStore, progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """Check every reference and every object."""
    report = VerifyReport()
    reach = reachable(db, store)
    stored = set(store.iter_oids())
    for oid in sorted(reach.objects - stored):
        report.missing.append({"oid": oid, "used_by": reach.users(oid)})
    total = len(stored)
    done = 0

    def check(oid: str) -> tuple[str, str | None]:
        try:
            return oid, store.check(oid)
        except MissingObject:
            return oid, None  # removed while we looked (gc); not a fault

    with ThreadPoolExecutor(2) as pool:  # hashing and reading release the GIL
        for oid, actual in pool.map(check, sorted(stored)):
            done += 1
            if actual is not None:
                report.corrupt.append({"oid": oid, "actual": actual, "used_by": reach.users(oid)})
            if progress is not None and (done % 256 == 0 or done == total):
                progress(done, total)
    corrupt = {c["oid"] for c in report.corrupt}
    missing = {m["oid"] for m in report.missing}
    for f in reach.failures:
        if f["oid"] not in corrupt and f["oid"] not in missing:
            report.unreadable.append({**f, "used_by": reach.users(f["oid"])})
    report.objects_checked = total
    report.stray_temporaries = len(store.stray_temporaries())
    return report
