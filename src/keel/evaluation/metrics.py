"""Point metrics from scikit-learn, chosen by task; users add their own as plain functions.

A custom metric is ``fn(y_true, y_pred, **context) -> float``; ``context`` has
``scores`` (probabilities or raw predictions) and ``rows`` (the inputs).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "CLASSIFICATION",
    "HIGHER_IS_BETTER",
    "MULTICLASS",
    "REGRESSION",
    "calibration_error",
    "class_probabilities",
    "compute_metrics",
]

CLASSIFICATION = (
    "auc",
    "logloss",
    "accuracy",
    "f1",
    "precision",
    "recall",
    "brier",
    "calibration_error",
)
REGRESSION = ("mae", "rmse", "mape", "r2")
MULTICLASS = ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro",
              "logloss", "auc_ovr")  # fmt: skip
HIGHER_IS_BETTER = {
    "auc": True,
    "logloss": False,
    "accuracy": True,
    "f1": True,
    "precision": True,
    "recall": True,
    "brier": False,
    "calibration_error": False,
    "mae": False,
    "rmse": False,
    "mape": False,
    "r2": True,
    "value": True,
    "value_per_row": True,
    "f1_macro": True,
    "f1_weighted": True,
    "precision_macro": True,
    "recall_macro": True,
    "auc_ovr": True,
}


def calibration_error(truth: Any, scores: Any, bins: int = 10) -> float:
    """Expected calibration error: the size-weighted gap between confidence and frequency."""
    import numpy as np

    t = np.asarray(truth, dtype=float)
    s = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    idx = np.minimum((s * bins).astype(int), bins - 1)
    total = np.bincount(idx, minlength=bins)
    conf = np.bincount(idx, weights=s, minlength=bins)
    freq = np.bincount(idx, weights=t, minlength=bins)
    used = total > 0
    return float(np.sum(np.abs(conf[used] - freq[used])) / len(t))


def _safe(fn: Callable[[], float]) -> float | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined metrics (one class) come back as None
            value = float(fn())
    except ValueError:  # e.g. AUC with one class present: undefined, not a crash
        return None
    return None if math.isnan(value) else value


def compute_metrics(
    task: str,
    truth: Any,
    predicted: Any,
    scores: Any | None,
    custom: Mapping[str, Callable[..., float]] | None = None,
    rows: Any | None = None,
    classes: list[Any] | None = None,
) -> dict[str, float | None]:
    """Every standard metric for ``task`` ("classification", "multiclass" or "regression"),
    plus ``custom``. Multi-class: ``truth`` and ``predicted`` are class positions in
    ``classes``, ``scores`` the probability of each class (one column each)."""
    import numpy as np
    from sklearn import metrics as m

    out: dict[str, float | None] = {}
    y = np.asarray(truth)
    if task == "multiclass":
        out.update(_multiclass(y, np.asarray(predicted), scores, list(classes or [])))
    elif task == "classification":
        p = np.asarray(predicted)
        out["accuracy"] = _safe(lambda: m.accuracy_score(y, p))
        out["f1"] = _safe(lambda: m.f1_score(y, p, zero_division=0))
        out["precision"] = _safe(lambda: m.precision_score(y, p, zero_division=0))
        out["recall"] = _safe(lambda: m.recall_score(y, p, zero_division=0))
        if scores is not None:
            s = np.asarray(scores, dtype=float)
            out["auc"] = _safe(lambda: m.roc_auc_score(y, s))
            out["logloss"] = _safe(
                lambda: m.log_loss(y, np.clip(s, 1e-15, 1 - 1e-15), labels=[0, 1])
            )
            out["brier"] = _safe(lambda: m.brier_score_loss(y, s))
            out["calibration_error"] = _safe(lambda: calibration_error(y, s))
    else:
        p = np.asarray(predicted, dtype=float)
        out["mae"] = _safe(lambda: m.mean_absolute_error(y, p))
        out["rmse"] = _safe(lambda: math.sqrt(m.mean_squared_error(y, p)))
        out["mape"] = _safe(lambda: m.mean_absolute_percentage_error(y, p))
        out["r2"] = _safe(lambda: m.r2_score(y, p))
    for name, fn in (custom or {}).items():
        out[name] = _custom(fn, y, predicted, scores, rows)
    return out


def class_probabilities(scores: Any) -> Any:
    """A multi-class model's scores as probabilities: each above zero (log loss takes their
    logarithm), each row summing to one."""
    import numpy as np

    p = np.clip(np.asarray(scores, dtype=float), 1e-15, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def _multiclass(y: Any, p: Any, scores: Any | None, classes: list[Any]) -> dict[str, float | None]:
    """Accuracy, macro and weighted F1, macro precision and recall, each class's precision
    and recall (``precision[setosa]``), log loss and one-vs-rest AUC."""
    from sklearn import metrics as m

    labels = list(range(len(classes)))
    out: dict[str, float | None] = {
        "accuracy": _safe(lambda: m.accuracy_score(y, p)),
        "f1_macro": _safe(lambda: m.f1_score(y, p, labels=labels, average="macro", zero_division=0)),
        "f1_weighted": _safe(
            lambda: m.f1_score(y, p, labels=labels, average="weighted", zero_division=0)
        ),
        "precision_macro": _safe(
            lambda: m.precision_score(y, p, labels=labels, average="macro", zero_division=0)
        ),
        "recall_macro": _safe(
            lambda: m.recall_score(y, p, labels=labels, average="macro", zero_division=0)
        ),
    }
    if scores is not None:
        s = class_probabilities(scores)
        out["logloss"] = _safe(lambda: m.log_loss(y, s, labels=labels))
        out["auc_ovr"] = _safe(lambda: m.roc_auc_score(y, s, multi_class="ovr", labels=labels))
    precision, recall, _, _ = m.precision_recall_fscore_support(
        y, p, labels=labels, zero_division=0
    )
    for i, cls in enumerate(classes):
        out[f"precision[{cls}]"] = float(precision[i])
        out[f"recall[{cls}]"] = float(recall[i])
    return out


def _custom(
    fn: Callable[..., float], y: Any, predicted: Any, scores: Any, rows: Any
) -> float | None:
    return _safe(lambda: fn(y, predicted, scores=scores, rows=rows))
