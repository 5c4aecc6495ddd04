"""Retraining as a pipeline: plain-function steps, a content-addressed step cache.

>>> # from keel.pipeline import step, pipeline
>>> # retrain = pipeline("churn-retrain", [load, split, train, evaluate])
>>> # retrain.run(params={"lr": 0.05}).steps   # each step's run, status, cached flag, output
"""

from __future__ import annotations

from keel.pipeline.execute import PipelineRun, StepFailed, StepResult, run_pipeline
from keel.pipeline.steps import Pipeline, Step, pipeline, step

__all__ = [
    "Pipeline",
    "PipelineRun",
    "Step",
    "StepFailed",
    "StepResult",
    "pipeline",
    "run_pipeline",
    "step",
]
