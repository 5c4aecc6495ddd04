"""Shared pieces of the evaluation tests: score-column models and synthetic data.

The models are ``keel.PythonModel`` subclasses that read a precomputed score
from a column of the data, so a gate over many seeds needs no training: the
statistics of the scores are set by the data generator, where they are known.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sqlalchemy import func, select

import keel
from keel.store.db import evaluations
from keel.workspace import Workspace


class ColumnScore(keel.PythonModel):
    """A binary classifier whose probability of class 1 is the value of one column."""

    classes_ = np.array([0, 1])

    def __init__(self, column: str) -> None:
        self.column = column

    def predict_proba(self, inputs: Any) -> Any:
        p = np.asarray(inputs[self.column], dtype=float)
        return np.column_stack([1.0 - p, p])

    def predict(self, inputs: Any) -> Any:
        return (np.asarray(inputs[self.column], dtype=float) >= 0.5).astype(int)


class ColumnValue(keel.PythonModel):
    """A regression model whose prediction is the value of one column."""

    def __init__(self, column: str) -> None:
        self.column = column

    def predict(self, inputs: Any) -> Any:
        return np.asarray(inputs[self.column], dtype=float)


def log(ws: Workspace, model: Any, name: str, example: pd.DataFrame) -> str:
    """Log ``model`` as a new version of ``name``; returns its reference (``name/vN``)."""
    with keel.start_run(workspace=ws, capture_code=False) as run:
        version = run.log_model(model, name, input_example=example.head())
    return version.ref


def count_evaluations(ws: Workspace) -> int:
    with ws.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(evaluations)).scalar_one())


def sigmoid(z: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-z))


def binormal_scores(
    rng: np.random.Generator, y: np.ndarray, d: Any, common: np.ndarray, rho: float
) -> np.ndarray:
    """Probabilities from the binormal model: s = d*y + e, e ~ N(0, 1), corr(e, common) = rho.

    With p = sigmoid(s - d/2) and balanced classes: AUC = Phi(d / sqrt 2) and, at the
    threshold 0.5, each class is decided correctly with probability Phi(d / 2).
    ``d`` may be a scalar or one separation per row.
    """
    d = np.broadcast_to(np.asarray(d, dtype=float), y.shape)
    e = rho * common + np.sqrt(1 - rho**2) * rng.normal(size=len(y))
    return sigmoid(d * y + e - d / 2)


def auc_of(d: float) -> float:
    return float(norm.cdf(d / np.sqrt(2)))


def accuracy_of(d: float) -> float:
    return float(norm.cdf(d / 2))
