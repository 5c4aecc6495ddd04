"""What ``/feedback`` accepts as an outcome: the served model's own kind of answer.

One outcome of the wrong kind (``"benign"`` or ``0.7`` for a model whose
classes are 0 and 1) used to be stored, and then made ``keel monitor`` report
a target type change and ``keel deploy status`` an accuracy of 0. So an
outcome is checked against the signatures of the models being served:

- a classifier (its signature names its classes) takes one of its classes; a
  number matches a numeric class by value (``1.0`` is class ``1``, and so is
  ``true``), a label matches a class by its text;
- a regressor (a numeric output and no classes) takes a finite number;
- a model whose signature says neither takes a finite number, a boolean or a
  non-empty label, as before.

>>> from keel.registry.signature import Signature
>>> binary = ExpectedOutcome.of_signatures([Signature(output={"classes": [0, 1]})])
>>> binary.check(1), binary.check(True), binary.check(0.7), binary.check("benign")
(1.0, 1.0, None, None)
>>> str(binary)
'one of the classes 0, 1'
>>> labels = ExpectedOutcome.of_signatures([Signature(output={"classes": ["benign", "malignant"]})])
>>> labels.check("benign"), labels.check(0)
('benign', None)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from keel.registry.signature import Signature, SignatureError

__all__ = ["ExpectedOutcome", "OutcomesRefused"]


class OutcomesRefused(SignatureError):
    """Some outcomes of a request are not what the model answers; none of them were stored."""

    def __init__(self, problems: list[dict[str, Any]], received: int) -> None:
        super().__init__(problems)
        self.accepted = 0
        self.refused = received
        self.args = (
            f"{len(problems)} of {received} outcomes are not what the model answers; none were "
            "stored: " + "; ".join(str(p["message"]) for p in problems[:3]),
        )


def _number(value: Any) -> float | None:
    """A finite JSON number (a boolean counts as 1 or 0), else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


@dataclass(frozen=True)
class ExpectedOutcome:
    """The outcomes a served model can be told: its classes, numbers, or (unknown) anything."""

    classes: tuple[Any, ...] | None  # a classifier's classes
    numeric: bool | None  # True: a regressor; None: the signature does not say

    @classmethod
    def of_signatures(cls, signatures: Iterable[Signature | None]) -> ExpectedOutcome:
        classes: list[Any] = []
        numeric: bool | None = None
        for sig in signatures:
            output = sig.output if sig is not None else {}
            if output.get("classes"):
                classes += [c for c in output["classes"] if c not in classes]
            elif str(output.get("dtype", "")).startswith(("float", "int")):
                numeric = True
        if classes:
            return cls(tuple(classes), None)
        return cls(None, numeric)

    @classmethod
    def of(cls, models: Sequence[Any]) -> ExpectedOutcome:
        """From loaded models (anything with a ``signature``)."""
        return cls.of_signatures(getattr(m, "signature", None) for m in models)

    def check(self, value: Any) -> float | str | None:
        """What to store for ``value`` (a number or a label), or None when it is refused."""
        if self.classes is not None:
            number = _number(value)
            for c in self.classes:
                if isinstance(c, int | float):  # bool classes too: true is 1
                    if number is not None and number == float(c):
                        return number
                elif isinstance(value, str) and value == str(c):
                    return value
            return None
        number = None if isinstance(value, bool) and self.numeric else _number(value)
        if number is not None:
            return number
        if self.numeric is None and isinstance(value, str) and value:
            return value
        return None

    def __str__(self) -> str:
        if self.classes is not None:
            return "one of the classes " + ", ".join(map(str, self.classes))
        if self.numeric:
            return "a finite number (the model is a regressor)"
        return "a finite number, a boolean or a label"
