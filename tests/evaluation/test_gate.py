"""The gate's statistics on synthetic data whose truth is known.

Scores follow the binormal model (see ``helpers.binormal_scores``): with
separation ``d``, balanced classes and p = sigmoid(s - d/2), the AUC is
Phi(d / sqrt 2) and, at the threshold 0.5, each class is decided correctly
with probability q = Phi(d / 2). The value per decision of a matrix is then
0.5 * (q*tp + (1-q)*fn + q*tn + (1-q)*fp). Models read their score from a
column, so each seed is a fresh draw of data and no training is needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, rankdata
from sklearn.metrics import roc_auc_score
from sqlalchemy import select

import keel
from keel.errors import InvalidInput
from keel.evaluation import ValueMatrix, delong
from keel.store.db import dataset_versions, evaluations, model_versions
from keel.store.db import models as model_names
from keel.workspace import Workspace
from tests.evaluation.helpers import (
    ColumnScore,
    ColumnValue,
    accuracy_of,
    auc_of,
    binormal_scores,
    count_evaluations,
    log,
)

VALUE = ValueMatrix(tp=120.0, fp=-15.0, fn=-80.0, tn=0.0)
COLUMNS = ["a", "b", "c"]
# Champion AUC 0.760, challenger 0.856; value per decision 26.8 vs 35.6 (a margin of 8.8,
# about 5.5 standard errors at 3,000 rows: the power of a 95% one-sided test is > 0.9999).
D_CHAMPION, D_CHALLENGER = 1.0, 1.5
REGIONS = ["north", "south", "east", "west"]


def value_per_row(d: float, value: ValueMatrix = VALUE) -> float:
    q = accuracy_of(d)
    return 0.5 * (q * value.tp + (1 - q) * value.fn + q * value.tn + (1 - q) * value.fp)


def world(
    seed: int,
    n: int,
    d_a: float | np.ndarray,
    d_b: float | np.ndarray,
    rho: float = 0.5,
    same: bool = False,
) -> pd.DataFrame:
    """Column a is the challenger's score, b the champion's (c = a when ``same``)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    region = np.array(REGIONS)[rng.integers(0, 4, size=n)]
    common = rng.normal(size=n)  # shared by both models: the comparison is paired
    a = binormal_scores(rng, y, d_a, common, rho)
    b = binormal_scores(rng, y, d_b, common, rho)
    return pd.DataFrame({"a": a, "b": b, "c": a if same else b, "region": region, "y": y})


@dataclass
class Models:
    ws: Workspace
    challenger: str  # reads a
    champion: str  # reads b
    twin: str  # reads c (a copy of a, or of b)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Models]:
    ws = keel.init(tmp_path_factory.mktemp("gate") / "ws")
    example = world(0, 10, 1.0, 1.0)[COLUMNS]
    refs = [log(ws, ColumnScore(col), "m", example) for col in COLUMNS]
    yield Models(ws, *refs)
    ws.close()


def decide(m: Models, df: pd.DataFrame, challenger: str, champion: str, **kw: object):  # type: ignore[no-untyped-def]
    return keel.gate(
        challenger, against=champion, data=df, target="y", workspace=m.ws, record=False, **kw
    )


def primary_kwargs(metric: str) -> dict[str, object]:
    return {"outcome": VALUE} if metric == "value" else {"metric": "auc"}


# -- (a) a challenger better by a known margin is promoted -------------------------------------


@pytest.mark.parametrize(("metric", "n"), [("value", 3000), ("value", 6000), ("auc", 3000)])
def test_a_truly_better_challenger_is_promoted(models: Models, metric: str, n: int) -> None:
    known = (
        value_per_row(D_CHALLENGER) - value_per_row(D_CHAMPION)
        if metric == "value"
        else auc_of(D_CHALLENGER) - auc_of(D_CHAMPION)
    )
    promoted, improvements = 0, []
    for seed in range(40):
        df = world(seed, n, D_CHALLENGER, D_CHAMPION)
        d = decide(models, df, models.challenger, models.champion, **primary_kwargs(metric))
        assert d.primary["metric"] == metric
        promoted += d.promote
        improvements.append(d.primary["improvement"])
        assert d.primary["lower_bound"] < d.primary["improvement"]
    assert promoted >= 38, f"promoted {promoted} of 40"  # >= 95%
    # The estimates are unbiased: their mean over 40 seeds is the known margin
    # (to within 4 standard errors of that mean).
    spread = np.std(improvements, ddof=1) / np.sqrt(len(improvements))
    assert abs(np.mean(improvements) - known) < 4 * spread, (np.mean(improvements), known)


