"""What `keel evaluate`, `keel gate` and `keel drift` import: only what their path needs.

Start-up is most of a short command's time (bench/startup.py), and almost all of it is
imports. A scikit-learn model needs scikit-learn; it does not need skops (its load cache
holds what skops rebuilt), plotly (no --report) or dask (which skops's list of trusted
types drags in). Drift on files inside dataset versions reads them as Arrow: no pandas,
scikit-learn or scipy.stats.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import keel

WATCHED = ("skops", "plotly", "dask", "pandas", "sklearn", "scipy.stats", "jinja2")

PROBE = (
    "import json, sys\n"
    "from keel.cli.main import main\n"
    "code = 0\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    f"loaded = [m for m in {WATCHED!r} if m in sys.modules]\n"
    "print(json.dumps({'exit': code, 'loaded': loaded}), file=sys.stderr)\n"
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from sklearn.linear_model import LogisticRegression

    tmp = tmp_path_factory.mktemp("startup")
    rng = np.random.default_rng(3)
    for folder, names in {"churn": ["train.csv"], "holdout": ["test.csv", "current.csv"]}.items():
        (tmp / folder).mkdir()
        for name in names:
            x = rng.normal(size=(400, 2)) + (1.5 if name == "current.csv" else 0.0)
            y = (x[:, 0] + rng.normal(size=400) > 0).astype(int)
            pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y}).to_csv(
                tmp / folder / name, index=False
            )
    ws = keel.init(tmp / "ws")
    keel.data.add(tmp / "churn", name="churn", workspace=ws)
    keel.data.add(tmp / "holdout", name="holdout", workspace=ws)
    train = pd.read_csv(tmp / "churn" / "train.csv")
    for c in (1.0, 0.01):
        with keel.start_run(workspace=ws, capture_code=False) as run:
            run.use("churn@v1")
            model = LogisticRegression(C=c).fit(train[["a", "b"]], train.y)
            run.log_model(model, "churn", input_example=train[["a", "b"]].head(3))
    yield tmp / "ws"


def _probe(root: Path, *args: str) -> tuple[int, set[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=root, capture_output=True, text=True, timeout=120
    )
    doc = json.loads(out.stderr.strip().splitlines()[-1])
    return doc["exit"], set(doc["loaded"])


VALUE = "tp=120,fp=-15,fn=-80,tn=0"


def test_evaluate_and_gate_load_the_model_without_skops_plotly_or_dask(root: Path) -> None:
    common = ["--data", "holdout@v1:test.csv", "--target", "y", "--value", VALUE, "--json"]
    code, loaded = _probe(root, "evaluate", "churn/v1", *common)
    assert code == 0 and "sklearn" in loaded
    assert not loaded & {"skops", "plotly", "dask", "jinja2"}, loaded
    code, loaded = _probe(root, "gate", "churn/v2", "--against", "churn/v1", *common)
    assert code in (0, 1) and "sklearn" in loaded
    assert not loaded & {"skops", "plotly", "dask", "jinja2"}, loaded


def test_a_report_is_what_brings_plotly(root: Path) -> None:
    code, loaded = _probe(
        root, "evaluate", "churn/v1", "--data", "holdout@v1:test.csv", "--target", "y",
        "--report", str(root / "eval.html"),
    )  # fmt: skip
    assert code == 0 and "plotly" in loaded and (root / "eval.html").exists()


def test_drift_on_files_of_dataset_versions_reads_arrow_only(root: Path) -> None:
    for reference in ("churn@v1:train.csv", "churn/v1"):
        code, loaded = _probe(root, "drift", reference, "holdout@v1:current.csv", "--json")
        assert code == 1  # the current month is shifted
        assert not loaded & {"pandas", "sklearn", "scipy.stats", "plotly", "skops"}, (
            reference,
            loaded,
        )
