"""``keel.evaluate``: metrics, value with an interval, the best threshold, and slices.

>>> import keel, tempfile, numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> ws = keel.init(tempfile.mkdtemp())
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"x": rng.normal(size=400), "region": rng.choice(["n", "s"], 400)})
>>> df["y"] = (df.x + rng.normal(size=400) > 0).astype(int)
>>> with keel.start_run(workspace=ws, capture_code=False) as run:
...     _ = run.log_model(LogisticRegression().fit(df[["x"]], df.y), "m", input_example=df[["x"]].head())
>>> ev = keel.evaluate("m", data=df, target="y", outcome=keel.outcomes.ValueMatrix(tp=10, fp=-2, fn=-5, tn=0),
...                    slices=["region"], threshold="optimize", workspace=ws)
>>> round(ev.metrics["auc"], 2), ev.outcome.total > 0, sorted(ev.slices)
(0.86, True, ['region=n', 'region=s'])
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError, NotFound, listed

if TYPE_CHECKING:
    from keel.evaluation.outcomes import Outcome
    from keel.registry.loading import LoadedModel
    from keel.workspace import Workspace

__all__ = [
    "Evaluation",
    "OutcomeResult",
    "Scored",
    "TrainingDataWarning",
    "evaluate",
    "score_model",
]

MIN_SLICE = 30


@dataclass
class OutcomeResult:
    """Total and per-decision value, each with a bootstrap interval."""

    total: float
    per_row: float
    total_interval: tuple[float, float]
    per_row_interval: tuple[float, float]
    confidence: float
    definition: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "per_row": self.per_row,
            "total_interval": list(self.total_interval),
            "per_row_interval": list(self.per_row_interval),
            "confidence": self.confidence,
            "definition": self.definition,
        }


@dataclass
class Evaluation:
    """An evaluation of one model version on one dataset: a record in the workspace."""

    id: str
    model: str
    data: str
    target: str
    task: str
    rows: int
    threshold: float | None
    metrics: dict[str, float | None]
    outcome: OutcomeResult | None
    slices: dict[str, dict[str, Any]]
    curves: dict[str, Any] = field(default_factory=dict, repr=False)
    created_at: float = 0.0
    positive_class: Any = None  # a binary classifier's class the scores and metrics are of
    positive_chosen: bool = False  # given (positive_class=), not the default (the last class)
    warnings: list[str] = field(default_factory=list)  # what the numbers should be read with
    excluded_rows: int = 0  # rows of the training data left out (exclude_training_rows)

    def to_dict(self, curves: bool = False) -> dict[str, Any]:
        doc = {
            "id": self.id,
            "model": self.model,
            "data": self.data,
            "target": self.target,
            "task": self.task,
            "rows": self.rows,
            "positive_class": self.positive_class,
            "positive_class_chosen": self.positive_chosen,
            "warnings": self.warnings,
            "excluded_rows": self.excluded_rows,
            "threshold": self.threshold,
            "metrics": self.metrics,
            "outcome": self.outcome.to_dict() if self.outcome else None,
            "slices": self.slices,
            "created_at": self.created_at,
        }
        if curves:
            doc["curves"] = self.curves
        return doc


@dataclass
class Scored:
    """One model's predictions on a table: the frame, the truth, scores and decisions."""

    frame: Any
    truth: Any  # 0/1 for binary classification, numbers for regression
    scores: Any | None  # probability of the positive class, when the model gives one
    predicted: Any  # decisions at the threshold (classification) or values (regression)
    task: str
    positive: Any = None
    data_ref: str = "DataFrame"
    data_version_id: int | None = None
    classes: list[Any] | None = None  # a multi-class model's, in the order of truth's positions


_DATA_FORMS = (
    "a dataset version (churn@v2), a file inside one (churn@v2:test.csv) or a path to a "
    ".csv or .parquet file"
)


def _read_file(path: str) -> Any:
    import pandas as pd

    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if lower.endswith(".csv"):
        return pd.read_csv(path)
    if lower.endswith(".tsv"):
        return pd.read_csv(path, sep="\t")
    raise InvalidInput(f"data {path}: expected {_DATA_FORMS}")