def test_the_point_estimates_are_the_known_truth(models: Models) -> None:
    df = world(7, 200_000, D_CHALLENGER, D_CHAMPION)
    d = decide(models, df, models.challenger, models.champion, outcome=VALUE)
    assert d.primary["challenger"] == pytest.approx(value_per_row(D_CHALLENGER), abs=0.6)
    assert d.primary["champion"] == pytest.approx(value_per_row(D_CHAMPION), abs=0.6)
    assert d.primary["method"] == "paired normal"
    d = decide(models, df, models.challenger, models.champion, metric="auc")
    assert d.primary["challenger"] == pytest.approx(auc_of(D_CHALLENGER), abs=0.004)
    assert d.primary["champion"] == pytest.approx(auc_of(D_CHAMPION), abs=0.004)
    assert d.primary["method"] == "DeLong paired test"


def test_min_improvement_above_the_margin_rejects(models: Models) -> None:
    margin = value_per_row(D_CHALLENGER) - value_per_row(D_CHAMPION)
    df = world(3, 3000, D_CHALLENGER, D_CHAMPION)
    assert decide(models, df, models.challenger, models.champion, outcome=VALUE).promote
    policy = {"primary": {"metric": "value", "min_improvement": 2 * margin}}
    d = decide(models, df, models.challenger, models.champion, outcome=VALUE, policy=policy)
    assert not d.promote
    assert "not clearly above" in d.reasons[0]


# -- (b) no real improvement: promoted at most at the stated rate ------------------------------


@pytest.mark.parametrize(("metric", "n"), [("value", 3000), ("value", 6000), ("auc", 3000)])
def test_identical_models_are_never_promoted(models: Models, metric: str, n: int) -> None:
    for seed in range(40):
        df = world(seed, n, D_CHAMPION, D_CHAMPION, same=True)
        d = decide(models, df, models.twin, models.challenger, **primary_kwargs(metric))
        assert d.primary["improvement"] == 0
        assert not d.promote, d.reasons


# Two different models of equal expected quality (the same separation, independent noise).
# Nominal false-promotion rate 5%: over 60 seeds that is 3 expected; we allow up to 7,
# which a correct 5% gate exceeds with probability binom.sf(7, 60, 0.05) < 1%, while a gate
# that ignored the noise (promoting whenever the estimate is positive) would promote ~30.
ALLOWED_FALSE_PROMOTIONS = 7


@pytest.mark.parametrize(("metric", "n"), [("value", 3000), ("value", 6000), ("auc", 3000)])
def test_equally_good_models_are_rarely_promoted(models: Models, metric: str, n: int) -> None:
    assert binom.sf(ALLOWED_FALSE_PROMOTIONS, 60, 0.05) < 0.01
    promoted, positive = 0, 0
    for seed in range(60):
        df = world(1000 + seed, n, D_CHAMPION, D_CHAMPION)
        d = decide(models, df, models.challenger, models.champion, **primary_kwargs(metric))
        promoted += d.promote
        positive += d.primary["improvement"] > 0
    assert promoted <= ALLOWED_FALSE_PROMOTIONS, f"promoted {promoted} of 60"
    assert 15 <= positive <= 45  # the estimates do scatter around zero: the test is not vacuous


def test_p_values_are_roughly_uniform_under_the_null(models: Models) -> None:
    ps = []
    for seed in range(60):
        df = world(2000 + seed, 6000, D_CHAMPION, D_CHAMPION)
        ps.append(
            decide(models, df, models.challenger, models.champion, outcome=VALUE).primary["p_value"]
        )
    ps_arr = np.array(ps)
    assert 0.3 < ps_arr.mean() < 0.7
    assert (ps_arr < 0.5).sum() >= 15 and (ps_arr > 0.5).sum() >= 15


