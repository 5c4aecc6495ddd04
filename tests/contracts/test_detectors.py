"""One conformance suite for every drift detector (river-style: parameters stored)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import keel.monitor as monitor
from keel.errors import InvalidInput
from keel.monitor import ChangeDetector, Detector
from keel.monitor.columns import column_from_profile, column_from_series

DETECTORS: list[Detector] = [
    monitor.KolmogorovSmirnov(),
    monitor.Wasserstein(),
    monitor.PSI(),
    monitor.JensenShannon(),
    monitor.ChiSquare(),
    monitor.NewCategories(),
    monitor.MissingRate(),
]
CHANGE: list[ChangeDetector] = [monitor.ADWIN(), monitor.PageHinkley()]


def test_every_exported_detector_is_in_the_suite() -> None:
    bases = (Detector, ChangeDetector)
    exported = {
        obj
        for obj in (getattr(monitor, n) for n in monitor.__all__)
        if isinstance(obj, type) and issubclass(obj, bases) and obj not in bases
    }
    assert exported == {type(d) for d in [*DETECTORS, *CHANGE]}


def _columns(kind: str, shift: float, seed: int, n: int = 4000) -> tuple[object, object]:
    rng = np.random.default_rng(seed)
    if kind == "numeric":
        a = pd.Series(rng.normal(size=n))
        b = pd.Series(rng.normal(shift, 1, n))
        b[: int(n * min(shift, 0.5))] = np.nan  # drift also moves the missing rate
    else:
        a = pd.Series(rng.choice(list("abc"), n, p=[0.5, 0.3, 0.2]))
        p = [0.5, 0.3, 0.2] if shift == 0 else [0.2, 0.3, 0.3, 0.2]
        b = pd.Series(rng.choice(list("abcd")[: len(p)], n, p=p)).astype(object)
        b[: int(n * min(shift, 0.5))] = None
    return column_from_series(a, kind), column_from_series(b, kind)


def _kind(d: Detector) -> str:
    return d.kinds[0]


@pytest.mark.parametrize("detector", DETECTORS + CHANGE, ids=lambda d: type(d).__name__)
def test_parameters_are_stored_under_their_names(detector: object) -> None:
    params = detector.params()  # type: ignore[attr-defined]
    rebuilt = type(detector)(**params)
    assert rebuilt == detector and rebuilt.params() == params
    assert (
        repr(detector)
        == f"{type(detector).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")"
    )
    assert eval(repr(detector), vars(monitor)) == detector  # repr is its config
    assert detector.to_dict()["name"] == type(detector).__name__  # type: ignore[attr-defined]


@pytest.mark.parametrize("detector", DETECTORS + CHANGE, ids=lambda d: type(d).__name__)
def test_clone_changes_only_what_it_is_told(detector: object) -> None:
    first = next(iter(detector.params()))  # type: ignore[attr-defined]
    value = detector.params()[first]  # type: ignore[attr-defined]
    new = value * 0.5 if isinstance(value, float) else value + 1
    twin = detector.clone(**{first: new})  # type: ignore[attr-defined]
    assert getattr(twin, first) == new and twin is not detector
    assert detector.params()[first] == value  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput, match="no parameter"):
        detector.clone(nope=1)  # type: ignore[attr-defined]


@pytest.mark.parametrize("detector", DETECTORS + CHANGE, ids=lambda d: type(d).__name__)
def test_bad_parameters_are_refused(detector: object) -> None:
    first = next(iter(detector.params()))  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput, match=first):
        detector.clone(**{first: -1})  # type: ignore[attr-defined]


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
@pytest.mark.parametrize("seed", [0, 1])
def test_same_distribution_is_not_drift(detector: Detector, seed: int) -> None:
    ref, cur = _columns(_kind(detector), 0.0, seed)
    score = detector.score(ref, cur)
    assert not score.drifted, score
    assert np.isfinite(score.statistic) and score.statistic >= 0
    assert score.p_value is None or 0 <= score.p_value <= 1


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
def test_a_large_change_is_drift(detector: Detector) -> None:
    ref, cur = _columns(_kind(detector), 1.0, 0)
    score = detector.score(ref, cur)
    assert score.drifted, score
    assert score.to_dict()["drifted"] is True


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
def test_identical_columns_score_no_difference(detector: Detector) -> None:
    ref, _ = _columns(_kind(detector), 0.0, 0)
    score = detector.score(ref, ref)
    assert score.statistic == pytest.approx(0.0, abs=1e-9)
    assert not score.drifted


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
def test_a_profile_reference_agrees_with_the_table(detector: Detector, tmp_path) -> None:
    from keel.data.profile import profile_files

    kind = _kind(detector)
    rng = np.random.default_rng(9)
    if kind == "numeric":
        frame = pd.DataFrame({"c": rng.normal(size=20_000)})
        cur = column_from_series(pd.Series(rng.normal(0.3, 1, 20_000)), kind)
    else:
        frame = pd.DataFrame({"c": rng.choice(list("abc"), 20_000, p=[0.5, 0.3, 0.2])})
        cur = column_from_series(
            pd.Series(rng.choice(list("abcd"), 20_000, p=[0.3, 0.3, 0.2, 0.2])), kind
        )
    path = tmp_path / "ref.parquet"
    frame.to_parquet(path)
    profile, err = profile_files([("ref.parquet", str(path))])
    assert err is None and profile is not None
    from_profile = column_from_profile(profile["tables"][0]["columns"]["c"])
    from_table = column_from_series(frame["c"], kind)
    a, b = detector.score(from_table, cur), detector.score(from_profile, cur)  # type: ignore[arg-type]
    assert a.drifted == b.drifted
    assert b.statistic == pytest.approx(a.statistic, rel=0.15, abs=0.01)


@pytest.mark.parametrize("detector", CHANGE, ids=lambda d: type(d).__name__)
def test_change_detectors_are_quiet_on_a_steady_stream_and_fire_on_a_step(
    detector: ChangeDetector,
) -> None:
    rng = np.random.default_rng(0)
    steady = (rng.random(5000) < 0.1).astype(float)
    step = np.concatenate([steady, (rng.random(5000) < 0.6).astype(float)])
    assert not [p for p in detector.detect(step) if p < 3000]
    assert any(5000 <= p < 5500 for p in detector.detect(step))
    with pytest.raises(InvalidInput, match="one-dimensional"):
        detector.detect(np.zeros((2, 2)))