def _frame(ws: Workspace, data: Any) -> tuple[Any, str, int | None]:
    """The evaluation table, what to call it and its dataset version's id (if it is one):
    a DataFrame, a dataset version, a file inside one (``churn@v2:test.csv``) or a path."""
    import os

    import pandas as pd

    from keel.data.version import DatasetVersion

    if isinstance(data, pd.DataFrame):
        return data, "DataFrame", None
    if isinstance(data, os.PathLike) or (isinstance(data, str) and os.path.isfile(data)):
        return _read_file(os.fspath(data)), os.fspath(data), None
    if isinstance(data, str | DatasetVersion):
        from keel.data.catalog import resolve, version_id
        from keel.data.names import split_file_ref

        inner = None
        if isinstance(data, DatasetVersion):
            version = data
        else:
            ref, inner = split_file_ref(data)
            try:
                version = resolve(ws, ref)
            except (NotFound, InvalidInput) as exc:
                if "/" in data or data.lower().endswith((".csv", ".parquet", ".tsv")):
                    raise InvalidInput(f"data {data!r}: no such file; expected {_DATA_FORMS}") from None
                raise type(exc)(f"{exc} (data: expected {_DATA_FORMS})") from None
        with ws.db.read() as conn:
            vid = version_id(conn, version.name, version.number)
        if inner is not None:
            if not inner:
                raise InvalidInput(f"data {data!r}: name a file after the colon (churn@v2:test.csv)")
            return version.to_pandas(inner), f"{version.ref}:{inner}", vid
        return version.to_pandas(), version.ref, vid
    raise InvalidInput(f"data must be {_DATA_FORMS}, or a DataFrame; not {type(data).__name__}")


class TrainingDataWarning(UserWarning):
    """The evaluation data is, or holds rows of, what the model was trained on."""


def _training_inputs(ws: Workspace, loaded: LoadedModel) -> list[tuple[int, str]]:
    """(dataset version id, ref) of each dataset version the model's training run used."""
    from sqlalchemy import select

    from keel.store.db import dataset_versions, datasets, run_inputs, runs

    run_id = loaded.version.run_id
    if not run_id:
        return []
    with ws.db.read() as conn:
        rows = conn.execute(
            select(dataset_versions.c.id, datasets.c.name, dataset_versions.c.number)
            .join(run_inputs, run_inputs.c.dataset_version_id == dataset_versions.c.id)
            .join(runs, runs.c.pk == run_inputs.c.run_pk)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(runs.c.id == run_id)
            .order_by(dataset_versions.c.id)
        ).all()
    return [(r.id, f"{r.name}@v{r.number}") for r in rows]


def _training_rows(ws: Workspace, frame: Any, inputs: list[tuple[int, str]], vid: int | None) -> Any:
    """Which rows of ``frame`` are rows of the training inputs: equal in every column the
    two tables share (all of them when the data is one of those versions)."""
    import numpy as np
    import pandas as pd

    from keel.data.catalog import resolve

    mask = np.zeros(len(frame), dtype=bool)
    for input_vid, ref in inputs:
        if input_vid == vid:
            return np.ones(len(frame), dtype=bool)
        try:
            train = resolve(ws, ref).to_pandas()
        except KeelError:
            continue  # not a table: its rows cannot be compared
        common = [c for c in frame.columns if c in train.columns]
        if not common:
            continue
        seen = pd.util.hash_pandas_object(train[common], index=False).to_numpy()
        mask |= np.isin(pd.util.hash_pandas_object(frame[common], index=False).to_numpy(), seen)
    return mask


def _positive(model: LoadedModel, classes: list[Any], chosen: Any) -> Any:
    """The class a binary classifier's scores are of: ``chosen`` (one of its classes, as
    text or as the class itself), or the last class."""
    if chosen is None:
        return classes[-1]
    for cls in classes:
        if _same_class(chosen, cls) or str(chosen) == str(cls):
            return cls
    raise InvalidInput(
        f"positive class {chosen!r} is not a class of {model.ref}: its classes are {listed(classes)}"
    )


