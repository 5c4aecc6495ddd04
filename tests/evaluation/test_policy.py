"""Gate policy files: what they say, what they refuse, and the default when there is none."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import keel
from keel.errors import InvalidInput
from keel.evaluation import Guardrail, Policy, PolicyError, ValueMatrix, load_policy
from keel.workspace import Workspace
from tests.evaluation.helpers import ColumnScore, ColumnValue, count_evaluations, log

GOOD = """
[primary]
metric = "value"
min_improvement = 0.5
confidence = 0.9
threshold = 0.4
min_slice_size = 50

[value]
tp = 120.0
fp = -15
fn = -80.0
tn = 0.0

[[guardrails]]
metric = "auc"
slice = "region=north"
max_regression = 0.02

[[guardrails]]
metric = "brier"
max_regression = 0

[bootstrap]
resamples = 2000
seed = 7
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gate.toml"
    path.write_text(text)
    return path


def test_a_good_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    policy = load_policy(path)
    assert policy == Policy(
        metric="value",
        min_improvement=0.5,
        confidence=0.9,
        value=ValueMatrix(tp=120.0, fp=-15.0, fn=-80.0, tn=0.0),
        guardrails=(Guardrail("auc", 0.02, "region=north"), Guardrail("brier", 0.0, None)),
        resamples=2000,
        seed=7,
        threshold=0.4,
        min_slice_size=50,
        source=str(path),
    )
    # The same document as a dict, and a Policy passed through, are the same policy.
    as_dict = load_policy(tomllib.loads(GOOD))
    assert as_dict == Policy(**{**policy.__dict__, "source": "dict"})
    assert load_policy(policy) is policy
    doc = policy.to_dict()
    assert doc["value"] == {
        "type": "value_matrix",
        "tp": 120.0,
        "fp": -15.0,
        "fn": -80.0,
        "tn": 0.0,
    }
    assert doc["guardrails"] == [
        {"metric": "auc", "max_regression": 0.02, "slice": "region=north"},
        {"metric": "brier", "max_regression": 0.0, "slice": None},
    ]


def test_the_default_policy() -> None:
    policy = load_policy(None)
    assert policy == Policy()
    assert (policy.metric, policy.min_improvement, policy.confidence) == (None, 0.0, 0.95)
    assert (policy.guardrails, policy.threshold, policy.resamples) == ((), 0.5, 1000)
    assert load_policy({}) == Policy(source="dict")


BAD = {
    "unknown section": ('[primary]\nmetric = "auc"\n[extras]\nx = 1\n', "extras"),
    "unknown key": ("[primary]\nconfidance = 0.9\n", "primary.confidance"),
    "unknown guardrail key": (
        '[[guardrails]]\nmetric = "auc"\nmax_regression = 0.1\nbound = 2\n',
        "guardrails[0].bound",
    ),
    "string for confidence": ('[primary]\nconfidence = "high"\n', "primary.confidence"),
    "bool for a number": ("[primary]\nmin_improvement = true\n", "primary.min_improvement"),
    "float for resamples": ("[bootstrap]\nresamples = 1000.5\n", "bootstrap.resamples"),
    "string in the value matrix": ('[value]\ntp = "1"\nfp = 0\nfn = 0\ntn = 0\n', "value.tp"),
    "confidence 1.2": ("[primary]\nconfidence = 1.2\n", "primary.confidence"),
    "confidence 0.3": ("[primary]\nconfidence = 0.3\n", "primary.confidence"),
    "negative max_regression": (
        '[[guardrails]]\nmetric = "auc"\nmax_regression = -0.1\n',
        "guardrails[0].max_regression",
    ),
    "resamples 5": ("[bootstrap]\nresamples = 5\n", "bootstrap.resamples"),
    "threshold 2": ("[primary]\nthreshold = 2\n", "primary.threshold"),
    "unknown primary metric": ('[primary]\nmetric = "accuracy_at_k"\n', "accuracy_at_k"),
    "unknown guardrail metric": (
        '[[guardrails]]\nmetric = "gini"\nmax_regression = 0.1\n',
        "gini",
    ),
    "guardrail without a bound": ('[[guardrails]]\nmetric = "auc"\n', "max_regression"),
    "primary not a table": ('primary = "auc"\n', "primary"),
    "guardrails not an array": ('[guardrails]\nmetric = "auc"\n', "guardrails"),
    "not TOML": ("[primary\nmetric = auc\n", "TOML"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_is_one_clear_error(tmp_path: Path, case: str) -> None:
    text, named = BAD[case]
    with pytest.raises(PolicyError) as err:
        load_policy(write(tmp_path, text))
    assert isinstance(err.value, InvalidInput)
    assert err.value.exit_code == 2
    assert named in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        "[primary]\nmin_improvement = nan\n",
        '[[guardrails]]\nmetric = "auc"\nmax_regression = nan\n',
        "[value]\ntp = nan\nfp = 0\nfn = 0\ntn = 0\n",
    ],
    ids=["min_improvement", "max_regression", "value cell"],
)
def test_nan_is_an_impossible_value(tmp_path: Path, text: str) -> None:
    with pytest.raises(PolicyError, match="nan"):
        load_policy(write(tmp_path, text))


