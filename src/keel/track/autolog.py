"""``keel.autolog()``: record scikit-learn training without changing the training code.

Every estimator's ``fit`` is wrapped. The outermost ``fit`` (not the ones a
Pipeline or a search calls inside it) logs the estimator's parameters, the
training duration (a volatile metric: recorded, not compared by ``keel
reproduce``), and the training score (accuracy for classifiers, R² for
regressors), on the active run or on a run it starts and ends itself. With
``register="churn"`` it also logs the fitted estimator as a version of
``churn`` (its input example: the first rows it was fitted on).
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

from keel.errors import InvalidInput

__all__ = ["autolog"]

_STATE = threading.local()
_PATCHED: dict[type, Any] = {}
_REGISTER: list[str] = []  # the model name fitted estimators are registered under, if any


def _flat_params(estimator: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in estimator.get_params(deep=True).items():
        if isinstance(value, int | float | str | bool) or value is None:
            out[key.replace("__", ".")] = value
        else:
            out[key.replace("__", ".")] = type(value).__name__
    return out


def _wrap(cls: type) -> Any:
    original = cls.__dict__["fit"]

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_STATE, "depth", 0)
        if depth > 0:
            return original(self, *args, **kwargs)
        from keel.track.run import active_run, start_run

        run = active_run()
        own = run is None
        if run is None:
            run = start_run(name=f"autolog-{type(self).__name__}")
        _STATE.depth = depth + 1
        started = time.perf_counter()
        try:
            result = original(self, *args, **kwargs)  # fit(X) and fit(X, y) alike
        except BaseException:
            _STATE.depth = depth
            if own:
                run.end("failed", error="fit raised")
            raise
        _STATE.depth = depth
        try:
            run.log_params({f"{type(self).__name__}.{k}": v for k, v in _flat_params(self).items()})
        except InvalidInput:
            pass  # fitted twice in one run with other params: the first fit's stay
        run.set_tags({"estimator": f"{type(self).__module__}.{type(self).__name__}"})
        run.log_metric("training_duration_s", time.perf_counter() - started, volatile=True)
        metrics: dict[str, float] = {}
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        if X is not None and y is not None and hasattr(self, "score"):
            from sklearn.base import is_classifier

            name = "training_accuracy" if is_classifier(self) else "training_score"
            try:
                metrics[name] = float(self.score(X, y))
            except Exception:  # noqa: BLE001, S110 - some estimators cannot score their input
                pass
        run.log_metrics(metrics)
        if _REGISTER:
            try:
                run.log_model(self, _REGISTER[0], input_example=_first_rows(X))
            except BaseException as exc:
                if own:
                    run.end("failed", error=f"registering the model failed: {exc}")
                raise
        if own:
            run.end("finished")
        return result

    return fit


def _first_rows(X: Any) -> Any:
    """A few rows of the training inputs, as the model's input example (None if X cannot be
    sliced so: the version is then logged without a signature)."""
    try:
        return X[:5] if hasattr(X, "__getitem__") and hasattr(X, "shape") else None
    except Exception:  # noqa: BLE001 - an input that does not slice by rows
        return None


def autolog(*, disable: bool = False, register: str | None = None) -> int:
    """Wrap ``fit`` of every scikit-learn estimator; returns how many classes are wrapped.

    ``register="churn"``: each outermost fit also logs the fitted estimator as a new version
    of ``churn`` (in a reproduction, recorded with the run and not registered)."""
    try:
        from sklearn.utils import all_estimators
    except ImportError:
        raise InvalidInput("keel.autolog() needs scikit-learn: pip install scikit-learn") from None
    if register is not None:
        from keel.names import check_name

        check_name(register, "model name")
    _REGISTER[:] = [] if disable or register is None else [register]
    if disable:
        for cls, original in _PATCHED.items():
            setattr(cls, "fit", original)  # noqa: B010
        count = len(_PATCHED)
        _PATCHED.clear()
        return count
    for _name, estimator in all_estimators():
        # Wrap the class that defines fit (often a base such as BaseForest), once.
        owner = next((k for k in estimator.__mro__ if "fit" in k.__dict__), None)
        if owner is None or owner in _PATCHED:
            continue
        _PATCHED[owner] = owner.__dict__["fit"]
        setattr(owner, "fit", _wrap(owner))  # noqa: B010 - patching a class attribute
    return len(_PATCHED)
