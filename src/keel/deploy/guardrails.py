"""Guardrails: bounds a challenger must keep while it meets traffic; a breach sends it all back.

A guardrail file is TOML, every key optional (a ``[guardrails]`` table or
top-level keys)::

    max_error_rate = 0.01          # the challenger's failed predictions / its requests
    max_p99_latency_ms = 50        # the challenger's 99th-percentile latency
    max_prediction_drift = 0.2     # KS statistic (numbers) or total variation (labels)
                                   # between the challenger's and the champion's predictions
    min_outcome_delta = -0.02      # breached once the always-valid interval of
                                   # (challenger - champion) on the online outcome
                                   # metric lies wholly below this
    min_requests = 100             # judge nothing before the challenger has this many

The same :func:`check` judges a server's in-memory windows and the log lake
(``keel deploy watch``), so both decide alike.

>>> g = Guardrails.parse({"max_error_rate": 0.05, "min_requests": 10})
>>> w = ArmWindow()
>>> for i in range(20):
...     w.record(latency_ms=1.0, error=i % 2 == 0, prediction=None)
>>> [b.guardrail for b in check(g, ArmWindow(), w)]
['max_error_rate']
"""

from __future__ import annotations

import math
import threading
import tomllib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput

__all__ = ["ArmWindow", "Breach", "GuardrailError", "Guardrails", "check", "prediction_drift"]


class GuardrailError(InvalidInput):
    """A guardrail file or value that is not what is expected."""


_KEYS = {
    "max_error_rate": (0.0, 1.0),
    "max_p99_latency_ms": (0.0, math.inf),
    "max_prediction_drift": (0.0, 1.0),
    "min_outcome_delta": (-math.inf, math.inf),
    "min_requests": (1, math.inf),
}


@dataclass(frozen=True)
class Guardrails:
    max_error_rate: float | None = None
    max_p99_latency_ms: float | None = None
    max_prediction_drift: float | None = None
    min_outcome_delta: float | None = None
    min_requests: int = 100

    @classmethod
    def default(cls) -> Guardrails:
        """Without a file: a challenger failing more than 5% of its requests goes back."""
        return cls(max_error_rate=0.05, min_requests=50)

    @classmethod
    def parse(cls, doc: Mapping[str, Any], source: str = "guardrails") -> Guardrails:
        body = doc.get("guardrails", doc) if isinstance(doc.get("guardrails"), dict) else doc
        unknown = sorted(set(body) - set(_KEYS))
        if unknown:
            raise GuardrailError(
                f"{source}: unknown guardrail {unknown[0]!r}; expected one of {', '.join(_KEYS)}"
            )
        values: dict[str, Any] = {}
        for key, raw in body.items():
            if raw is None:  # unset (TOML has no null; a stored record's to_dict does)
                continue
            lo, hi = _KEYS[key]
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
                raise GuardrailError(f"{source}: {key} must be a finite number, not {raw!r}")
            if not lo <= raw <= hi:
                raise GuardrailError(f"{source}: {key} must be between {lo} and {hi}, not {raw!r}")
            if key == "min_requests" and int(raw) != raw:
                raise GuardrailError(f"{source}: min_requests must be a whole number, not {raw!r}")
            values[key] = int(raw) if key == "min_requests" else float(raw)
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> Guardrails:
        p = Path(path)
        try:
            doc = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise GuardrailError(f"guardrail file {p} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise GuardrailError(f"cannot read guardrail file {p}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise GuardrailError(f"guardrail file {p} is not valid TOML: {exc}") from None
        return cls.parse(doc, str(p))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Breach:
    guardrail: str
    limit: float
    observed: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ArmWindow:
    """What one arm did recently: counts since it started, and the last ``size`` observations."""

    def __init__(self, size: int = 5000) -> None:
        self.requests = 0
        self.errors = 0
        self.latencies: deque[float] = deque(maxlen=size)
        self.predictions: deque[Any] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, *, latency_ms: float, error: bool, prediction: Any) -> None:
        with self._lock:
            self.requests += 1
            self.errors += error
            self.latencies.append(latency_ms)
            if prediction is not None:
                self.predictions.append(prediction)

    def record_many(self, latency_ms: float, predictions: Sequence[Any]) -> None:
        with self._lock:
            self.requests += 1
            self.latencies.append(latency_ms)
            self.predictions.extend(predictions)

    def snapshot(self) -> tuple[int, int, list[float], list[Any]]:
        with self._lock:
            return self.requests, self.errors, list(self.latencies), list(self.predictions)


def prediction_drift(champion: Sequence[Any], challenger: Sequence[Any]) -> float | None:
    """KS statistic between numeric predictions, total variation distance between labels."""
    if len(champion) < 20 or len(challenger) < 20:
        return None
    import numpy as np

    a, b = np.asarray(champion), np.asarray(challenger)
    if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
        from scipy.stats import ks_2samp

        return float(ks_2samp(a.astype(float), b.astype(float)).statistic)
    labels = set(a.tolist()) | set(b.tolist())
    return 0.5 * sum(abs(float(np.mean(a == v)) - float(np.mean(b == v))) for v in labels)


def check(
    g: Guardrails,
    champion: ArmWindow,
    challenger: ArmWindow,
    outcome_interval: tuple[float, float] | None = None,
) -> list[Breach]:
    """The guardrails the challenger breaks now (empty before ``min_requests``)."""
    requests, errors, latencies, predictions = challenger.snapshot()
    if requests < g.min_requests:
        return []
    out: list[Breach] = []
    if g.max_error_rate is not None and errors / requests > g.max_error_rate:
        rate = errors / requests
        out.append(
            Breach(
                "max_error_rate",
                g.max_error_rate,
                rate,
                f"challenger error rate {rate:.2%} > {g.max_error_rate:.2%} ({errors}/{requests})",
            )
        )
    if g.max_p99_latency_ms is not None and latencies:
        import numpy as np

        p99 = float(np.percentile(latencies, 99))
        if p99 > g.max_p99_latency_ms:
            out.append(
                Breach(
                    "max_p99_latency_ms",
                    g.max_p99_latency_ms,
                    p99,
                    f"challenger p99 latency {p99:.1f} ms > {g.max_p99_latency_ms:g} ms",
                )
            )
    if g.max_prediction_drift is not None:
        drift = prediction_drift(champion.snapshot()[3], predictions)
        if drift is not None and drift > g.max_prediction_drift:
            out.append(
                Breach(
                    "max_prediction_drift",
                    g.max_prediction_drift,
                    drift,
                    f"challenger predictions drifted from the champion's: {drift:.3f} > {g.max_prediction_drift:g}",
                )
            )
    if g.min_outcome_delta is not None and outcome_interval is not None:
        lo, hi = outcome_interval
        if hi < g.min_outcome_delta:
            out.append(
                Breach(
                    "min_outcome_delta",
                    g.min_outcome_delta,
                    hi,
                    f"challenger's online outcome is worse than the champion's beyond {g.min_outcome_delta:g} "
                    f"(always-valid interval of the difference [{lo:.4g}, {hi:.4g}])",
                )
            )
    return out
