"""Generated tables with known drift: 25 features, drift injected into exactly five."""

from __future__ import annotations

import numpy as np
import pandas as pd

DRIFTED = ["mean_shift", "variance", "subtle_shift", "cat_frequency", "cat_new"]
CATS = list("abcde")
PROBS = [0.4, 0.25, 0.15, 0.1, 0.1]


def table(n: int, seed: int, drift: bool) -> pd.DataFrame:
    """20 numeric and 5 categorical columns; with ``drift``, the five in DRIFTED change."""
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    cols["mean_shift"] = rng.normal(1.0 if drift else 0.0, 1.0, n)
    cols["variance"] = rng.normal(0.0, 1.5 if drift else 1.0, n)
    cols["subtle_shift"] = rng.normal(0.1 if drift else 0.0, 1.0, n)
    for i in range(17):
        cols[f"num_{i:02d}"] = rng.normal(i, 1 + i / 10, n) if i % 3 else rng.exponential(2, n)
    freq = [0.3, 0.3, 0.2, 0.1, 0.1] if drift else PROBS
    cols["cat_frequency"] = rng.choice(CATS, n, p=freq)
    if drift:
        cols["cat_new"] = rng.choice([*CATS, "f"], n, p=[0.36, 0.23, 0.14, 0.09, 0.09, 0.09])
    else:
        cols["cat_new"] = rng.choice(CATS, n, p=PROBS)
    for i in range(3):
        cols[f"cat_{i}"] = rng.choice(CATS, n, p=PROBS)
    return pd.DataFrame(cols)


def error_stream(n: int, change: int, seed: int, before: float = 0.1, after: float = 0.2):
    rng = np.random.default_rng(seed)
    p = np.where(np.arange(n) < change, before, after)
    return (rng.random(n) < p).astype(float)
