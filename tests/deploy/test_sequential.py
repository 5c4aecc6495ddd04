"""The always-valid test: its level holds under repeated looks, and it finds real differences."""

from __future__ import annotations

import numpy as np
import pytest

from keel.deploy import msprt


def _looks(seed: int, effect: float, looks: range) -> list[str]:
    rng = np.random.default_rng(seed)
    a = rng.binomial(1, 0.5, looks.stop).astype(float)
    b = rng.binomial(1, 0.5 + effect, looks.stop).astype(float)
    return [msprt(a[:n], b[:n]).decision for n in looks]


def test_level_holds_when_peeking_after_every_batch():
    """An A/A test looked at 40 times: the always-valid interval rarely excludes zero at any look,
    while the fixed-horizon interval read the same way cries wolf far more often."""
    looks = range(100, 4001, 100)
    sequential, fixed = 0, 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        a = rng.binomial(1, 0.5, looks.stop).astype(float)
        b = rng.binomial(1, 0.5, looks.stop).astype(float)
        results = [msprt(a[:n], b[:n]) for n in looks]
        sequential += any(r.decision != "inconclusive" for r in results)
        fixed += any(not (r.fixed_interval[0] <= 0 <= r.fixed_interval[1]) for r in results)
    assert sequential <= 8  # alpha 0.05, with room for sampling noise over 100 seeds
    assert fixed > sequential + 10


def test_finds_a_real_difference_and_its_sign():
    better = [_looks(s, 0.08, range(500, 8001, 500))[-1] for s in range(10)]
    assert better.count("challenger better") >= 8
    worse = [_looks(s, -0.08, range(500, 8001, 500))[-1] for s in range(10)]
    assert worse.count("champion better") >= 8


def test_interval_contains_the_estimate_and_narrows():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 20000), rng.normal(0.05, 1, 20000)
    small, large = msprt(a[:500], b[:500]), msprt(a, b)
    for r in (small, large):
        assert r.interval[0] <= r.difference <= r.interval[1]
        assert r.fixed_interval[0] >= r.interval[0]  # always-valid is wider than fixed
    assert (large.interval[1] - large.interval[0]) < (small.interval[1] - small.interval[0]) / 4


@pytest.mark.parametrize(
    ("a", "b", "decision"),
    [
        ([], [1.0, 2.0], "not enough data"),
        ([1.0], [1.0, 2.0], "not enough data"),
        ([1.0, 1.0], [1.0, 1.0], "inconclusive"),
        ([0.0, 0.0], [1.0, 1.0], "challenger better"),
        ([1.0, float("nan"), 1.0], [1.0, 1.0], "inconclusive"),
    ],
)
def test_degenerate_inputs(a, b, decision):
    assert msprt(a, b).decision == decision