# -- (c) guardrails: winning on average does not excuse losing a slice --------------------------


def guardrail_world(seed: int, n: int = 4000) -> pd.DataFrame:
    """The challenger is much better except on region=north, where it is much worse."""
    rng = np.random.default_rng([seed, 1])  # a stream independent of world()'s
    region = np.array(REGIONS)[rng.integers(0, 4, size=n)]
    d_a = np.where(region == "north", 0.3, 2.0)
    df = world(seed, n, d_a, D_CHAMPION)
    df["region"] = region
    return df


GUARD = {"metric": "auc", "slice": "region=north", "max_regression": 0.05}


@pytest.mark.parametrize("metric", ["value", "auc"])
def test_a_challenger_that_loses_a_guardrail_slice_is_rejected(models: Models, metric: str) -> None:
    known_loss = auc_of(D_CHAMPION) - auc_of(0.3)  # ~0.18, far beyond the 0.05 bound
    for seed in range(5):
        df = guardrail_world(seed)
        free = decide(models, df, models.challenger, models.champion, **primary_kwargs(metric))
        assert free.promote, free.reasons  # on average it wins, clearly
        policy = {"primary": {"metric": metric}, "guardrails": [GUARD]}
        d = decide(
            models, df, models.challenger, models.champion, policy=policy, **primary_kwargs(metric)
        )
        assert not d.promote
        assert d.primary["lower_bound"] > 0  # the primary metric passed; the guardrail rejected
        [guard] = d.guardrails
        assert guard["passed"] is False
        assert guard["slice"] == "region=north"
        assert guard["rows"] == (df.region == "north").sum()
        assert guard["regression"] == pytest.approx(known_loss, abs=0.06)
        failing = [r for r in d.reasons if "guardrail" in r]
        assert len(failing) == 1 and "region=north" in failing[0]
        # A looser bound than the loss lets it through.
        loose = {**policy, "guardrails": [{**GUARD, "max_regression": 0.5}]}
        ok = decide(
            models, df, models.challenger, models.champion, policy=loose, **primary_kwargs(metric)
        )
        assert ok.promote, ok.reasons
        assert ok.guardrails[0]["passed"] is True


def test_guardrails_overall_on_expressions_and_on_lower_is_better_metrics(models: Models) -> None:
    df = guardrail_world(11)
    policy = {
        "primary": {"metric": "auc"},
        "guardrails": [
            {"metric": "auc", "max_regression": 0.0},  # overall: the challenger is better
            {"metric": "brier", "slice": "region = north", "max_regression": 0.01},
            {"metric": "accuracy", "slice": "region != north", "max_regression": 0.0},
        ],
    }
    d = decide(models, df, models.challenger, models.champion, policy=policy)
    overall, north_brier, rest = d.guardrails
    assert overall["passed"] and rest["passed"]
    assert not north_brier["passed"]
    assert north_brier["regression"] > 0.01  # brier is lower-is-better: the loss is positive
    assert not d.promote
    assert any("region = north" in r and "brier" in r for r in d.reasons)


def test_a_guardrail_slice_too_small_to_judge_rejects(models: Models) -> None:
    df = world(5, 3000, D_CHALLENGER, D_CHAMPION)
    df.loc[df.index[:10], "region"] = "tiny"
    policy = {"guardrails": [{"metric": "auc", "slice": "region=tiny", "max_regression": 0.5}]}
    d = decide(models, df, models.challenger, models.champion, policy=policy)
    assert d.primary["lower_bound"] > 0
    assert not d.promote
    assert any("region=tiny" in r and "10 rows" in r for r in d.reasons)


def test_a_guardrail_slice_that_does_not_exist_is_invalid(models: Models) -> None:
    df = world(5, 500, D_CHALLENGER, D_CHAMPION)
    policy = {"guardrails": [{"metric": "auc", "slice": "region=nowhere", "max_regression": 0.5}]}
    with pytest.raises(InvalidInput, match="nowhere"):
        decide(models, df, models.challenger, models.champion, policy=policy)
    policy = {"guardrails": [{"metric": "auc", "slice": "tenure < 3", "max_regression": 0.5}]}
    with pytest.raises(InvalidInput, match="tenure"):
        decide(models, df, models.challenger, models.champion, policy=policy)


