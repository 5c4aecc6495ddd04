"""The schema finding: columns missing, new or of another type in the current table.

A schema break is not drift: the data did not move, the pipeline feeding the model
changed. So it is its own verdict (status ``schema``), named in the headline, and
not a reason to retrain. A column *breaks* the schema when the current table lacks
it and something needs it — an input of the model's signature, or the column named
as the target or the prediction — or when a column the model needs arrives as
another type. Without a signature every column that changed type breaks it; a column
that is only missing (or only new) is reported, not failed. ``allow_missing``
names the columns a user knows may be absent.

>>> s = SchemaFinding(missing=["bmi"], new=["body_mass"], required={"bmi": "input"}, absent=["bmi"])
>>> s.broken, s.sentence()
(['bmi'], 'input bmi missing from the current table; 1 new column: body_mass')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SchemaFinding"]


@dataclass
class SchemaFinding:
    """What differs between the two tables' columns, and what of it breaks the model."""

    missing: list[str] = field(default_factory=list)  # in the reference, not the current table
    new: list[str] = field(default_factory=list)  # in the current table only
    retyped: list[dict[str, str]] = field(default_factory=list)  # name, reference, current
    # what each column the current table must have is for: "input", "target", "prediction"
    required: dict[str, str] = field(default_factory=dict)
    allowed: list[str] = field(default_factory=list)  # may be missing (--allow-missing)
    signature: str | None = None  # the model version whose signature says what is an input
    absent: list[str] = field(default_factory=list)  # required, not allowed, not in the current

    @property
    def broken(self) -> list[str]:
        """The columns that break the schema: required and absent, or retyped (required
        ones only when a signature says what the model needs)."""
        retyped = [
            r["name"]
            for r in self.retyped
            if self.signature is None or r["name"] in self.required
        ]
        return [*self.absent, *(c for c in retyped if c not in self.absent)]

    @property
    def id(self) -> str:
        """What identifies this break over time (alerts fire and resolve by it)."""
        return "schema:" + ",".join(sorted(self.broken))

    @property
    def changed(self) -> bool:
        return bool(self.missing or self.new or self.retyped or self.absent)

    def sentence(self) -> str:
        """The finding in words: what breaks first, then what is only different (the
        headline puts ``schema:`` before it)."""
        parts: list[str] = []
        absent = self.absent
        by_role: dict[str, list[str]] = {}
        for c in absent:
            by_role.setdefault(self.required[c], []).append(c)
        for role, cols in by_role.items():
            what = f"input{'s' if len(cols) > 1 else ''}" if role == "input" else f"{role} column"
            parts.append(f"{what} {', '.join(cols)} missing from the current table")
        for r in self.retyped:
            what = self.required.get(r["name"], "column")
            parts.append(f"{what} {r['name']} changed type ({r['reference']} -> {r['current']})")
        other = [c for c in self.missing if c not in absent]
        if other:
            allowed = [c for c in other if c in self.allowed]
            rest = [c for c in other if c not in self.allowed]
            if rest:
                needs = f", not inputs of {self.signature}" if self.signature else ""
                parts.append(f"{len(rest)} column(s) missing{needs}: {_few(rest)}")
            if allowed:
                parts.append(f"{len(allowed)} allowed to be missing: {_few(allowed)}")
        if self.new:
            parts.append(f"{len(self.new)} new column{'s' if len(self.new) > 1 else ''}: {_few(self.new)}")
        return "; ".join(parts) if parts else "unchanged"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "broken": self.broken,
            "missing": self.missing,
            "absent": self.absent,
            "new": self.new,
            "retyped": self.retyped,
            "required": self.required,
            "allowed": self.allowed,
            "signature": self.signature,
            "text": self.sentence(),
        }


def _few(names: list[str], limit: int = 10) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
