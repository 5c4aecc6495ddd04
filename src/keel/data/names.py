"""Dataset names and version references.

A version is named ``churn@v3``, ``churn`` (its head) or by a digest prefix
(at least 6 hex characters, optionally ``churn@1f3a9c``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keel.errors import BadName, BadRef
from keel.names import NAME_RULE, check_name

__all__ = ["NAME_RULE", "VersionRef", "check_name", "parse_ref", "split_file_ref"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_NUMBER = re.compile(r"v([1-9][0-9]{0,9})")
_DIGEST = re.compile(r"[0-9a-f]{6,64}")


@dataclass(frozen=True)
class VersionRef:
    """A parsed reference: a name with a number, a digest prefix, or neither (the head)."""

    name: str | None
    number: int | None = None
    digest_prefix: str | None = None

    def __str__(self) -> str:
        if self.number is not None:
            return f"{self.name}@v{self.number}"
        if self.digest_prefix is not None:
            return f"{self.name}@{self.digest_prefix}" if self.name else self.digest_prefix
        return str(self.name)


def split_file_ref(text: str) -> tuple[str, str | None]:
    """A file inside a dataset version, ``churn@v2:test.csv``, as ``("churn@v2", "test.csv")``;
    anything else as ``(text, None)``. The file part may be empty: the caller refuses it.

    >>> split_file_ref("churn@v2:test.csv")
    ('churn@v2', 'test.csv')
    >>> split_file_ref("data/test.csv")
    ('data/test.csv', None)
    """
    ref, colon, inner = text.partition(":")
    if colon and "@" in ref and "/" not in ref:
        return ref, inner
    return text, None


def parse_ref(text: str) -> VersionRef:
    """Parse a version reference.

    >>> parse_ref("churn@v3")
    VersionRef(name='churn', number=3, digest_prefix=None)
    >>> parse_ref("churn")
    VersionRef(name='churn', number=None, digest_prefix=None)
    >>> parse_ref("1f3a9c0d")
    VersionRef(name='1f3a9c0d', number=None, digest_prefix='1f3a9c0d')
    """
    expected = "NAME, NAME@vN (N from 1) or a digest prefix of 6 to 64 hex characters"
    if not text:
        raise BadRef(f"empty version reference: expected {expected}")
    if "@" in text:
        name, _, version = text.partition("@")
        try:
            check_name(name)
        except BadName:
            raise BadRef(f"invalid version reference {text!r}: expected {expected}") from None
        if m := _NUMBER.fullmatch(version):
            return VersionRef(name, number=int(m.group(1)))
        if _DIGEST.fullmatch(version):
            return VersionRef(name, digest_prefix=version)
        raise BadRef(
            f"invalid version {version!r} in {text!r}: expected vN (like v3) or a digest prefix"
        )
    if _DIGEST.fullmatch(text):
        # Hex is a valid name too: the resolver tries the name first, then the digest.
        return VersionRef(text, digest_prefix=text)
    try:
        return VersionRef(check_name(text))
    except BadName:
        raise BadRef(f"invalid version reference {text!r}: expected {expected}") from None