def test_a_value_guardrail_is_judged_or_refused(models: Models) -> None:
    df = world(5, 3000, D_CHALLENGER, D_CHAMPION)  # better everywhere
    policy = {"guardrails": [{"metric": "value", "slice": "region=north", "max_regression": 1.0}]}
    try:
        d = decide(models, df, models.challenger, models.champion, outcome=VALUE, policy=policy)
    except InvalidInput:
        return  # refusing the policy up front is also a fine answer
    assert d.promote, d.reasons


# -- DeLong -----------------------------------------------------------------------------------


def rank_auc(y: np.ndarray, s: np.ndarray) -> float:
    m = int(y.sum())
    r = rankdata(s)
    return float((r[y == 1].sum() - m * (m + 1) / 2) / (m * (len(y) - m)))


@pytest.mark.parametrize("tied", [False, True], ids=["continuous", "tied"])
def test_delong_standard_error_matches_the_bootstrap(tied: bool) -> None:
    df = world(42, 2000, D_CHALLENGER, D_CHAMPION)
    y, a, b = df.y.to_numpy(), df.a.to_numpy(), df.b.to_numpy()
    if tied:  # coarse scores: many ties, handled by midranks
        a, b = np.round(a, 1), np.round(b, 1)
    auc_a, auc_b, se = delong(y, a, b)
    assert auc_a == pytest.approx(roc_auc_score(y, a))
    assert auc_b == pytest.approx(roc_auc_score(y, b))
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(600):
        i = rng.integers(0, len(y), size=len(y))
        diffs.append(rank_auc(y[i], a[i]) - rank_auc(y[i], b[i]))
    boot_se = float(np.std(diffs, ddof=1))
    assert se == pytest.approx(boot_se, rel=0.2), (se, boot_se)


def test_delong_of_identical_scores_has_no_variance_and_needs_both_classes() -> None:
    df = world(1, 500, 1.0, 1.0)
    auc_a, auc_b, se = delong(df.y, df.a, df.a)
    assert auc_a == auc_b and se == 0
    with pytest.raises(InvalidInput, match="both classes"):
        delong(np.zeros(10), np.arange(10.0), np.arange(10.0))


# -- the record -------------------------------------------------------------------------------


def test_a_gate_decision_is_recorded_with_both_models_and_the_data(
    models: Models, tmp_path: Path
) -> None:
    df = world(9, 3000, D_CHALLENGER, D_CHAMPION)
    df.to_csv(tmp_path / "g.csv", index=False)
    version = keel.data.add(tmp_path / "g.csv", name="g", workspace=models.ws)
    before = count_evaluations(models.ws)
    d = keel.gate(
        models.challenger,
        against=models.champion,
        data=version.ref,
        target="y",
        outcome=VALUE,
        workspace=models.ws,
    )
    assert d.promote
    assert count_evaluations(models.ws) == before + 1
    with models.ws.db.read() as conn:
        row = conn.execute(select(evaluations).where(evaluations.c.id == d.id)).one()
        numbers = dict(
            conn.execute(
                select(model_versions.c.id, model_versions.c.number)
                .join(model_names, model_names.c.id == model_versions.c.model_id)
                .where(model_names.c.name == "m")
            ).all()
        )
        dv = conn.execute(
            select(dataset_versions.c.id).where(dataset_versions.c.number == version.number)
        ).scalar_one()
    assert row.kind == "gate"
    assert numbers[row.model_version_id] == 1  # m/v1, the challenger
    assert numbers[row.against_version_id] == 2  # m/v2, the champion
    assert row.dataset_version_id == dv
    summary = json.loads(row.summary)
    assert summary["promote"] is True and summary["metric"] == "value"
    stored = json.loads(models.ws.objects.get(row.result_oid))
    assert stored["primary"]["improvement"] == pytest.approx(d.primary["improvement"])
    assert stored["policy"]["value"] == VALUE.to_dict()
    json.dumps(d.to_dict(), allow_nan=False)


