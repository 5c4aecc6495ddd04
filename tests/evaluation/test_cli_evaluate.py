"""``keel evaluate`` and ``keel gate`` through the real executable."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import keel
from keel.evaluation import ValueMatrix
from keel.workspace import Workspace
from tests.conftest import run_keel
from tests.evaluation.helpers import count_evaluations, log

VALUE_TEXT = "tp=120,fp=-15,fn=-80,tn=0"
VALUE = ValueMatrix.parse(VALUE_TEXT)


@dataclass
class World:
    root: Path
    ws: Workspace
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("cli")
    root = tmp / "ws"
    ws = keel.init(root)
    rng = np.random.default_rng(0)
    n = 1500
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": x,
            "z": rng.normal(size=n),
            "region": rng.choice(["north", "south", "east"], size=n),
        }
    )
    df["y"] = (x + rng.normal(scale=0.7, size=n) > 0.2).astype(int)
    df.to_csv(tmp / "d.csv", index=False)
    keel.data.add(tmp / "d.csv", name="d", workspace=ws)
    df.drop(columns=["x"]).to_csv(tmp / "no_x.csv", index=False)
    keel.data.add(tmp / "no_x.csv", name="no-x", workspace=ws)
    df.assign(y=np.where(df.y == 1, "yes", "no")).to_csv(tmp / "text_y.csv", index=False)
    keel.data.add(tmp / "text_y.csv", name="text-y", workspace=ws)
    strong = LogisticRegression().fit(df[["x", "z"]], df.y)
    weak = LogisticRegression().fit(df[["z"]], df.y)
    assert log(ws, strong, "m", df[["x", "z"]]) == "m/v1"
    assert log(ws, weak, "m", df[["z"]]) == "m/v2"
    yield World(root, ws, df)
    ws.close()


def keel_ok(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    done = run_keel(*args, cwd=world.root)
    assert done.returncode == 0, done.stderr
    return done


EVALUATE = ("evaluate", "m/v1", "--data", "d@v1", "--target", "y")


def test_evaluate_json(world: World) -> None:
    before = count_evaluations(world.ws)
    done = keel_ok(
        world,
        *EVALUATE,
        "--value",
        VALUE_TEXT,
        "--threshold",
        "optimize",
        "--slice",
        "region",
        "--json",
    )
    doc = json.loads(done.stdout)
    expected = keel.evaluate(
        "m/v1",
        data="d@v1",
        target="y",
        outcome=VALUE,
        threshold="optimize",
        slices=["region"],
        workspace=world.ws,
        record=False,
    )
    assert doc["model"] == "m/v1" and doc["data"] == "d@v1" and doc["rows"] == 1500
    assert doc["metrics"] == pytest.approx(expected.metrics)
    assert 0.8 < doc["metrics"]["auc"] < 1
    assert doc["threshold"] == expected.threshold
    assert doc["threshold"] != 0.5  # this matrix makes a false negative costly: the cut is low
    assert expected.outcome is not None
    assert doc["outcome"]["total"] == pytest.approx(expected.outcome.total)
    assert doc["outcome"]["total_interval"][0] <= doc["outcome"]["total"]
    assert doc["outcome"]["total"] <= doc["outcome"]["total_interval"][1]
    assert sorted(doc["slices"]) == ["region=east", "region=north", "region=south"]
    assert sum(s["rows"] for s in doc["slices"].values()) == 1500
    assert count_evaluations(world.ws) == before + 1
    assert doc["id"] in {r.id for r in _evaluation_rows(world)}


def _evaluation_rows(world: World) -> list:  # type: ignore[type-arg]
    from sqlalchemy import select

    from keel.store.db import evaluations

    with world.ws.db.read() as conn:
        return list(conn.execute(select(evaluations)).all())


def test_evaluate_text(world: World) -> None:
    done = keel_ok(world, *EVALUATE, "--value", VALUE_TEXT, "--slice", "x > 1 and region = north")
    out = done.stdout
    assert "m/v1 on d@v1" in out
    assert "auc" in out and "value: total" in out
    assert "x > 1 and region = north" in out


def test_evaluate_report_is_self_contained(world: World, tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    keel_ok(
        world,
        *EVALUATE,
        "--value",
        VALUE_TEXT,
        "--threshold",
        "optimize",
        "--slice",
        "region",
        "--report",
        str(report),
    )
    text = report.read_text()
    assert text.startswith("<!doctype html>")
    # plotly's JavaScript is inlined, once; no script is fetched from the network.
    assert len(text) > 1_000_000
    assert text.count("plotly.js v") == 1  # the library's banner: inlined exactly once
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*['\"]?(https?:)?//", text, re.I)
    assert text.count("Plotly.newPlot") >= 5  # ROC, PR, calibration, value curve, slices
    for words in (
        "m/v1 on d@v1",
        "1,500 rows",
        "Metrics",
        "Value",
        "threshold",
        "Slices",
        "region=north",
        "ROC",
        "Precision-recall",
        "Calibration",
        "Total value against the decision threshold",
    ):
        assert words in text, words
    embedded = re.search(
        r"<script type='application/json' id='keel-evaluation'>(.*?)</script>", text, re.S
    )
    assert embedded is not None


GATE = ("gate", "--data", "d@v1", "--target", "y")


def test_gate_promotes_with_exit_0(world: World) -> None:
    before = count_evaluations(world.ws)
    done = run_keel(GATE[0], "m/v1", "--against", "m/v2", *GATE[1:], "--json", cwd=world.root)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["promote"] is True
    assert doc["primary"]["metric"] == "auc"
    assert doc["primary"]["lower_bound"] > 0
    assert doc["challenger"] == "m/v1" and doc["champion"] == "m/v2"
    assert doc["reasons"] and "auc improves" in doc["reasons"][0]
    assert count_evaluations(world.ws) == before + 1


def test_gate_rejects_with_exit_1(world: World) -> None:
    done = run_keel(
        GATE[0],
        "m/v2",
        "--against",
        "m/v1",
        *GATE[1:],
        "--value",
        VALUE_TEXT,
        "--json",
        cwd=world.root,
    )
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["promote"] is False
    assert doc["primary"]["metric"] == "value"
    assert doc["primary"]["improvement"] < 0
    assert "not promoted" in doc["reasons"][0]
    text = run_keel(GATE[0], "m/v2", "--against", "m/v1", *GATE[1:], cwd=world.root)
    assert text.returncode == 1
    assert text.stdout.startswith("REJECT: m/v2 vs m/v1 on d@v1")


@pytest.mark.parametrize("metric", ["auc", "logloss", "value"])
def test_a_rejection_is_a_json_false_everywhere(world: World, metric: str) -> None:
    """`"promote": "False"` (a string) reads as true in jq and most scripts: it must be false."""
    extra = ("--value", VALUE_TEXT) if metric == "value" else ()
    done = run_keel(
        GATE[0], "m/v2", "--against", "m/v1", *GATE[1:], "--metric", metric, *extra, "--json",
        cwd=world.root,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["promote"] is False and doc["primary"]["metric"] == metric
    assert all(isinstance(g["passed"], bool) for g in doc["guardrails"])
    graph = json.loads(keel_ok(world, "lineage", "m/v2", "--json").stdout)
    gate = next(n for n in graph["nodes"] if n["kind"] == "gate" and n["ref"] == doc["id"][:8])
    assert gate["promote"] is False and gate["metric"] == metric
    text = keel_ok(world, "lineage", "m/v2").stdout
    assert f"gate {doc['id'][:8]} reject" in text


def test_gate_with_a_policy_and_a_report(world: World, tmp_path: Path) -> None:
    policy = tmp_path / "gate.toml"
    policy.write_text(
        '[primary]\nmetric = "logloss"\n\n[[guardrails]]\nmetric = "auc"\nslice = "region=north"\n'
        "max_regression = 0.0\n"
    )
    report = tmp_path / "gate.html"
    before = count_evaluations(world.ws)
    done = run_keel(
        GATE[0],
        "m/v1",
        "--against",
        "m/v2",
        *GATE[1:],
        "--policy",
        str(policy),
        "--report",
        str(report),
        "--json",
        cwd=world.root,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["primary"]["metric"] == "logloss"
    assert doc["guardrails"][0]["slice"] == "region=north" and doc["guardrails"][0]["passed"]
    assert count_evaluations(world.ws) == before + 1  # the report's evaluation is not recorded
    text = report.read_text()
    assert text.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)
    assert "Gate: PROMOTE m/v1 over m/v2" in text
    assert "logloss improves" in text
    assert "Guardrails" in text
    # the text output shows the guardrails the JSON has, passed ones too
    said = run_keel(GATE[0], "m/v1", "--against", "m/v2", *GATE[1:], "--policy", str(policy),
                    cwd=world.root)  # fmt: skip
    assert said.returncode == 0, said.stderr
    assert "guardrail auc on slice region=north: challenger" in said.stdout
    assert "(within 0)" in said.stdout


BAD = {
    "missing target": (("evaluate", "m/v1", "--data", "d@v1", "--target", "churned"), "churned"),
    "bad --value": ((*EVALUATE, "--value", "tp=120,fp=-15,fn=-80"), "tn"),
    "bad --threshold": ((*EVALUATE, "--threshold", "best"), "best"),
    "--threshold out of range": ((*EVALUATE, "--threshold", "1.5"), "1.5"),
    "optimize without --value": ((*EVALUATE, "--threshold", "optimize"), "value matrix"),
    "bad --slice": ((*EVALUATE, "--slice", "x >> 1"), "x >> 1"),
    "bad --metric": (("gate", "m/v1", "--against", "m/v2", *GATE[1:], "--metric", "gini"), "gini"),
}


BAD.update(
    {
        "evaluate, an input column missing": (
            ("evaluate", "m/v1", "--data", "no-x@v1", "--target", "y"),
            "no-x@v1 lacks 1 of the input columns m/v1 needs: 'x' (its signature: x float, z float)",
        ),
        "gate, an input column missing": (
            ("gate", "m/v1", "--against", "m/v2", "--data", "no-x@v1", "--target", "y"),
            "lacks 1 of the input columns m/v1 needs: 'x'",
        ),
        "gate, a text target for a 0/1 model": (
            ("gate", "m/v1", "--against", "m/v2", "--data", "text-y@v1", "--target", "y"),
            "target column 'y' has classes the model never saw: no, yes (it knows 0, 1)",
        ),
    }
)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_with_one_line(world: World, case: str) -> None:
    args, named = BAD[case]
    before = count_evaluations(world.ws)
    done = run_keel(*args, cwd=world.root)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("keel: error:")
    assert named in lines[0]
    assert done.stdout == ""
    assert count_evaluations(world.ws) == before


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[primary]\nconfidence = 1.2\n", "primary.confidence"),
        ("[primary]\nconfidance = 0.9\n", "primary.confidance"),
    ],
    ids=["confidence 1.2", "unknown key"],
)
def test_a_bad_policy_file_exits_2(world: World, tmp_path: Path, text: str, named: str) -> None:
    policy = tmp_path / "gate.toml"
    policy.write_text(text)
    before = count_evaluations(world.ws)
    done = run_keel(
        "gate", "m/v1", "--against", "m/v2", *GATE[1:], "--policy", str(policy), cwd=world.root
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], done.stderr
    assert count_evaluations(world.ws) == before


# -- the report in a real browser ------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt install chromium)"
)
def test_the_report_renders_in_headless_chromium(world: World, tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    keel_ok(world, *EVALUATE, "--value", VALUE_TEXT, "--slice", "region", "--report", str(report))
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    dom = done.stdout
    # plotly draws each figure as an <svg class="main-svg"> inside a .plot-container.
    assert dom.count('class="main-svg"') >= 5, dom[:2000]
    assert "plot-container" in dom


def test_lineage_of_a_dataset_version_lists_what_judged_models_on_it(world: World) -> None:
    keel_ok(world, *EVALUATE, "--json")
    gated = run_keel(GATE[0], "m/v1", "--against", "m/v2", *GATE[1:], "--json", cwd=world.root)
    assert gated.returncode in (0, 1), gated.stderr
    gate_id = json.loads(gated.stdout)["id"]
    drift = run_keel("drift", "d@v1", "d@v1", "--model", "m/v1", "--json", cwd=world.root)
    assert drift.returncode == 0, drift.stderr
    drift_id = json.loads(drift.stdout)["id"]

    graph = json.loads(keel_ok(world, "lineage", "d@v1", "--json").stdout)
    assert graph["root"] == "dataset:d@v1"
    nodes = {n["id"]: n for n in graph["nodes"]}
    edges = {(e["from"], e["to"], e["relation"]) for e in graph["edges"]}
    evaluations = [n for n in nodes.values() if n["kind"] == "evaluation"]
    assert evaluations and all(
        ("dataset:d@v1", n["id"], "evaluated on") in edges
        and ("model:m/v1", n["id"], "judged by") in edges
        for n in evaluations
    )
    gate = nodes[f"gate:{gate_id[:8]}"]
    assert ("dataset:d@v1", gate["id"], "evaluated on") in edges
    assert ("model:m/v2", gate["id"], "judged by") in edges  # the champion it was held against
    report = nodes[f"drift report:{drift_id[:8]}"]
    assert report["status"] == "no drift" and report["headline"]
    assert ("dataset:d@v1", report["id"], "reference of") in edges
    text = keel_ok(world, "lineage", "d@v1").stdout
    assert f"evaluated on: gate {gate_id[:8]}" in text
    assert f"reference of: drift report {drift_id[:8]} no drift" in text
    # another dataset version lists none of them
    other = json.loads(keel_ok(world, "lineage", "no-x@v1", "--json").stdout)
    assert [n["kind"] for n in other["nodes"]] == ["dataset"]


def test_the_positive_class_is_chosen_and_said(world: World) -> None:
    default = json.loads(keel_ok(world, *EVALUATE, "--json").stdout)
    assert default["positive_class"] == 1 and default["positive_class_chosen"] is False
    assert "positive class: 1 (the last class; --positive-class chooses)" in keel_ok(
        world, *EVALUATE
    ).stdout
    chosen = json.loads(keel_ok(world, *EVALUATE, "--positive-class", "0", "--json").stdout)
    assert chosen["positive_class"] == 0 and chosen["positive_class_chosen"] is True
    # the scores are of class 0 now: the same ranking seen from the other side
    assert chosen["metrics"]["auc"] == pytest.approx(default["metrics"]["auc"])
    from sklearn.metrics import recall_score

    p1 = LogisticRegression().fit(world.frame[["x", "z"]], world.frame.y).predict_proba(
        world.frame[["x", "z"]]
    )[:, 0]
    expected = recall_score((world.frame.y == 0).astype(int), (p1 >= 0.5).astype(int))
    assert chosen["metrics"]["recall"] == pytest.approx(expected)
    assert chosen["metrics"]["recall"] != pytest.approx(default["metrics"]["recall"])
    # in Python, and stored with the evaluation
    ev = keel.evaluate("m/v1", data="d@v1", target="y", positive_class=0, workspace=world.ws)
    assert ev.to_dict()["positive_class"] == 0
    # the gate judges on it too
    done = run_keel("gate", "m/v1", "--against", "m/v2", "--data", "d@v1", "--target", "y",
                    "--positive-class", "0", "--json", cwd=world.root)  # fmt: skip
    assert json.loads(done.stdout)["policy"]["positive_class"] == 0
    bad = run_keel(*EVALUATE, "--positive-class", "benign", cwd=world.root)
    assert bad.returncode == 2
    assert "positive class 'benign' is not a class of m/v1: its classes are 0, 1" in bad.stderr
