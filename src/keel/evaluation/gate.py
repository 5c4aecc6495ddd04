"""``keel.gate``: promote a challenger only when it beats the champion by more than the noise.

The comparison is paired (both models on the same rows). AUC is compared with
DeLong's test; metrics that are means of per-row quantities (value per
decision, log loss, Brier, accuracy, MAE, squared error, MAPE) with an
interval on the mean per-row difference: a bootstrap for small samples, the
normal approximation (exact enough for thousands of rows) above. The
challenger is promoted when the lower bound of the one-sided interval at the
policy's confidence exceeds the minimum improvement, so a challenger that is
identical, or better by less than the noise, is promoted at most
``1 - confidence`` of the time. Guardrails (a metric, optionally on a slice,
that may not regress by more than a bound) can still reject it.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, listed
from keel.evaluation.metrics import HIGHER_IS_BETTER, class_probabilities, compute_metrics
from keel.evaluation.policy import WHOLE_SAMPLE, Policy, load_policy

if TYPE_CHECKING:
    from keel.evaluation.evaluation import Scored
    from keel.evaluation.outcomes import Outcome
    from keel.workspace import Workspace

__all__ = ["Decision", "delong", "gate"]

_NORMAL_FROM = 5000


@dataclass
class Decision:
    """Promote or not, why, and the evidence."""

    promote: bool
    reasons: list[str]
    challenger: str
    champion: str
    data: str
    primary: dict[str, Any]
    guardrails: list[dict[str, Any]] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    created_at: float = 0.0

    def __post_init__(self) -> None:
        # A numpy bool is not a bool: JSON writers would print it as the string "False".
        self.promote = bool(self.promote)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "promote": self.promote,
            "reasons": self.reasons,
            "challenger": self.challenger,
            "champion": self.champion,
            "data": self.data,
            "primary": self.primary,
            "guardrails": self.guardrails,
            "policy": self.policy,
            "created_at": self.created_at,
        }


def delong(truth: Any, scores_a: Any, scores_b: Any) -> tuple[float, float, float]:
    """(AUC a, AUC b, standard error of AUC a - AUC b), paired (DeLong et al., 1988)."""
    import numpy as np
    from scipy.stats import rankdata

    y = np.asarray(truth).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise InvalidInput("AUC needs both classes in the data")
    v01, v10, aucs = [], [], []
    for s in (np.asarray(scores_a, float), np.asarray(scores_b, float)):
        pos, neg = s[y], s[~y]
        tx, ty = rankdata(pos), rankdata(neg)
        tz = rankdata(np.concatenate([pos, neg]))
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v01.append((tz[:m] - tx) / n)
        v10.append(1.0 - (tz[m:] - ty) / m)
    sx, sy = np.cov(np.vstack(v01)), np.cov(np.vstack(v10))
    var = (sx[0, 0] + sx[1, 1] - 2 * sx[0, 1]) / m + (sy[0, 0] + sy[1, 1] - 2 * sy[0, 1]) / n
    return float(aucs[0]), float(aucs[1]), math.sqrt(max(var, 0.0))


def _row_losses(metric: str, s: Scored, outcome: Outcome | None) -> Any:
    """Per-row quantities whose mean is the metric (higher or lower better as the metric)."""
    import numpy as np

    from keel.evaluation.evaluation import outcome_values

    y = s.truth
    if metric == "value":
        return outcome_values(outcome, s)  # type: ignore[arg-type]
    if metric == "accuracy":
        return (np.asarray(s.predicted) == y).astype(float)
    if metric in ("logloss", "brier"):
        if s.scores is None:
            raise InvalidInput(f"{metric} needs a model with probabilities")
        if s.task == "multiclass":
            p = class_probabilities(s.scores)
            mine = p[np.arange(len(y)), y]  # the probability given to the true class
            if metric == "logloss":
                return -np.log(mine)
            onehot = np.zeros_like(p)
            onehot[np.arange(len(y)), y] = 1.0
            return ((p - onehot) ** 2).sum(axis=1)
        p = np.clip(s.scores, 1e-15, 1 - 1e-15)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)) if metric == "logloss" else (p - y) ** 2
    if metric == "mae":
        return np.abs(s.predicted - y)
    if metric == "rmse":
        return (s.predicted - y) ** 2  # decided on mean squared error, reported as RMSE
    if metric == "mape":
        return np.abs((s.predicted - y) / np.where(y == 0, np.finfo(float).eps, np.abs(y)))
    raise InvalidInput(f"{metric} cannot be compared row by row")


def _paired_mean(diff: Any, policy: Policy) -> tuple[float, float, float, str]:
    """(mean difference, one-sided lower bound, p-value that it is <= min_improvement, method)."""
    import numpy as np
    from scipy.stats import norm

    from keel.evaluation.bootstrap import bootstrap_mean

    d = np.asarray(diff, dtype=float)
    mean = float(d.mean())
    alpha = 1 - policy.confidence
    if len(d) >= _NORMAL_FROM:
        se = float(d.std(ddof=1) / math.sqrt(len(d)))
        if se == 0:
            return mean, mean, 0.0 if mean > policy.min_improvement else 1.0, "paired normal"
        lower = mean - norm.ppf(policy.confidence) * se
        p = float(norm.sf((mean - policy.min_improvement) / se))
        return mean, float(lower), p, "paired normal"
    means = bootstrap_mean(d, policy.resamples, policy.seed)
    lower = float(np.quantile(means, alpha))
    p = float(np.mean(means <= policy.min_improvement))
    return mean, lower, p, f"paired bootstrap ({policy.resamples} resamples)"


def _auc_ovr(y: Any, scores: Any, k: int) -> float:
    """One-vs-rest AUC averaged over the classes (sklearn's ``multi_class="ovr"``), from
    ranks: each class's scores of its rows against everyone else's. NaN when a class is
    absent (a resample that drew none of it)."""
    from scipy.stats import rankdata

    total = 0.0
    for c in range(k):
        mine = y == c
        m = int(mine.sum())
        n = len(y) - m
        if m == 0 or n == 0:
            return float("nan")
        ranks = rankdata(scores[:, c])
        total += (ranks[mine].sum() - m * (m + 1) / 2) / (m * n)
    return total / k


def _paired_whole(metric: str, sa: Scored, sb: Scored, pol: Policy) -> tuple[float, float, float, float, float, str]:
    """A metric that is no mean over rows (macro F1, one-vs-rest AUC): (challenger,
    champion, improvement, one-sided lower bound, p-value, method), by a paired bootstrap of
    the difference: the same resampled rows for both models."""
    import numpy as np

    from keel.evaluation.bootstrap import bootstrap_statistic

    higher = HIGHER_IS_BETTER[metric]

    k = len(sa.classes or [])

    def value(s: Scored, idx: Any) -> float:
        y, p = s.truth[idx], s.predicted[idx]
        if metric == "auc_ovr":
            assert s.scores is not None  # checked before: both models give probabilities
            return _auc_ovr(y, s.scores[idx], k)
        # from the confusion counts (a resample costs microseconds, not sklearn's checks)
        counts = np.bincount(y * k + p, minlength=k * k).reshape(k, k).astype(float)
        tp, truth_n, pred_n = np.diag(counts), counts.sum(axis=1), counts.sum(axis=0)
        precision = np.divide(tp, pred_n, out=np.zeros(k), where=pred_n > 0)
        recall = np.divide(tp, truth_n, out=np.zeros(k), where=truth_n > 0)
        both = precision + recall
        f1 = np.divide(2 * precision * recall, both, out=np.zeros(k), where=both > 0)
        if metric == "precision_macro":
            return float(precision.mean())
        if metric == "recall_macro":
            return float(recall.mean())
        if metric == "f1_macro":
            return float(f1.mean())
        return float((f1 * truth_n).sum() / max(truth_n.sum(), 1.0))  # f1_weighted

    every = np.arange(len(sa.truth))
    va, vb = value(sa, every), value(sb, every)
    if math.isnan(va) or math.isnan(vb):
        raise InvalidInput(f"{metric} cannot be computed on this data for both models")
    improvement = (va - vb) if higher else (vb - va)

    def stat(idx: Any) -> float:
        d = value(sa, idx) - value(sb, idx)
        return d if higher else -d

    samples = bootstrap_statistic(len(every), stat, pol.resamples, pol.seed)
    samples = samples[np.isfinite(samples)]
    lower = float(np.quantile(samples, 1 - pol.confidence)) if len(samples) else improvement
    p = float(np.mean(samples <= pol.min_improvement)) if len(samples) else 1.0
    return va, vb, improvement, lower, p, f"paired bootstrap ({pol.resamples} resamples)"


def _paired_rmse(sq_a: Any, sq_b: Any, pol: Policy) -> tuple[float, float, float, str]:
    """RMSE improvement (champion RMSE - challenger RMSE), decided in RMSE's own units:
    a paired bootstrap of both RMSEs below 5,000 rows, the delta method above."""
    import numpy as np
    from scipy.stats import norm

    from keel.evaluation.bootstrap import bootstrap_statistic

    n = len(sq_a)
    ra, rb = math.sqrt(float(np.mean(sq_a))), math.sqrt(float(np.mean(sq_b)))
    improvement = rb - ra
    if n >= _NORMAL_FROM:
        # d(sqrt(m)) = dm / (2 sqrt(m)): the per-row linearised difference gives the standard error.
        lin = sq_b / (2 * rb if rb else 1.0) - sq_a / (2 * ra if ra else 1.0)
        se = float(np.std(lin, ddof=1) / math.sqrt(n))
        if se == 0:
            return (
                improvement,
                improvement,
                0.0 if improvement > pol.min_improvement else 1.0,
                "delta method",
            )
        lower = improvement - norm.ppf(pol.confidence) * se
        return (
            improvement,
            float(lower),
            float(norm.sf((improvement - pol.min_improvement) / se)),
            "paired delta method",
        )

    def stat(idx: Any) -> float:
        return math.sqrt(float(np.mean(sq_b[idx]))) - math.sqrt(float(np.mean(sq_a[idx])))

    samples = bootstrap_statistic(n, stat, pol.resamples, pol.seed)
    lower = float(np.quantile(samples, 1 - pol.confidence))
    p = float(np.mean(samples <= pol.min_improvement))
    return improvement, lower, p, f"paired bootstrap ({pol.resamples} resamples)"


def gate(
    challenger: str,
    *,
    against: str,
    data: Any,
    target: str,
    policy: Any = None,
    outcome: Outcome | None = None,
    metric: str | None = None,
    workspace: Workspace | None = None,
    record: bool = True,
    positive_class: Any = None,
) -> Decision:
    """Decide whether ``challenger`` should replace ``against`` (typically ``name@champion``).
    ``positive_class``: the class binary classifiers are scored on (default: the last)."""
    import numpy as np
    from scipy.stats import norm

    from keel.evaluation.evaluation import _frame, _load, _workspace, score_model

    ws = _workspace(workspace)
    pol = load_policy(policy)
    value = outcome if outcome is not None else pol.value
    chosen = metric or pol.metric
    frame, data_ref, data_vid = _frame(ws, data)
    masks: dict[str, Any] = {}
    for g in pol.guardrails:  # every slice must parse before any work is done
        if g.slice is not None:
            masks.update({k: v for k, v in _guard_masks(frame, g.slice).items()})
    a, b = _load(ws, challenger), _load(ws, against)
    if a.ref == b.ref:
        raise InvalidInput(f"the challenger and the champion are the same version ({a.ref})")
    sa = score_model(a, frame, target, pol.threshold, data_ref, positive_class)
    sb = score_model(b, frame, target, pol.threshold, data_ref, positive_class)
    # a multi-class model is judged only against one of the same classes (a binary
    # classifier against a model that records no classes is judged as before)
    if "multiclass" in (sa.task, sb.task) and (sa.task != sb.task or sa.classes != sb.classes):
        raise InvalidInput(
            f"{a.ref} and {b.ref} do not answer the same question ({sa.task}"
            + (f" over {listed(sa.classes, 10)}" if sa.classes else "")
            + f" against {sb.task}"
            + (f" over {listed(sb.classes, 10)}" if sb.classes else "")
            + ")"
        )
    multiclass = sa.task == "multiclass"
    if chosen is None:
        if multiclass:
            chosen = "value" if value is not None else (
                "logloss" if sa.scores is not None and sb.scores is not None else "accuracy"
            )  # fmt: skip
        else:
            chosen = (
                "value" if value is not None else ("auc" if sa.task == "classification" else "rmse")
            )
    if multiclass and chosen == "auc":
        chosen = "auc_ovr"  # the multi-class AUC: one class against the rest, averaged
    if chosen in WHOLE_SAMPLE and not multiclass:
        raise InvalidInput(f"{chosen} is a multi-class metric; {a.ref} is not a multi-class model")
    if chosen == "value" and value is None:
        raise InvalidInput(
            "the primary metric is value, but no value matrix was given (--value or [value])"
        )
    if chosen in ("auc", "auc_ovr") and (sa.scores is None or sb.scores is None):
        raise InvalidInput(f"{chosen} needs both models to give probabilities")
    higher = HIGHER_IS_BETTER[chosen]
    primary: dict[str, Any] = {
        "metric": chosen,
        "task": sa.task,
        "min_improvement": pol.min_improvement,
        "confidence": pol.confidence,
        "higher_is_better": higher,
    }
    if chosen in WHOLE_SAMPLE:
        va, vb, improvement, lower, p, method = _paired_whole(chosen, sa, sb, pol)
        primary.update(
            challenger=va,
            champion=vb,
            improvement=improvement,
            lower_bound=lower,
            p_value=p,
            method=method,
        )
    elif chosen == "auc":
        auc_a, auc_b, se = delong(sa.truth, sa.scores, sb.scores)
        diff = auc_a - auc_b
        if se == 0:
            lower, p = diff, (0.0 if diff > pol.min_improvement else 1.0)
        else:
            lower = float(diff - norm.ppf(pol.confidence) * se)
            p = float(norm.sf((diff - pol.min_improvement) / se))
        primary.update(
            challenger=auc_a,
            champion=auc_b,
            improvement=diff,
            lower_bound=lower,
            standard_error=se,
            p_value=p,
            method="DeLong paired test",
        )
    else:
        la, lb = _row_losses(chosen, sa, value), _row_losses(chosen, sb, value)
        point_a, point_b = float(np.mean(la)), float(np.mean(lb))
        if chosen == "rmse":
            improvement, lower, p, method = _paired_rmse(la, lb, pol)
            point_a, point_b = math.sqrt(point_a), math.sqrt(point_b)
        else:
            # Improvement is positive when the challenger is better, whatever the metric's direction.
            d = (la - lb) if higher else (lb - la)
            improvement, lower, p, method = _paired_mean(d, pol)
        primary.update(
            challenger=point_a,
            champion=point_b,
            improvement=improvement,
            lower_bound=lower,
            p_value=p,
            method=method,
        )
        if chosen == "value":
            primary.update(challenger_total=float(np.sum(la)), champion_total=float(np.sum(lb)))
    passed = bool(primary["lower_bound"] > pol.min_improvement)
    reasons = []
    if passed:
        reasons.append(
            f"{chosen} improves by {primary['improvement']:.6g} (one-sided {pol.confidence:.0%} lower bound "
            f"{primary['lower_bound']:.6g} > {pol.min_improvement:g}; p = {primary['p_value']:.3g})"
        )
    else:
        reasons.append(
            f"{chosen} improvement {primary['improvement']:.6g} is not clearly above {pol.min_improvement:g}: "
            f"its one-sided {pol.confidence:.0%} lower bound is {primary['lower_bound']:.6g} "
            f"(p = {primary['p_value']:.3g}); not promoted"
        )
    guard_results = []
    for g in pol.guardrails:
        result = _guardrail(g, sa, sb, masks, pol, value)
        guard_results.append(result)
        if not result["passed"]:
            reasons.append(result["reason"])
    promote = passed and all(r["passed"] for r in guard_results)
    decision = Decision(
        promote=promote,
        reasons=reasons,
        challenger=a.ref,
        champion=b.ref,
        data=data_ref,
        primary=primary,
        guardrails=guard_results,
        policy={
            **pol.to_dict(),
            "metric": chosen,
            "value": value.to_dict() if value else None,
            "positive_class": sa.positive.item() if hasattr(sa.positive, "item") else sa.positive,
        },
        id=uuid.uuid4().hex,
        created_at=time.time(),
    )
    if record:
        from keel.evaluation.records import record_evaluation

        record_evaluation(
            ws,
            decision,
            "gate",
            a.version,
            b.version,
            data_vid,
            summary={
                "promote": promote,
                "metric": chosen,
                "improvement": primary["improvement"],
                "lower_bound": primary["lower_bound"],
                "reasons": reasons,
            },
        )
    return decision


def _guard_masks(frame: Any, spec: str) -> dict[str, Any]:
    from keel.evaluation.slices import slice_masks

    if (
        "=" in spec
        and not any(op in spec for op in ("<", ">", "!", "=="))
        and " " not in spec.strip()
    ):
        column, _, value = spec.partition("=")
        masks = slice_masks(frame, column)
        if spec not in masks:
            from keel.evaluation.slices import SliceError

            raise SliceError(
                f"guardrail slice {spec!r}: {column} has no value {value!r} in the data"
            )
        return {spec: masks[spec]}
    return slice_masks(frame, spec)


def _guardrail(
    g: Any, sa: Scored, sb: Scored, masks: dict[str, Any], pol: Policy, value: Outcome | None
) -> dict[str, Any]:
    import numpy as np

    mask = masks.get(g.slice) if g.slice is not None else np.ones(len(sa.truth), dtype=bool)
    where = f"on slice {g.slice}" if g.slice else "overall"
    n = int(mask.sum()) if mask is not None else 0
    base: dict[str, Any] = {**g.to_dict(), "rows": n}
    if n < pol.min_slice_size:
        return {
            **base,
            "passed": False,
            "reason": f"guardrail {g.metric} {where} cannot be judged: {n} rows (< {pol.min_slice_size})",
        }
    ma = compute_metrics(
        sa.task, sa.truth[mask], sa.predicted[mask], None if sa.scores is None else sa.scores[mask],
        classes=sa.classes,
    )  # fmt: skip
    mb = compute_metrics(
        sb.task, sb.truth[mask], sb.predicted[mask], None if sb.scores is None else sb.scores[mask],
        classes=sb.classes,
    )  # fmt: skip
    va, vb = ma.get(g.metric), mb.get(g.metric)
    if g.metric in ("value", "value_per_row"):
        if value is None:
            return {
                **base,
                "passed": False,
                "reason": f"guardrail value {where} needs a value matrix (--value or [value])",
            }
        from keel.evaluation.evaluation import outcome_values

        va = float(np.mean(outcome_values(value, sa)[mask]))
        vb = float(np.mean(outcome_values(value, sb)[mask]))
    if va is None or vb is None:
        return {
            **base,
            "passed": False,
            "reason": f"guardrail {g.metric} {where} cannot be computed (one class only, or no probabilities)",
        }
    regression = (vb - va) if HIGHER_IS_BETTER.get(g.metric, True) else (va - vb)
    ok = bool(regression <= g.max_regression)
    reason = (
        f"guardrail {g.metric} {where}: challenger {va:.6g} vs champion {vb:.6g} "
        f"({'within' if ok else 'regresses beyond'} {g.max_regression:g})"
    )
    return {
        **base,
        "passed": ok,
        "challenger": va,
        "champion": vb,
        "regression": regression,
        "reason": reason,
    }
