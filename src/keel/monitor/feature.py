"""One column judged: every detector's score, then the decision of :mod:`decision`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.monitor.categorical import aligned_counts
from keel.monitor.columns import CategoricalColumn, Column
from keel.monitor.decision import LARGE, DecisionRule, holm
from keel.monitor.detector import Score
from keel.monitor.noise import js_noise

__all__ = ["FeatureDrift", "decide", "score_feature"]

PLOT_BINS = 30
PLOT_CATEGORIES = 20


@dataclass
class FeatureDrift:
    """The verdict on one column (a feature, the target or the prediction)."""

    name: str
    kind: str
    role: str = "feature"
    # drift | no drift | not enough data | empty | type changed | identifier
    status: str = "no drift"
    drifted: bool = False
    method: str | None = None
    statistic: float | None = None
    threshold: float | None = None  # what the effect must reach here: max(floor, noise)
    floor: float | None = None  # the effect size that matters, whatever the sample size
    noise_threshold: float | None = None  # the effect noise alone reaches at the rule's level
    test: str | None = None
    p_value: float | None = None  # corrected for every test in the report
    p_value_raw: float | None = None
    missing: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Score] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: tuple[int, int] = (0, 0)
    # values present that did not parse as numbers (counted as missing), on each side
    unparsed: tuple[int, int] = (0, 0)
    reference_source: str = "table"
    regime: str | None = None
    distribution: dict[str, Any] = field(default_factory=dict)
    # the effect statistic on consecutive chunks of the current table: when the drift began
    over_time: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        """``tenure``, ``prediction``, ``prediction score``, ``target churned``."""
        if self.role == "feature" or self.name == self.role:
            return self.name
        return f"{self.role} {self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "role": self.role,
            "status": self.status,
            "drifted": self.drifted,
            "method": self.method,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "floor": self.floor,
            "noise_threshold": self.noise_threshold,
            "test": self.test,
            "p_value": self.p_value,
            "p_value_raw": self.p_value_raw,
            "missing": self.missing,
            "scores": {k: s.to_dict() for k, s in self.scores.items()},
            "reasons": self.reasons,
            "notes": self.notes,
            "rows": list(self.rows),
            "unparsed": {"reference": self.unparsed[0], "current": self.unparsed[1]},
            "reference_source": self.reference_source,
            "regime": self.regime,
            "distribution": self.distribution,
            "over_time": self.over_time,
        }


def score_feature(
    name: str,
    reference: Column,
    current: Column,
    rule: DecisionRule,
    role: str = "feature",
    *,
    light: bool = False,
) -> FeatureDrift:
    """Run every detector of ``rule`` that fits; the decision waits for :func:`decide`.

    ``light`` runs only what the decision needs (the effect, the test, missing values,
    new categories): what each chunk of a stream is judged by."""
    f = FeatureDrift(name=name, kind=reference.kind, role=role)
    f.notes = [f"reference: {n}" for n in reference.notes] + [
        f"current: {n}" for n in current.notes
    ]
    f.reference_source = reference.source
    f.rows = (reference.n, current.n)
    f.unparsed = (getattr(reference, "invalid", 0), getattr(current, "invalid", 0))
    if reference.kind != current.kind:
        f.kind = f"{reference.kind}/{current.kind}"
        f.status = "type changed"  # a schema finding (keel.monitor.schema), not drift
        f.reasons.append(f"{reference.kind} in the reference, {current.kind} in the current data")
        return f
    f.scores["missing_rate"] = rule.missing.score(reference, current)
    if reference.n == 0 and current.n == 0:
        f.status = "empty"
        f.notes.append("every value is missing in both tables")
        return f
    if min(reference.n, current.n) < rule.min_rows:
        f.status = "not enough data"
        f.notes.append(
            f"{reference.n} values in the reference and {current.n} in the current data; "
            f"at least {rule.min_rows} a side are needed to judge the distribution"
        )
        return f
    if reference.kind == "categorical" and _identifier(reference) and _identifier(current):  # type: ignore[arg-type]
        f.status = "identifier"
        f.notes.append(
            "nearly every value is distinct in both tables (an id or a key): its distribution "
            "says nothing, so only its missing share is judged"
        )
        return f
    if reference.kind == "numeric":
        effect, test = rule.numeric_effect, rule.numeric_test
        extra = [] if light else [d for d in rule.numeric_extra if d.accepts(reference)]
        if reference.std == 0 and reference.n:
            f.notes.append(f"constant in the reference ({reference.min:g})")
    else:
        effect, test = rule.categorical_effect, rule.categorical_test
        extra = [rule.categories]
    for d in (effect, test, *extra):
        f.scores[d.name] = d.score(reference, current)
    f.method, f.test = effect.name, test.name
    f.statistic = f.scores[effect.name].statistic
    f.floor = f.scores[effect.name].threshold
    f.threshold = f.floor
    f.p_value_raw = f.scores[test.name].p_value
    cells = f.scores[effect.name].details.get("cells")
    if reference.kind == "categorical" and cells is not None:
        f.noise_threshold = js_noise(int(cells), reference.n, current.n, rule.false_alarm)
        f.threshold = max(f.floor, f.noise_threshold)
        noisy = f.noise_threshold > f.floor
    else:
        noisy = min(f.rows) < LARGE
    f.regime = "test decides" if noisy else "effect size decides"
    if not light:
        f.distribution = _distribution(reference, current)
    return f


def decide(features: list[FeatureDrift], rule: DecisionRule) -> int:
    """Correct every p-value in ``features`` together (Holm) and set each verdict.

    Returns the number of tests corrected for."""
    family: list[tuple[FeatureDrift, str]] = []
    for f in features:
        if f.p_value_raw is not None:
            family.append((f, "distribution"))
        if "missing_rate" in f.scores:
            family.append((f, "missing"))
    raw = []
    for f, which in family:
        p = f.p_value_raw if which == "distribution" else f.scores["missing_rate"].p_value
        raw.append(1.0 if p is None else p)
    for (f, which), p in zip(family, holm(raw), strict=True):
        if which == "distribution":
            f.p_value = p
        else:
            f.missing["p_value"] = p
    for f in features:
        if "missing_rate" in f.scores:
            m = f.scores["missing_rate"]
            f.missing.update(m.details)
            moved = (
                m.statistic >= m.threshold
                and f.missing["p_value"] < rule.alpha
                and (m.p_value if m.p_value is not None else 1.0) < rule.false_alarm
            )
            f.missing["drifted"] = moved
            if moved:
                f.reasons.append(
                    f"missing values {m.details['reference']:.1%} -> {m.details['current']:.1%}"
                )
        if f.p_value is not None and f.statistic is not None and f.threshold is not None:
            big = f.statistic >= f.threshold
            raw_p = f.p_value_raw if f.p_value_raw is not None else 1.0
            real = f.p_value < rule.alpha and raw_p < rule.false_alarm
            if big and real:
                f.reasons.append(
                    f"{f.method} {f.statistic:.4g} >= {f.threshold:.4g} "
                    f"and {f.test} p={f.p_value:.3g} < {rule.alpha:g}"
                )
            elif real:
                f.notes.append(
                    f"significant (p={f.p_value:.3g}) but small: {f.method} "
                    f"{f.statistic:.4g} < {f.threshold:.4g}"
                )
            elif big:
                f.notes.append(
                    f"{f.method} {f.statistic:.4g} >= {f.threshold:.4g} but not significant "
                    f"(p={raw_p:.3g} on its own, {f.p_value:.3g} corrected): too few rows to "
                    f"tell it from noise"
                )
        cats = f.scores.get(rule.categories.name)
        if cats is not None and cats.drifted:
            d = cats.details
            if d.get("new_share", 0) >= cats.threshold:
                f.reasons.append(
                    f"new categories {', '.join(map(str, d['new'][:5]))} "
                    f"({d['new_share']:.1%} of current rows)"
                )
            if d.get("vanished_share", 0) >= cats.threshold:
                f.reasons.append(
                    f"vanished categories {', '.join(map(str, d['vanished'][:5]))} "
                    f"({d['vanished_share']:.1%} of reference rows)"
                )
        if f.status in ("no drift", "not enough data", "empty", "identifier"):
            f.drifted = bool(f.reasons)
            if f.drifted:
                f.status = "drift"
    return len(family)


IDENTIFIER_SHARE = 0.9  # a text column with this share of distinct values is an id


def _identifier(column: CategoricalColumn) -> bool:
    """Nearly every value distinct: an id, a key (from a profile, the rows beyond its top
    values stand for the distinct ones)."""
    n = column.n
    distinct = len(column.counts) if column.complete else len(column.counts) + column.other
    return n > 0 and distinct >= IDENTIFIER_SHARE * n


def _distribution(reference: Column, current: Column) -> dict[str, Any]:
    """Shares of both sides on common bins (numbers) or top categories, for the report."""
    if reference.kind == "numeric":
        lo = float(min(reference.quantile(0.005), current.quantile(0.005)))  # type: ignore[union-attr]
        hi = float(max(reference.quantile(0.995), current.quantile(0.995)))  # type: ignore[union-attr]
        if not hi > lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, PLOT_BINS + 1)
        p = np.diff(reference.cdf(edges))
        q = np.diff(current.cdf(edges))  # type: ignore[union-attr]
        return {
            "edges": [float(e) for e in edges],
            "reference": [float(x) for x in p],
            "current": [float(x) for x in q],
        }
    labels, ref, cur = aligned_counts(reference, current)  # type: ignore[arg-type]
    ref_s = ref / max(ref.sum(), 1)
    cur_s = cur / max(cur.sum(), 1)
    order = np.argsort(-(ref_s + cur_s))[:PLOT_CATEGORIES]
    return {
        "categories": [labels[i] for i in order],
        "reference": [float(ref_s[i]) for i in order],
        "current": [float(cur_s[i]) for i in order],
    }