def test_a_model_against_itself_is_invalid(models: Models) -> None:
    df = world(1, 100, 1.0, 1.0)
    with pytest.raises(InvalidInput, match="same version"):
        decide(models, df, models.challenger, models.challenger)


def test_min_improvement_for_rmse_is_in_rmse_units(ws: Workspace) -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(scale=5.0, size=400)
    # Off by exactly 0.1 and 0.2 on every row: RMSE 0.1 against 0.2, an improvement of 0.1
    # with no noise at all (in MSE: 0.01 against 0.04, an improvement of 0.03).
    df = pd.DataFrame({"t": truth, "good": truth + 0.1, "bad": truth + 0.2})
    good = log(ws, ColumnValue("good"), "r", df[["good", "bad"]])
    bad = log(ws, ColumnValue("bad"), "r", df[["good", "bad"]])
    policy = {"primary": {"metric": "rmse", "min_improvement": 0.05}}
    d = keel.gate(good, against=bad, data=df, target="t", policy=policy, workspace=ws)
    assert d.primary["challenger"] == pytest.approx(0.1)
    assert d.primary["champion"] == pytest.approx(0.2)
    assert d.primary["improvement"] == pytest.approx(0.1)
    assert d.promote


# -- the verdict is a real boolean, whatever the metric ---------------------------------------


@pytest.mark.parametrize("metric", ["auc", "logloss", "value", "rmse"])
def test_the_verdict_is_a_python_bool_for_every_metric(
    models: Models, tmp_path: Path, metric: str
) -> None:
    df = world(11, 2000, D_CHAMPION, D_CHALLENGER)
    if metric == "rmse":
        ws = keel.init(tmp_path / "ws")
        rng = np.random.default_rng(3)
        y = rng.normal(size=2000)
        frame = pd.DataFrame({"a": y + rng.normal(0.5, size=2000), "b": y, "y": y})
        a = log(ws, ColumnValue("a"), "r", frame[["a", "b"]])
        b = log(ws, ColumnValue("b"), "r", frame[["a", "b"]])
        decision = keel.gate(a, against=b, data=frame, target="y", workspace=ws, metric="rmse")
        ws_used, ref = ws, a
    else:
        kw = {"outcome": VALUE} if metric == "value" else {"metric": metric}
        # the data gives the challenger's column (a) the weaker separation: a rejection
        decision = keel.gate(
            models.challenger, against=models.champion, data=df, target="y", workspace=models.ws,
            **kw,
        )  # fmt: skip
        ws_used, ref = models.ws, models.challenger
    assert type(decision.promote) is bool and decision.promote is False
    assert json.loads(json.dumps(decision.to_dict(), default=str))["promote"] is False
    from keel.evaluation.records import evaluations_of
    from keel.registry.versions import resolve_model

    recorded = next(e for e in evaluations_of(ws_used, resolve_model(ws_used, ref)) if e["id"] == decision.id)
    assert recorded["summary"]["promote"] is False


def test_records_written_with_a_string_verdict_still_read_as_rejections(models: Models) -> None:
    """Before the fix a numpy verdict was stored as the string "False"; it reads as False."""
    from sqlalchemy import update

    from keel.evaluation.records import evaluations_of
    from keel.registry.lineage import lineage
    from keel.registry.versions import resolve_model

    df = world(12, 1500, D_CHAMPION, D_CHALLENGER)
    decision = keel.gate(
        models.champion, against=models.challenger, data=df, target="y", workspace=models.ws,
        metric="auc",
    )  # fmt: skip
    old = json.dumps({"promote": "False", "metric": "auc", "reasons": decision.reasons})
    models.ws.db.write(
        lambda conn: conn.execute(
            update(evaluations).where(evaluations.c.id == decision.id).values(summary=old)
        )
    )
    mv = resolve_model(models.ws, models.champion)
    [row] = [e for e in evaluations_of(models.ws, mv) if e["id"] == decision.id]
    assert row["summary"]["promote"] is False
    graph = lineage(models.ws, models.champion)
    [node] = [n for n in graph["nodes"] if n["kind"] == "gate" and n["ref"] == decision.id[:8]]
    assert node["promote"] is False
