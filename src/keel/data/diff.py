"""``keel data diff``: what changed between two versions, in files and in statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.data.version import DatasetVersion

__all__ = ["DatasetDiff", "diff_versions", "within_float_noise"]


@dataclass
class DatasetDiff:
    """Files added, removed and changed; per table, schema, row-count and statistic shifts."""

    a: str
    b: str
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    tables: list[dict[str, Any]] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "identical": self.identical,
            "files": {
                "added": self.added,
                "removed": self.removed,
                "changed": self.changed,
                "unchanged": self.unchanged,
            },
            "tables": self.tables,
        }


def diff_versions(a: DatasetVersion, b: DatasetVersion) -> DatasetDiff:
    """Compare ``a`` (before) with ``b`` (after)."""
    result = DatasetDiff(a.ref, b.ref)
    ta, tb = a.tree(), b.tree()
    for entry in tb:
        old = ta.get(entry.path)
        if old is None:
            result.added.append({"path": entry.path, "size": entry.size})
        elif old.oid != entry.oid:
            result.changed.append(
                {"path": entry.path, "size_before": old.size, "size_after": entry.size}
            )
        else:
            result.unchanged += 1
    result.removed = [{"path": e.path, "size": e.size} for e in ta if tb.get(e.path) is None]
    pa_, pb = a.profile or {}, b.profile or {}
    before = {t["name"]: t for t in pa_.get("tables", [])}
    after = {t["name"]: t for t in pb.get("tables", [])}
    if len(before) == 1 and len(after) == 1:  # one table each: compare them even if renamed
        before = {next(iter(after)): next(iter(before.values()))}
    for name, tab in after.items():
        if name in before:
            result.tables.append(_table_diff(name, before[name], tab))
    return result


def _table_diff(name: str, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    ca, cb = a["columns"], b["columns"]
    out: dict[str, Any] = {
        "table": name,
        "rows_before": a["rows"],
        "rows_after": b["rows"],
        "rows_change": b["rows"] - a["rows"],
        "columns_added": [c for c in cb if c not in ca],
        "columns_removed": [c for c in ca if c not in cb],
        "type_changes": [
            {"column": c, "before": ca[c]["type"], "after": cb[c]["type"]}
            for c in cb
            if c in ca and ca[c]["type"] != cb[c]["type"]
        ],
        "columns": {},
    }
    for col in cb:
        if col in ca:
            shift = _column_shift(ca[col], cb[col])
            if shift:
                out["columns"][col] = shift
    return out


def _rate(c: dict[str, Any]) -> float:
    return c["nulls"] / c["count"] if c["count"] else 0.0


def within_float_noise(x: Any, y: Any, scale: float = 1.0) -> bool:
    """Two numbers equal but for float rounding: within 1e-9 of the larger of them and
    ``scale`` (a spread, or 1). Shared by `keel data diff` and `keel features skew`.

    >>> within_float_noise(0.1 + 0.2, 0.3), within_float_noise(1.0, 1.001)
    (True, False)
    """
    if x is None or y is None:
        return x is y
    if x == y:
        return True
    try:
        return bool(abs(x - y) <= 1e-9 * max(abs(x), abs(y), scale))
    except TypeError:
        return False


def _column_shift(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    shift: dict[str, Any] = {}
    if abs(_rate(a) - _rate(b)) > 1e-12:
        shift["null_rate"] = [round(_rate(a), 6), round(_rate(b), 6)]
    if a["kind"] == b["kind"] == "numeric" and "mean" in a and "mean" in b:
        # the same values summed in another order differ in the last bits: that is no change
        scale = max(abs(a["std"] or 0.0), abs(b["std"] or 0.0))
        for stat in ("mean", "std", "min", "max"):
            if not within_float_noise(a[stat], b[stat], scale):
                shift[stat] = [a[stat], b[stat]]
        if a["std"] > 0 and "mean" in shift:
            moved = round((b["mean"] - a["mean"]) / a["std"], 4)
            if moved != 0:  # a -0 sd shift is none
                shift["mean_shift_in_std"] = moved
    elif a["kind"] == b["kind"] == "categorical":
        if a["distinct"] != b["distinct"]:
            shift["distinct"] = [a["distinct"], b["distinct"]]
        share_a = {v: n / max(a["count"] - a["nulls"], 1) for v, n in a["top"]}
        share_b = {v: n / max(b["count"] - b["nulls"], 1) for v, n in b["top"]}
        new = [v for v in share_b if v not in share_a and a["distinct_exact"]]
        gone = [v for v in share_a if v not in share_b and b["distinct_exact"]]
        moved = {
            v: [round(share_a[v], 6), round(share_b[v], 6)]
            for v in share_b
            if v in share_a and abs(share_a[v] - share_b[v]) >= 0.001
        }
        if new:
            shift["new_values"] = new
        if gone:
            shift["vanished_values"] = gone
        if moved:
            shift["share"] = moved
    return shift
