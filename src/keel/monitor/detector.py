"""The one contract every drift detector follows.

As in river, a detector stores each constructor argument under the same name,
so ``repr``, ``clone`` and ``to_dict`` come free and a detector can be rebuilt
from its configuration. A distribution detector compares a reference column
with a current one and returns a :class:`Score`: a statistic, a p-value when
the detector is a test, and its own verdict against its threshold or level.

>>> from keel.monitor import Wasserstein
>>> d = Wasserstein(threshold=0.1)
>>> d
Wasserstein(threshold=0.1)
>>> d.clone(threshold=0.2).threshold
0.2
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from keel.errors import InvalidInput

__all__ = ["Detector", "Parametrized", "Score"]


class Parametrized:
    """Constructor arguments stored under their own names: repr, clone, config, equality."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def params(self) -> dict[str, Any]:
        """The constructor arguments this object was built with."""
        return {name: getattr(self, name) for name in self._param_names()}

    def clone(self, **changes: Any) -> Self:
        """A fresh object with the same parameters, except ``changes``."""
        unknown = set(changes) - set(self._param_names())
        if unknown:
            raise InvalidInput(
                f"{type(self).__name__} has no parameter {sorted(unknown)[0]!r}; "
                f"its parameters: {', '.join(self._param_names())}"
            )
        return type(self)(**{**self.params(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return {"name": type(self).__name__, **self.params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params() == other.params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.params().items()))))


@dataclass
class Score:
    """What one detector found for one column."""

    detector: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            **({"details": self.details} if self.details else {}),
        }


class Detector(Parametrized):
    """A distribution detector: ``score(reference, current) -> Score``.

    ``kinds`` names the column kinds it judges; ``test`` says whether its
    verdict is a p-value against ``alpha`` (a test) or a statistic against
    ``threshold`` (an effect size).
    """

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    test: ClassVar[bool] = False

    def score(self, reference: Any, current: Any) -> Score:
        raise NotImplementedError

    def accepts(self, column: Any) -> bool:
        return getattr(column, "kind", None) in self.kinds


def check_level(name: str, value: float, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` when ``low < value <= high``, else InvalidInput naming the parameter."""
    v = float(value)
    if not low < v <= high:
        raise InvalidInput(f"invalid {name} {value!r}: expected a number above {low} up to {high}")
    return v


def check_positive(name: str, value: float) -> float:
    v = float(value)
    if not v > 0 or v != v or v == float("inf"):
        raise InvalidInput(f"invalid {name} {value!r}: expected a positive finite number")
    return v
