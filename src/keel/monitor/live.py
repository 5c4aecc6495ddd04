"""Monitoring the live model: the log lake's recent traffic judged against the training data.

:func:`check` reads a window of served predictions from the log lake
(:mod:`keel.monitor.window`), judges it with :func:`keel.monitor.drift`
against the training data of the version ``MODEL@ALIAS`` points at (through
lineage; any reference ``drift`` takes can be named instead), and records the
report linked to that model version. :func:`watch` repeats the check every
interval and hands each drifted result to an :class:`~keel.monitor.alerts.Alerter`.

>>> # keel.monitor.check("churn", window="1h").drifted_features
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitor.window import MAX_ROWS, Window, read_window

DEFAULT_REALERT = 24 * 3600.0  # keel.monitor.findings.DEFAULT_REALERT, without its import

if TYPE_CHECKING:
    from keel.monitor.alerts import Alerter
    from keel.monitor.findings import AlertState
    from keel.monitor.report import DriftReport
    from keel.registry.versions import ModelVersion
    from keel.workspace import Workspace

__all__ = ["MIN_ROWS", "MonitorResult", "check", "interval_seconds", "realert_seconds", "watch"]

MIN_ROWS = 100
KEPT = 100  # results an endless watch returns: the newest


def interval_seconds(text: str | float) -> float:
    """``90s``, ``10m``, ``1h``, ``2d`` (or a number of seconds) as seconds.

    >>> interval_seconds("10m"), interval_seconds(2.5)
    (600.0, 2.5)
    """
    from keel.store.logs import parse_since

    if isinstance(text, int | float):
        seconds = float(text)
    else:
        try:
            seconds = -parse_since(text, now=0.0)
        except InvalidInput:
            raise InvalidInput(
                f"invalid interval {text!r}: expected a duration such as 90s, 10m, 1h, 2d"
            ) from None
    if not seconds > 0:
        raise InvalidInput(f"invalid interval {text!r}: expected a positive duration")
    return seconds


def realert_seconds(value: str | float) -> float:
    """How long a lasting finding waits to be sent again: a duration (``24h``) or a number
    of seconds, where 0 means at every check that finds it.

    >>> realert_seconds("24h"), realert_seconds("0"), realert_seconds(0)
    (86400.0, 0.0, 0.0)
    """
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return interval_seconds(value)
    if not seconds >= 0:
        raise InvalidInput(f"invalid --realert {value!r}: expected a duration such as 24h, or 0")
    return seconds


@dataclass
class MonitorResult:
    """One check: the window it read, the version it judged, the verdict and the report."""

    model: str
    version: str  # the model version whose training data is the default reference
    window: Window
    status: str  # "drift" | "no drift" | "not enough data"
    reason: str
    report: DriftReport | None = None
    checked_at: float = field(default_factory=time.time)
    seconds: float = 0.0

    @property
    def drifted(self) -> bool:
        return self.status == "drift"

    @property
    def exit_code(self) -> int:
        """What ``keel monitor`` exits with: 1 on drift or a schema break, else 0."""
        return self.report.exit_code if self.report is not None else 0

    @property
    def drifted_features(self) -> list[str]:
        return self.report.drifted_features if self.report is not None else []

    def to_dict(self) -> dict[str, Any]:
        import datetime as dt

        return {
            "model": self.model,
            "version": self.version,
            "status": self.status,
            "drifted": self.drifted,
            "reason": self.reason,
            "checked_at": dt.datetime.fromtimestamp(self.checked_at, dt.UTC).isoformat(),
            "seconds": self.seconds,
            "window": self.window.to_dict(),
            "drifted_features": self.drifted_features,
            "report": self.report.to_dict() if self.report is not None else None,
        }

    def alert(self, alerts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The webhook payload: what drifted, how much, in which window, and the report id;
        with ``alerts`` (from :class:`~keel.monitor.findings.AlertState`), each finding that
        starts, repeats or ends, and ``state``: ``firing`` when any does, else ``resolved``."""
        report = self.report
        assert report is not None
        drifted = [f for f in (*report.features.values(), report.prediction, report.target) if f]
        mv = report.multivariate
        if alerts is None:
            from keel.monitor.findings import AlertState, findings_of

            alerts = AlertState().update(findings_of(self.model, report), self.checked_at)
        firing = any(a["status"] == "firing" for a in alerts)
        return {
            "alert": "drift",
            "state": "firing" if firing else "resolved",
            "alerts": alerts,
            "model": self.model,
            "version": self.version,
            "status": self.status,
            "window": self.window.to_dict(),
            "report": report.id,
            "headline": report.headline(),
            "schema": report.schema.to_dict() if report.schema_broken else None,
            "reference": report.reference,
            "drifted_features": [
                {
                    "name": f.name,
                    "role": f.role,
                    "kind": f.kind,
                    "method": f.method,
                    "statistic": f.statistic,
                    "threshold": f.threshold,
                    "p_value": f.p_value,
                    "reasons": f.reasons,
                }
                for f in drifted
                if f.drifted
            ],
            "multivariate": (
                {"auc": mv.auc, "drifted": mv.drifted} if mv is not None and mv.auc else None
            ),
        }


def _reference_side(ws: Workspace, report: DriftReport, mv: ModelVersion) -> Any:
    from keel.data.catalog import resolve
    from keel.monitor.sources import Side

    dataset = None
    if report.dataset is not None:
        dataset = resolve(ws, report.dataset)
    return Side(label=report.reference, dataset=dataset, model=mv)


def _signature_inputs(mv: ModelVersion) -> set[str] | None:
    """The input columns of ``mv``'s signature; None when it names none."""
    from keel.registry.signature import Signature

    if not mv.signature:
        return None
    columns = Signature.from_dict(mv.signature).columns
    return {c.name for c in columns} if columns else None


