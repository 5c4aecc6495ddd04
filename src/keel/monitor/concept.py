"""Concept drift: realized performance per time chunk, and change detection on the error
stream (river's ADWIN or Page–Hinkley) with the point where the change was detected.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> errors = np.concatenate([rng.random(3000) < 0.1, rng.random(3000) < 0.3])
>>> points = ADWIN().detect(errors)
>>> 3000 <= points[0] < 3500
True
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from keel.monitor.detector import Parametrized, check_level, check_positive

__all__ = ["ADWIN", "ChangeDetector", "ConceptDrift", "PageHinkley", "performance_by_chunk"]


class ChangeDetector(Parametrized):
    """A streaming change detector: ``detect(stream)`` gives the indices where it fired."""

    name: ClassVar[str]

    def _make(self) -> Any:
        raise NotImplementedError

    def detect(self, stream: Any) -> list[int]:
        """Indices (0-based, into ``stream``) at which a change was detected."""
        values = np.asarray(stream, dtype=float)
        if values.ndim != 1:
            from keel.errors import InvalidInput

            raise InvalidInput(f"a stream must be one-dimensional, not of shape {values.shape}")
        detector = self._make()
        found = []
        update = detector.update
        for i, v in enumerate(values.tolist()):
            if v != v:  # NaN: an element with no outcome yet
                continue
            update(v)
            if detector.drift_detected:
                found.append(i)
        return found


class ADWIN(ChangeDetector):
    """Adaptive windowing (Bifet & Gavaldà 2007): fires when two sub-windows' means differ
    by more than chance allows at confidence ``delta``; checks every ``clock`` elements."""

    name: ClassVar[str] = "adwin"

    def __init__(self, delta: float = 0.002, clock: int = 32) -> None:
        self.delta = check_level("delta", delta)
        self.clock = int(check_positive("clock", clock))

    def _make(self) -> Any:
        from river.drift import ADWIN as RiverADWIN

        return RiverADWIN(delta=self.delta, clock=self.clock)  # type: ignore[no-untyped-call]


class PageHinkley(ChangeDetector):
    """Page–Hinkley: cumulative deviation from the running mean beyond ``threshold``."""

    name: ClassVar[str] = "page_hinkley"

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 0.9999,
    ) -> None:
        self.min_instances = int(check_positive("min_instances", min_instances))
        self.delta = check_positive("delta", delta)
        self.threshold = check_positive("threshold", threshold)
        self.alpha = check_level("alpha", alpha)

    def _make(self) -> Any:
        from river.drift import PageHinkley as RiverPH

        return RiverPH(
            min_instances=self.min_instances,
            delta=self.delta,
            threshold=self.threshold,
            alpha=self.alpha,
            mode="up",
        )


@dataclass
class ConceptDrift:
    """Realized performance per chunk and the change points of the error stream."""

    metric: str
    chunks: list[dict[str, Any]] = field(default_factory=list)
    detector: dict[str, Any] = field(default_factory=dict)
    detections: list[int] = field(default_factory=list)
    rows: int = 0

    @property
    def first_detection(self) -> int | None:
        return self.detections[0] if self.detections else None

    @property
    def drifted(self) -> bool:
        return bool(self.detections)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "chunks": self.chunks,
            "detector": self.detector,
            "detections": self.detections[:100],
            "first_detection": self.first_detection,
            "drifted": self.drifted,
            "rows": self.rows,
        }


def performance_by_chunk(
    truth: Any,
    predicted: Any,
    task: str,
    *,
    chunks: int = 10,
    detector: ChangeDetector | None = None,
) -> ConceptDrift:
    """Accuracy (classification, Wilson interval) or mean absolute error (regression, normal
    interval) per chunk of rows in order, and change points of the error stream."""
    y = np.asarray(truth)
    p = np.asarray(predicted)
    if task == "classification":
        errors = (y != p).astype(float)
        metric = "accuracy"
    else:
        errors = np.abs(y.astype(float) - p.astype(float))
        metric = "mae"
    from keel.evaluation.proportion import wilson  # here: keel.evaluation is 25 ms to import

    n = len(errors)
    result = ConceptDrift(metric=metric, rows=n)
    bounds = np.linspace(0, n, min(chunks, max(n, 1)) + 1).astype(int)
    for lo, hi in itertools.pairwise(bounds):
        e = errors[lo:hi]
        if not len(e):
            continue
        if task == "classification":
            value = 1 - float(e.mean())
            ci_lo, ci_hi = wilson(len(e) - e.sum(), len(e), z=1.96)
        else:
            value = float(e.mean())
            se = float(e.std(ddof=1) / np.sqrt(len(e))) if len(e) > 1 else float("nan")
            ci_lo, ci_hi = value - 1.96 * se, value + 1.96 * se
        result.chunks.append(
            {
                "start": int(lo),
                "end": int(hi),
                "rows": int(hi - lo),
                metric: value,
                "interval": [ci_lo, ci_hi],
            }
        )
    if task == "classification":
        det = detector or ADWIN()
        result.detector = det.to_dict()
        result.detections = det.detect(errors)
    return result
