"""Model references and alias names.

``churn`` (the latest version), ``churn/v4`` (or ``churn/4``), ``churn@champion``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keel.errors import BadName, BadRef
from keel.names import check_name

__all__ = ["ALIAS_RULE", "ModelRef", "check_alias", "parse_model_ref"]

ALIAS_RULE = "1 to 64 characters from a-z, 0-9, '_' and '-' (not 'latest', not vN)"
_ALIAS = re.compile(r"[a-z0-9_-]{1,64}")
_VERSION = re.compile(r"v?([1-9][0-9]{0,9})")


def check_alias(alias: str) -> str:
    """Return ``alias`` when it follows :data:`ALIAS_RULE`, else raise BadName.

    >>> check_alias("champion")
    'champion'
    """
    if not _ALIAS.fullmatch(alias) or alias == "latest" or re.fullmatch(r"v[0-9]+", alias):
        raise BadName("alias", alias, ALIAS_RULE)
    return alias


@dataclass(frozen=True)
class ModelRef:
    name: str
    number: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.number is not None:
            return f"{self.name}/v{self.number}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def parse_model_ref(text: str) -> ModelRef:
    """Parse ``churn``, ``churn/v4``, ``churn/4`` or ``churn@champion``.

    >>> parse_model_ref("churn/v4"), parse_model_ref("churn@champion").alias
    (ModelRef(name='churn', number=4, alias=None), 'champion')
    """
    expected = "NAME, NAME/vN or NAME@ALIAS"
    name, sep, rest = text.partition("/") if "/" in text else text.partition("@")
    try:
        check_name(name, "model name")
    except BadName:
        raise BadRef(f"invalid model reference {text!r}: expected {expected}") from None
    if not sep:
        return ModelRef(name)
    if sep == "/":
        m = _VERSION.fullmatch(rest)
        if m is None:
            raise BadRef(f"invalid model version {rest!r} in {text!r}: expected vN, like v4")
        return ModelRef(name, number=int(m.group(1)))
    if rest == "latest":
        return ModelRef(name)
    try:
        return ModelRef(name, alias=check_alias(rest))
    except BadName:
        raise BadRef(f"invalid alias {rest!r} in {text!r}: expected {ALIAS_RULE}") from None
