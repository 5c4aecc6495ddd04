"""One model call: the answer, and what the log keeps of it (number, label, score).

The server scores each request with it; the monitor scores a model's training data
with it, so the predictions it compares are made the same way.

A classifier that can give probabilities is asked once, with
``predict_proba``: the answer is the most probable class, exactly what
``predict`` returns for scikit-learn, LightGBM and XGBoost classifiers, and the
positive class's probability is logged as the score (for online AUC, and for
label-free performance estimation later). SVC, whose ``predict`` does not
follow its probabilities, is asked with ``predict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.registry import LoadedModel

__all__ = ["Scored", "Scorer"]

_INCONSISTENT = frozenset({"SVC", "NuSVC"})


@dataclass
class Scored:
    answers: list[Any]  # what the caller gets, JSON-ready
    numbers: list[float | None]  # the log's ``prediction`` column
    labels: list[str | None] | None  # the log's ``label`` column, for non-numeric answers
    scores: list[float | None] | None  # probability of the positive class (binary)


class Scorer:
    """Predicts with a loaded model and shapes the result for the response and the log."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.ref = loaded.ref
        self.version = loaded.version.number
        model = loaded.model
        final = model.steps[-1][1] if hasattr(model, "steps") else model
        self._classes: Any = None
        if (
            loaded.version.flavor == "sklearn"
            and hasattr(model, "predict_proba")
            and type(final).__name__ not in _INCONSISTENT
        ):
            try:
                self._classes = model.classes_
            except AttributeError:
                self._classes = None
        self._predict = loaded.flavor.predict

    def __call__(self, frame: Any) -> Scored:
        import numpy as np

        if self._classes is not None:
            proba = self.loaded.model.predict_proba(frame)
            answers = self._classes[np.argmax(proba, axis=1)]
            scores = proba[:, 1].tolist() if proba.shape[1] == 2 else None
        else:
            answers = np.asarray(self._predict(self.loaded.model, frame))
            scores = None
        if answers.ndim > 1 and answers.shape[1] == 1:
            answers = answers[:, 0]
        if answers.dtype.kind in "biuf" and answers.ndim == 1:
            values = answers.tolist()
            return Scored(values, [float(v) for v in values], None, scores)
        if answers.ndim == 1:
            values = [v.item() if hasattr(v, "item") else v for v in answers]
            return Scored(values, [None] * len(values), [str(v) for v in values], scores)
        values = answers.tolist()  # several outputs per row: answered whole, logged as text
        return Scored(values, [None] * len(values), [str(v) for v in values], scores)
