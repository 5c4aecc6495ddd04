"""A small served world: a churn model with two sklearn versions, a constant and a failing one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

import keel
from keel.workspace import Workspace


class Boom(keel.PythonModel):
    """A model whose every prediction raises (a broken challenger)."""

    def predict(self, inputs: Any) -> Any:
        raise RuntimeError("boom: the challenger is broken")


def churn_frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n),
            "monthly": rng.normal(70, 20, n).round(2),
            "plan": rng.choice(["basic", "pro", "max"], n),
        }
    )
    y = ((X.tenure < 12) & (X.monthly > 70)).astype(int).to_numpy()
    return X, y


def churn_model(C: float, seed: int = 0) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = churn_frame(seed=seed)
    encode = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
    )
    return make_pipeline(encode, LogisticRegression(C=C, max_iter=500)).fit(X, y)


def register_churn(ws: Workspace, *, broken: bool = True) -> None:
    """churn v1, v2 (sklearn pipelines), v3 (raises, when ``broken``); v1 is the champion."""
    from keel.registry.versions import promote

    X, _ = churn_frame()
    with keel.start_run(workspace=ws, capture_code=False) as run:
        run.log_model(churn_model(1.0), "churn", input_example=X.head(5))
        run.log_model(churn_model(0.001), "churn", input_example=X.head(5))
        if broken:
            run.log_model(Boom(), "churn", input_example=X.head(5))
    promote(ws, "churn", 1)


ROW = {"tenure": 3, "monthly": 90.5, "plan": "pro"}
