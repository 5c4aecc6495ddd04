"""Packing metric points into columnar chunks: int64 steps, float64 timestamps and values.

>>> blobs = pack([0, 1], [10.0, 11.0], [0.5, float("nan")])
>>> steps, ts, values = unpack(*blobs)
>>> steps, ts, values[0]
([0, 1], [10.0, 11.0], 0.5)
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence

__all__ = ["pack", "unpack"]

_SWAP = sys.byteorder != "little"  # chunks are little-endian on every machine


def _bytes(kind: str, values: Sequence[int] | Sequence[float]) -> bytes:
    arr = array(kind, values)
    if _SWAP:  # pragma: no cover - big-endian machines
        arr.byteswap()
    return arr.tobytes()


def _list(kind: str, blob: bytes) -> list[int] | list[float]:
    arr = array(kind)
    arr.frombytes(blob)
    if _SWAP:  # pragma: no cover
        arr.byteswap()
    return arr.tolist()


def pack(
    steps: Sequence[int], timestamps: Sequence[float], values: Sequence[float]
) -> tuple[bytes, bytes, bytes]:
    return _bytes("q", steps), _bytes("d", timestamps), _bytes("d", values)


def unpack(
    steps: bytes, timestamps: bytes, values: bytes
) -> tuple[list[int], list[float], list[float]]:
    return _list("q", steps), _list("d", timestamps), _list("d", values)  # type: ignore[return-value]