def score_model(
    model: LoadedModel,
    frame: Any,
    target: str,
    threshold: float | None,
    data_ref: str = "DataFrame",
    positive_class: Any = None,
) -> Scored:
    """Predict on ``frame`` with the model's own feature columns, checking the target first.
    A binary classifier is scored as the probability of ``positive_class`` (default: its
    last class)."""
    import numpy as np
    import pandas as pd

    if target not in frame.columns:
        shown = listed(frame.columns)
        raise InvalidInput(f"target column {target!r} is not in {data_ref}; its columns: {shown}")
    sig = model.signature
    features = [c.name for c in sig.columns] if sig is not None and not sig.is_tensor else None
    if features:
        missing = [c for c in features if c not in frame.columns]
        if missing:
            assert sig is not None
            raise InvalidInput(
                f"{data_ref} lacks {len(missing)} of the input columns {model.ref} needs: "
                f"{listed(map(repr, missing), 10)} "
                f"(its signature: {sig.describe()})"
            )
    X = frame[features] if features else frame.drop(columns=[target])
    y = frame[target]
    classes = (sig.output.get("classes") if sig is not None else None) or None
    if classes is not None:
        unseen = sorted(str(v) for v in pd.unique(y.dropna()) if not _known_class(v, classes))
        if unseen:
            raise InvalidInput(
                f"target column {target!r} has classes the model never saw: {listed(unseen, 10)} "
                f"(it knows {', '.join(map(str, classes))})"
            )
        if y.isna().any():
            raise InvalidInput(
                f"target column {target!r} has missing values; drop or fill them first"
            )
        if len(classes) != 2:
            return _multiclass(model, X, y, list(classes), data_ref, positive_class, frame)
        positive = _positive(model, list(classes), positive_class)
        column = list(classes).index(positive)  # predict_proba's columns follow the classes
        truth = np.asarray([_same_class(v, positive) for v in y], dtype=int)
        scores = None
        if hasattr(model.model, "predict_proba"):
            with _scoring(model, data_ref):
                proba = np.asarray(model.predict_proba(X))
            scores = proba[:, column] if proba.ndim == 2 else proba
            if proba.ndim == 1 and column == 0:
                scores = 1.0 - proba
        elif model.version.flavor in ("lightgbm", "xgboost"):
            with _scoring(model, data_ref):
                scores = np.asarray(model.predict(X), dtype=float)  # of the last class
            if column == 0:
                scores = 1.0 - scores
        cut = 0.5 if threshold is None else threshold
        if scores is not None:
            predicted = (scores >= cut).astype(int)
        else:
            with _scoring(model, data_ref):
                raw = np.asarray(model.predict(X))
            predicted = np.asarray([str(v) == str(positive) for v in raw], dtype=int)
        return Scored(frame, truth, scores, predicted, "classification", positive, data_ref)
    if positive_class is not None:
        raise InvalidInput(
            f"a positive class ({positive_class!r}) is for a classifier, and {model.ref} records "
            "no classes (a regressor, or logged without an input example)"
        )
    if not pd.api.types.is_numeric_dtype(y.dtype):
        raise InvalidInput(
            f"target column {target!r} is {y.dtype}; a regression target must be numeric"
        )
    if y.isna().any():
        raise InvalidInput(f"target column {target!r} has missing values; drop or fill them first")
    with _scoring(model, data_ref):
        predicted = np.asarray(model.predict(X), dtype=float)
    return Scored(frame, y.to_numpy(dtype=float), None, predicted, "regression", None, data_ref)