def check(
    model: str,
    *,
    window: str | float | None = "1h",
    last: int | None = None,
    since: float | None = None,
    until: float | None = None,
    reference: Any = None,
    alias: str = "champion",
    target: str | None = None,
    max_rows: int = MAX_ROWS,
    min_rows: int = MIN_ROWS,
    multivariate: bool = True,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    workspace: Workspace | None = None,
    record: bool = True,
    now: float | None = None,
    seed: int = 0,
) -> MonitorResult:
    """Judge ``model``'s recent served traffic against a reference.

    The window is ``window`` (a duration such as ``1h`` before ``now``), or the
    explicit ``since``/``until`` range, or the ``last`` N rows. At most
    ``max_rows`` rows, a uniform sample, are judged. A window of fewer than
    ``min_rows`` rows is "not enough data", not drift. The reference defaults
    to the training data of ``MODEL@ALIAS``; the outcome, when any arrived, is
    named ``target`` (default ``outcome``; name the training data's target
    column to also judge target drift).

    The columns judged are the model's: its signature's inputs, the prediction and the
    outcome; other fields the server logged (an id, a routing key) only with ``include``
    naming them. ``exclude`` leaves columns out.
    """
    from keel.monitor.drift import drift
    from keel.registry.versions import resolve_model
    from keel.workspace import connect

    started = time.perf_counter()
    ws = workspace if workspace is not None else connect()
    if min_rows < 1:
        raise InvalidInput(f"invalid min rows {min_rows}: expected at least 1")
    mv = resolve_model(ws, f"{model}@{alias}")
    now = time.time() if now is None else now
    if last is None and since is None and window is not None:
        since = now - interval_seconds(window)
        until = now if until is None else until
    win = read_window(
        ws,
        model,
        since=since,
        until=until,
        last=last,
        max_rows=max_rows,
        target=target or "outcome",
        seed=seed,
    )
    result = MonitorResult(model=model, version=mv.ref, window=win, status="", reason="")
    if win.rows < min_rows:
        result.status = "not enough data"
        result.reason = (
            f"only {win.rows:,} served predictions in the window ({win.describe()}); "
            f"at least {min_rows:,} are needed to judge drift"
        )
        result.seconds = time.perf_counter() - started
        return result
    assert win.frame is not None
    unused: list[str] = []
    if include is None:
        inputs = _signature_inputs(mv)
        if inputs is not None:
            include = [c for c in win.inputs if c in inputs]
            unused = [c for c in win.inputs if c not in inputs]
    report = drift(
        reference if reference is not None else mv.ref,
        win.frame,
        target=win.target,
        prediction=win.prediction,
        include=include or None,
        exclude=exclude,
        multivariate=multivariate,
        workspace=ws,
        record=False,
        seed=seed,
        model=mv,
    )
    if unused:
        report.notes.append(
            f"not judged: {', '.join(unused)} (logged, but not inputs of {mv.ref}; "
            "--include names the columns to judge)"
        )
    report.current = win.describe()
    report.model = report.model or mv.ref
    if win.target is None and win.prediction is not None:
        report.notes.append(
            "no outcomes have arrived for this window yet: performance is estimated (CBPE) "
            "where the prediction is a probability"
        )
    if record:
        from keel.monitor.records import record_report
        from keel.monitor.sources import Side

        report.record_id = record_report(
            ws, report, _reference_side(ws, report, mv), Side(label=report.current)
        )
    result.report = report
    result.status = report.status
    result.reason = (
        report.headline().split(": ", 1)[1]
        if report.status != "not enough data"
        else "no column had enough values to judge"
    )
    result.seconds = time.perf_counter() - started
    return result


def watch(
    model: str,
    every: str | float,
    *,
    times: int | None = None,
    alerter: Alerter | None = None,
    realert: str | float = DEFAULT_REALERT,
    state: AlertState | None = None,
    on_result: Callable[[MonitorResult], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **options: Any,
) -> list[MonitorResult]:
    """Run :func:`check` every ``every`` until interrupted (or ``times`` checks).

    Alerts go to ``alerter`` as Alertmanager sends them: a finding (a drifted column, the
    multivariate check, a schema break) fires when it starts, again at most once per
    ``realert`` (24 h) while it lasts, and is sent ``resolved`` when a check no longer
    finds it; a check without a verdict (not enough data) changes nothing. ``state``
    holds what is firing (pass one to keep it across calls). The first check's errors are
    raised (bad input); later ones go to ``on_error`` and the watch goes on. Returns the
    results (the last ``KEPT`` when ``times`` is not given), without the windows' rows;
    Ctrl-C (KeyboardInterrupt) is the caller's to catch."""
    from keel.monitor.findings import AlertState, findings_of

    period = interval_seconds(every)
    if times is not None and times < 1:
        raise InvalidInput(f"invalid --times {times}: expected at least 1")
    state = state if state is not None else AlertState(realert=realert_seconds(realert))
    # A watch may run for months: it keeps the last KEPT results, without their windows.
    results: deque[MonitorResult] = deque(maxlen=times or KEPT)
    for i in itertools.count():
        began = time.monotonic()
        try:
            result = check(model, **options)
        except Exception as exc:
            if i == 0 or on_error is None:
                raise
            on_error(exc)
        else:
            if on_result is not None:
                on_result(result)
            result.window.frame = None
            results.append(result)
            if result.report is not None and result.status != "not enough data":
                alerts = state.update(findings_of(model, result.report), result.checked_at)
                if alerts and alerter is not None:
                    alerter.send(result.alert(alerts))
        if times is not None and i + 1 >= times:
            break
        sleep(max(0.0, began + period - time.monotonic()))
    return list(results)
