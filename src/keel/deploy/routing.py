"""Which arm answers a request: a hash of the sticky key, so a customer always meets the same one."""

from __future__ import annotations

import hashlib
import random

__all__ = ["arm_for", "bucket"]

_SCALE = float(2**64)


def bucket(key: str, salt: str) -> float:
    """A stable number in [0, 1) for ``key`` (the same in every process, replica and restart).

    >>> 0.0 <= bucket("customer-42", "d1") < 1.0
    True
    """
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def arm_for(key: str | None, share: float, salt: str) -> str:
    """``"challenger"`` for a ``share`` of keys (or of requests, without a key), else ``"champion"``."""
    u = bucket(key, salt) if key is not None else random.random()  # noqa: S311 - routing, not security
    return "challenger" if u < share else "champion"