def _multiclass(
    model: LoadedModel, X: Any, y: Any, classes: list[Any], data_ref: str, positive: Any, frame: Any
) -> Scored:
    """A multi-class classifier's predictions: truth and decisions as positions in its
    classes, and the probability of each class when it gives them."""
    import numpy as np

    if positive is not None:
        raise InvalidInput(
            f"a positive class is for a binary classifier, and {model.ref} has {len(classes)} "
            f"classes ({listed(classes, 10)}): its metrics cover every class"
        )

    def position(value: Any) -> int:
        for i, cls in enumerate(classes):
            if _same_class(value, cls):
                return i
        raise AssertionError("checked above: every target value is a class")  # pragma: no cover

    truth = np.asarray([position(v) for v in y], dtype=int)
    scores = None
    if hasattr(model.model, "predict_proba"):
        with _scoring(model, data_ref):
            scores = np.asarray(model.predict_proba(X), dtype=float)
        if scores.ndim != 2 or scores.shape[1] != len(classes):
            raise InvalidInput(
                f"{model.ref} gave probabilities of shape {scores.shape} for {len(classes)} classes"
            )
        predicted = np.argmax(scores, axis=1)
    else:
        with _scoring(model, data_ref):
            raw = np.asarray(model.predict(X))
        predicted = np.asarray([position(v) for v in raw], dtype=int)
    return Scored(frame, truth, scores, predicted, "multiclass", None, data_ref, classes=classes)


@contextmanager
def _scoring(model: LoadedModel, data_ref: str) -> Iterator[None]:
    """A model that raises on the data is a problem with the data, not a crash of keel
    (``keel gate`` exits 1 to reject: a crash must not read as a verdict)."""
    try:
        yield
    except KeelError:
        raise
    except Exception as exc:
        raise InvalidInput(
            f"{model.ref} could not score {data_ref}: {type(exc).__name__}: {exc}"
        ) from exc


def _same_class(value: Any, cls: Any) -> bool:
    """Class labels match as numbers when both are numbers (a 1.0 target is class 1)."""
    import numbers

    if (
        isinstance(value, numbers.Number)
        and isinstance(cls, numbers.Number)
        and not isinstance(value, bool)
    ):
        return float(value) == float(cls)  # type: ignore[arg-type]
    return str(value) == str(cls)


def _known_class(value: Any, classes: Any) -> bool:
    return any(_same_class(value, c) for c in classes)


def outcome_values(outcome: Outcome, scored: Scored, predicted: Any | None = None) -> Any:
    from keel.evaluation.outcomes import ClassValueMatrix, RowValue

    decisions = scored.predicted if predicted is None else predicted
    if isinstance(outcome, RowValue):
        return outcome.per_row(decisions, scored.truth, scored.frame)
    if isinstance(outcome, ClassValueMatrix):
        if scored.task != "multiclass":
            raise InvalidInput(
                "a value matrix over classes (--value-matrix) judges multi-class models; a binary "
                "classifier takes --value tp=…,fp=…,fn=…,tn=…"
            )
        assert scored.classes is not None
        return outcome.per_row(decisions, scored.truth, scored.classes)
    if outcome.kind != scored.task:
        raise InvalidInput(
            f"a {type(outcome).__name__} judges {outcome.kind} models, but this is {scored.task}"
        )
    return outcome.per_row(decisions, scored.truth)


def _outcome_result(
    values: Any, outcome: Outcome, resamples: int, confidence: float, seed: int
) -> OutcomeResult:
    import numpy as np

    from keel.evaluation.bootstrap import bootstrap_mean, interval

    means = bootstrap_mean(values, resamples, seed)
    lo, hi = interval(means, confidence)
    n = len(values)
    return OutcomeResult(
        total=float(np.sum(values)),
        per_row=float(np.mean(values)) if n else float("nan"),
        total_interval=(lo * n, hi * n),
        per_row_interval=(lo, hi),
        confidence=confidence,
        definition=outcome.to_dict(),
    )


