"""The report shows since when a feature drifted: its effect size per chunk of the current table."""

from __future__ import annotations

import numpy as np
import pandas as pd

import keel
from keel.monitor.html import render


def test_effect_size_per_chunk_shows_when_drift_began():
    rng = np.random.default_rng(0)
    n = 20_000
    reference = pd.DataFrame({"x": rng.normal(0, 1, n), "plan": rng.choice(["a", "b"], n)})
    current = pd.DataFrame({"x": rng.normal(0, 1, n), "plan": rng.choice(["a", "b"], n)})
    current.loc[n // 2 :, "x"] += 1.0  # the second half drifts
    report = keel.monitor.drift(reference, current, multivariate=False, chunks=10)
    x = report.features["x"]
    assert x.drifted and len(x.over_time) == 10
    before = [c["statistic"] for c in x.over_time[:5]]
    after = [c["statistic"] for c in x.over_time[5:]]
    assert max(before) < x.threshold < min(after)
    assert [c["first_row"] for c in x.over_time] == list(range(0, n, n // 10))
    plan = report.features["plan"]
    assert not plan.drifted and all(c["statistic"] < plan.threshold for c in plan.over_time)
    assert report.to_dict()["features"]["x"]["over_time"][9]["rows"] == n // 10
    assert "Effect size per chunk" in render(report)


def test_no_chunks_for_a_small_table():
    rng = np.random.default_rng(1)
    small = pd.DataFrame({"x": rng.normal(0, 1, 40)})
    report = keel.monitor.drift(small, small.copy(), multivariate=False)
    assert report.features["x"].over_time == []


def test_small_chunks_of_an_unchanged_table_cry_no_wolf():
    """One rule at every size: 20 chunks of 150 rows x 25 columns, 500 checks at the rule's
    0.1 % each; a last chunk too small to judge is "not enough data", never drift."""
    from tests.monitor.synthetic import table

    reference, current = table(20_000, 1, False), table(3_010, 2, False)
    report = keel.monitor.drift(reference, current, multivariate=False, chunk_size=150)
    assert not report.drifted
    flags = [c for f in report.features.values() for c in f.over_time if c["drifted"]]
    assert len(flags) <= 5, flags  # 1 % of 500; about 0.5 expected
    last = report.features["mean_shift"].over_time[-1]
    assert last["rows"] == 10 and last["status"] == "not enough data" and not last["drifted"]
    assert report.to_dict()["over_time"]["chunks"] == 21
    assert "Effect size per chunk" in render(report)  # a chunk without a statistic draws