def test_a_value_matrix_missing_a_cell(tmp_path: Path) -> None:
    # Raised by ValueMatrix.from_dict: an InvalidInput (exit 2), though not a PolicyError.
    with pytest.raises(InvalidInput, match="tn") as err:
        load_policy(write(tmp_path, "[value]\ntp = 1\nfp = 0\nfn = 0\n"))
    assert err.value.exit_code == 2


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.toml")


# -- the default primary metric, chosen by what is given ---------------------------------------


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, size=n)
    return pd.DataFrame(
        {
            "a": np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(scale=0.2, size=n), 0, 1),
            "b": np.clip(0.5 + 0.1 * (y - 0.5) + rng.normal(scale=0.2, size=n), 0, 1),
            "y": y,
            "amount": 10 + rng.normal(size=n),
        }
    ).assign(ra=lambda d: d.amount + rng.normal(scale=0.5, size=n), rb=lambda d: d.amount + 1.0)


@pytest.fixture
def classifiers(ws: Workspace, data: pd.DataFrame) -> tuple[str, str]:
    return (
        log(ws, ColumnScore("a"), "c", data[["a", "b"]]),
        log(ws, ColumnScore("b"), "c", data[["a", "b"]]),
    )


@pytest.fixture
def regressors(ws: Workspace, data: pd.DataFrame) -> tuple[str, str]:
    return (
        log(ws, ColumnValue("ra"), "r", data[["ra", "rb"]]),
        log(ws, ColumnValue("rb"), "r", data[["ra", "rb"]]),
    )


def test_default_primary_is_value_when_a_matrix_is_given(
    ws: Workspace, data: pd.DataFrame, classifiers: tuple[str, str]
) -> None:
    value = ValueMatrix(tp=10.0, fp=-1.0, fn=-5.0, tn=0.0)
    d = keel.gate(
        classifiers[0], against=classifiers[1], data=data, target="y", outcome=value, workspace=ws
    )
    assert d.primary["metric"] == "value"
    assert d.policy["value"] == value.to_dict()
    assert d.primary["method"].startswith("paired bootstrap")


def test_default_primary_is_auc_for_classifiers(
    ws: Workspace, data: pd.DataFrame, classifiers: tuple[str, str]
) -> None:
    d = keel.gate(classifiers[0], against=classifiers[1], data=data, target="y", workspace=ws)
    assert d.primary["metric"] == "auc"
    assert d.primary["method"] == "DeLong paired test"
    assert d.policy["source"] == "default"
    assert d.policy["confidence"] == 0.95 and d.policy["min_improvement"] == 0.0


def test_default_primary_is_rmse_for_regression(
    ws: Workspace, data: pd.DataFrame, regressors: tuple[str, str]
) -> None:
    d = keel.gate(regressors[0], against=regressors[1], data=data, target="amount", workspace=ws)
    assert d.primary["metric"] == "rmse"
    assert d.primary["higher_is_better"] is False
    # Reported as RMSE, decided on squared error.
    assert d.primary["challenger"] == pytest.approx(np.sqrt(np.mean((data.ra - data.amount) ** 2)))
    assert d.primary["champion"] == pytest.approx(np.sqrt(np.mean((data.rb - data.amount) ** 2)))
    assert d.promote  # rb is off by 1.0 everywhere, ra by noise of 0.5


def test_the_policy_file_and_the_overrides(
    ws: Workspace, tmp_path: Path, data: pd.DataFrame, classifiers: tuple[str, str]
) -> None:
    path = write(tmp_path, '[primary]\nmetric = "brier"\n[value]\ntp = 1\nfp = 0\nfn = 0\ntn = 0\n')
    a, b = classifiers
    d = keel.gate(a, against=b, data=data, target="y", policy=path, workspace=ws)
    assert d.primary["metric"] == "brier"
    assert d.policy["source"] == str(path)
    d = keel.gate(a, against=b, data=data, target="y", policy=path, metric="value", workspace=ws)
    assert d.primary["metric"] == "value"  # --metric overrides the file
    assert d.policy["value"]["tp"] == 1.0  # the file's matrix
    other = ValueMatrix(tp=5.0, fp=-1.0, fn=-2.0, tn=0.0)
    d = keel.gate(
        a,
        against=b,
        data=data,
        target="y",
        policy=path,
        metric="value",
        outcome=other,
        workspace=ws,
    )
    assert d.policy["value"] == other.to_dict()  # --value overrides the file's matrix


def test_value_as_primary_without_a_matrix_is_invalid_and_records_nothing(
    ws: Workspace, data: pd.DataFrame, classifiers: tuple[str, str]
) -> None:
    with pytest.raises(InvalidInput, match="value matrix"):
        keel.gate(
            classifiers[0],
            against=classifiers[1],
            data=data,
            target="y",
            metric="value",
            workspace=ws,
        )
    assert count_evaluations(ws) == 0


def test_a_bad_policy_records_nothing(
    ws: Workspace, tmp_path: Path, data: pd.DataFrame, classifiers: tuple[str, str]
) -> None:
    path = write(tmp_path, "[primary]\nconfidence = 1.2\n")
    with pytest.raises(PolicyError, match="confidence"):
        keel.gate(
            classifiers[0], against=classifiers[1], data=data, target="y", policy=path, workspace=ws
        )
    assert count_evaluations(ws) == 0