def _curves(scored: Scored, outcome: Outcome | None) -> dict[str, Any]:
    import numpy as np
    from sklearn import metrics as m

    from keel.evaluation.outcomes import ValueMatrix
    from keel.evaluation.threshold import value_curve

    out: dict[str, Any] = {}
    if scored.task == "multiclass":
        assert scored.classes is not None
        matrix = m.confusion_matrix(
            scored.truth, scored.predicted, labels=list(range(len(scored.classes)))
        )
        out["confusion"] = {
            "classes": [_plain_class(c) for c in scored.classes],
            "matrix": matrix.tolist(),  # rows: the truth; columns: what was predicted
        }
        return out
    if scored.task != "classification" or scored.scores is None or len(set(scored.truth)) < 2:
        return out

    def thin(*arrays: Any, keep: int = 400) -> list[list[float]]:
        n = len(arrays[0])
        idx = np.unique(np.linspace(0, n - 1, min(n, keep)).astype(int)) if n else np.array([], int)
        return [np.asarray(a)[idx].astype(float).tolist() for a in arrays]

    fpr, tpr, _ = m.roc_curve(scored.truth, scored.scores)
    out["roc"] = dict(zip(("fpr", "tpr"), thin(fpr, tpr), strict=True))
    precision, recall, _ = m.precision_recall_curve(scored.truth, scored.scores)
    out["pr"] = dict(zip(("precision", "recall"), thin(precision, recall), strict=True))
    bins = np.minimum((np.clip(scored.scores, 0, 1) * 10).astype(int), 9)
    counts = np.bincount(bins, minlength=10)
    used = counts > 0
    out["calibration"] = {
        "predicted": (
            np.bincount(bins, weights=scored.scores, minlength=10)[used] / counts[used]
        ).tolist(),
        "observed": (
            np.bincount(bins, weights=scored.truth, minlength=10)[used] / counts[used]
        ).tolist(),
        "count": counts[used].tolist(),
    }
    if isinstance(outcome, ValueMatrix):
        thresholds, totals = value_curve(scored.truth, scored.scores, outcome)
        finite = np.isfinite(thresholds)
        out["value"] = dict(
            zip(("threshold", "total"), thin(thresholds[finite], totals[finite]), strict=True)
        )
    return out


