"""``keel gc``: remove the objects no record needs, and temporaries crashed writers left."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keel.errors import StorageError
from keel.store.db import Database
from keel.store.objects import ObjectStore
from keel.store.verify import reachable

__all__ = ["GcReport", "collect"]


@dataclass
class GcReport:
    """What was (or, with ``dry_run``, would be) removed."""

    dry_run: bool
    objects: list[str] = field(default_factory=list)
    bytes: int = 0
    temporaries: list[str] = field(default_factory=list)
    kept: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "objects_removed": len(self.objects),
            "bytes_removed": self.bytes,
            "temporaries_removed": len(self.temporaries),
            "objects_kept": self.kept,
            "objects": self.objects,
        }


def collect(db: Database, store: ObjectStore, *, dry_run: bool = False) -> GcReport:
    """Remove unreferenced objects. The caller holds the workspace's exclusive gc lock."""
    reach = reachable(db, store)
    if reach.failures:
        first = reach.failures[0]
        raise StorageError(
            f"cannot collect garbage safely: {first['error']}; run `keel verify` and repair first"
        )
    report = GcReport(dry_run=dry_run)
    for oid in store.iter_oids():
        if oid in reach.objects:
            report.kept += 1
            continue
        report.objects.append(oid)
        report.bytes += store.size(oid)
    report.temporaries = store.stray_temporaries()
    if not dry_run:
        for oid in report.objects:
            store.delete(oid)
        for name in report.temporaries:
            store.remove_stray(name)
    return report