def evaluate(
    model: str | LoadedModel,
    *,
    data: Any,
    target: str,
    outcome: Outcome | None = None,
    slices: Sequence[str] = (),
    threshold: float | str | None = None,
    metrics: Mapping[str, Callable[..., float]] | None = None,
    min_slice_size: int = MIN_SLICE,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    workspace: Workspace | None = None,
    record: bool = True,
    positive_class: Any = None,
    exclude_training_rows: bool = False,
) -> Evaluation:
    """Evaluate a model version on a dataset version (or a DataFrame) against ``target``.

    ``threshold`` is a number, ``"optimize"`` (the threshold that maximizes the
    value matrix) or None (0.5). ``positive_class``: the class a binary classifier's
    scores, precision, recall and value matrix are of (default: its last class).
    ``data``: a DataFrame, a dataset version, a file inside one (``churn@v2:test.csv``) or
    a path. Data the model's training run used draws a TrainingDataWarning (kept in
    ``warnings``); ``exclude_training_rows`` drops the rows equal to rows of that data.
    """
    import numpy as np

    from keel.evaluation.metrics import compute_metrics
    from keel.evaluation.outcomes import ValueMatrix
    from keel.evaluation.slices import slice_masks
    from keel.evaluation.threshold import optimal_threshold

    ws = _workspace(workspace)
    loaded = _load(ws, model)
    frame, data_ref, data_vid = _frame(ws, data)
    notes: list[str] = []
    excluded = 0
    inputs = _training_inputs(ws, loaded)
    trained_on = [ref for vid, ref in inputs if vid == data_vid]
    if exclude_training_rows:
        seen = _training_rows(ws, frame, inputs, data_vid)
        excluded = int(seen.sum())
        if excluded == len(frame):
            raise InvalidInput(
                f"every row of {data_ref} is a row {loaded.ref} was trained on "
                f"({', '.join(ref for _, ref in inputs) or 'its training data'}): nothing is left "
                "to evaluate on"
            )
        if excluded:
            frame = frame.loc[~seen].reset_index(drop=True)
            notes.append(
                f"left out {excluded:,} rows of {data_ref} that are rows {loaded.ref} was "
                f"trained on; {len(frame):,} remain"
            )
    elif trained_on:
        where = data_ref if data_ref == trained_on[0] else f"{trained_on[0]} ({data_ref} is in it)"
        notes.append(
            f"{loaded.ref} was trained on {where}: these metrics are on its own training rows "
            "and read better than new data would (--exclude-training-rows drops them)"
        )
    if notes:
        import warnings

        for note in notes:
            warnings.warn(note, TrainingDataWarning, stacklevel=2)
    if isinstance(threshold, str) and threshold != "optimize":
        raise InvalidInput(
            f"invalid threshold {threshold!r}: expected a number from 0 to 1, or 'optimize'"
        )
    if isinstance(threshold, int | float) and not 0 <= threshold <= 1:
        raise InvalidInput(
            f"invalid threshold {threshold}: expected a number from 0 to 1, or 'optimize'"
        )
    if not 0.5 <= confidence < 1:
        raise InvalidInput(f"invalid confidence {confidence}: expected at least 0.5 and below 1")
    masks: dict[str, Any] = {}
    for spec in slices:  # parse every slice before any work: bad input changes nothing
        masks.update(slice_masks(frame, spec))
    scored = score_model(loaded, frame, target, None, data_ref, positive_class)
    if scored.task == "multiclass" and threshold is not None:
        raise InvalidInput(
            f"a threshold is for a binary classifier; {loaded.ref} has {len(scored.classes or [])} "
            "classes and decides by the most probable one"
        )
    cut: float | None = None
    if scored.task == "classification":
        cut = 0.5
        if threshold == "optimize":
            if not isinstance(outcome, ValueMatrix) or scored.scores is None:
                raise InvalidInput(
                    "threshold='optimize' needs a value matrix and a model with probabilities"
                )
            cut, _ = optimal_threshold(scored.truth, scored.scores, outcome)
            if not math.isfinite(cut):  # predicting nothing positive is best: cut above every score
                cut = float(np.nextafter(np.max(scored.scores), np.inf))
        elif isinstance(threshold, int | float):
            cut = float(threshold)
        if scored.scores is not None:
            scored.predicted = (scored.scores >= cut).astype(int)
    point = compute_metrics(
        scored.task, scored.truth, scored.predicted, scored.scores, metrics, frame, scored.classes
    )
    values = outcome_values(outcome, scored) if outcome is not None else None
    result = (
        _outcome_result(values, outcome, resamples, confidence, seed)
        if outcome is not None
        else None
    )
    slice_results: dict[str, dict[str, Any]] = {}
    for name, mask in masks.items():
        n = int(mask.sum())
        entry: dict[str, Any] = {"rows": n, "share": n / len(frame) if len(frame) else 0.0}
        if n < min_slice_size:
            entry["too_small"] = True
            entry["note"] = f"{n} rows; at least {min_slice_size} are needed to judge a slice"
        else:
            entry["metrics"] = compute_metrics(
                scored.task,
                scored.truth[mask],
                scored.predicted[mask],
                None if scored.scores is None else scored.scores[mask],
                classes=scored.classes,
            )
            if values is not None:
                entry["value"] = {
                    "total": float(values[mask].sum()),
                    "per_row": float(values[mask].mean()),
                }
        slice_results[name] = entry
    ev = Evaluation(
        id=uuid.uuid4().hex,
        model=loaded.ref,
        data=data_ref,
        target=target,
        task=scored.task,
        rows=len(frame),
        threshold=cut,
        metrics=point,
        outcome=result,
        slices=slice_results,
        curves=_curves(scored, outcome),
        created_at=time.time(),
        positive_class=_plain_class(scored.positive),
        positive_chosen=positive_class is not None,
        warnings=notes,
        excluded_rows=excluded,
    )
    if record:
        from keel.evaluation.records import record_evaluation

        record_evaluation(ws, ev, "evaluation", loaded.version, None, data_vid)
    return ev


def _plain_class(cls: Any) -> Any:
    """A class label as JSON holds it (numpy scalars as Python numbers)."""
    return cls.item() if hasattr(cls, "item") else cls


def _workspace(workspace: Workspace | None) -> Workspace:
    if workspace is not None:
        return workspace
    from keel.workspace import connect

    return connect()


def _load(ws: Workspace, model: Any) -> LoadedModel:
    from keel.registry.loading import LoadedModel

    if isinstance(model, LoadedModel):
        return model
    from keel.registry import load_model

    return load_model(str(model), workspace=ws)
