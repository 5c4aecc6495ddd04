"""``keel monitor``: judge a served model's recent traffic (the log lake) against its training
data, once or every interval, with alerts; exit 1 on drift."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

import click

from keel.cli.drift import show_details
from keel.cli.output import emit_json
from keel.store.jsondoc import plain

if TYPE_CHECKING:
    from keel.monitor.alerts import Delivery
    from keel.monitor.live import MonitorResult

__all__ = ["monitor_cmd"]

_print_lock = threading.Lock()


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else ("-" if v is None else str(v))


def _echo(text: str, err: bool = False) -> None:
    with _print_lock:
        click.echo(text, err=err)


def _show(result: MonitorResult, report_path: str | None, brief: bool) -> None:
    win = result.window
    head = f"{result.status.upper()}: {result.model} ({result.version})"
    if result.report is None:
        _echo(f"{head}: {result.reason}")
        if report_path and not brief:
            _echo(f"no report written to {report_path}: not enough data")
        return
    r = result.report
    _echo(f"{head}: {result.reason}")
    if brief:
        if r.drifted_features:
            _echo("  drifted: " + ", ".join(r.drifted_features) + f"  (report {r.id[:8]})")
        if report_path:
            _echo(f"  report: {report_path}")
        return
    _echo(f"window: {win.describe()}")
    _echo(f"reference: {r.reference}")
    with _print_lock:
        show_details(r, click.echo, f" ({win.outcomes:,} outcomes)")
    _echo(f"recorded: drift report {r.id[:8]}, linked to {result.version}")
    if report_path:
        _echo(f"report: {report_path}")


def _write_report(result: MonitorResult, path: str | None) -> None:
    if path and result.report is not None:
        from keel.monitor.html import write_report

        write_report(path, result.report)


@click.command("monitor")
@click.argument("model")
@click.option(
    "--window",
    default=None,
    help="Judge the predictions of this last stretch of time: 15m, 1h, 2d (default 1h).",
)
@click.option("--last", type=int, default=None, help="Judge the last N served predictions instead.")
@click.option(
    "--reference",
    default=None,
    help="Compare against this instead of MODEL@ALIAS's training data: a dataset or model "
    "version, or a CSV/Parquet file.",
)
@click.option(
    "--alias",
    default="champion",
    show_default=True,
    help="The served alias; its version's training data is the default reference.",
)
@click.option(
    "--target",
    default=None,
    help="Name the arrived outcomes after this training-data column (judges target drift too).",
)
@click.option(
    "--max-rows",
    type=int,
    default=1_000_000,
    show_default=True,
    help="Judge a uniform sample of at most this many rows of the window.",
)
@click.option(
    "--min-rows",
    type=int,
    default=100,
    show_default=True,
    help="A window with fewer rows is 'not enough data', not drift.",
)
@click.option(
    "--multivariate/--no-multivariate",
    default=True,
    show_default=True,
    help="Also run the domain classifier and PCA checks (they read the reference table).",
)
@click.option(
    "--include",
    default=None,
    help="Judge only these columns (default: the model's signature inputs), and the "
    "prediction and outcome: a,b.",
)
@click.option("--exclude", default=None, help="Columns to leave out: a,b.")
@click.option(
    "--report", type=click.Path(dir_okay=False), default=None, help="Write the HTML report."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (a line a check).")
@click.option("--every", default=None, help="Check again every interval (10m) until interrupted.")
@click.option("--times", type=int, default=None, help="With --every: stop after N checks.")
@click.option(
    "--alert",
    "alerts",
    multiple=True,
    help="POST a JSON alert to this webhook on drift (repeatable; 5 s timeout, 3 tries).",
)
@click.option(
    "--realert",
    default="24h",
    show_default=True,
    help="With --every: send a finding that lasts again after this long (it is sent when "
    "it starts, and 'resolved' when it ends).",
)
@click.option(
    "--alert-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Append each alert (and each failed delivery) to this JSONL file.",
)
def monitor_cmd(
    model: str,
    window: str | None,
    last: int | None,
    reference: str | None,
    alias: str,
    target: str | None,
    max_rows: int,
    min_rows: int,
    multivariate: bool,
    include: str | None,
    exclude: str | None,
    report: str | None,
    as_json: bool,
    every: str | None,
    times: int | None,
    alerts: tuple[str, ...],
    realert: str,
    alert_file: str | None,
) -> None:
    """Has MODEL's served traffic drifted from its training data? Exit 0 no drift (or not
    enough data), 1 drift, 2 bad input.

    Reads the window from the prediction log (served rows without errors; a uniform sample
    of at most --max-rows), joins the outcomes that arrived, judges the model's inputs, its
    prediction and the outcome, and records the report linked to the version MODEL@ALIAS
    points at. A schema break (an input missing) exits 1 too. With --every, checks until
    Ctrl-C (a one-line summary, exit 0) and alerts when a finding starts, every --realert
    while it lasts, and when it is resolved.
    """
    from keel.errors import InvalidInput
    from keel.monitor.alerts import Alerter
    from keel.monitor.live import check, interval_seconds, realert_seconds, watch
    from keel.workspace import connect

    if window is not None and last is not None:
        raise InvalidInput("--window and --last cannot be used together: choose one")
    if every is None and (times is not None or alerts or alert_file or realert != "24h"):
        raise InvalidInput("--times, --alert, --alert-file and --realert need --every")
    if window is not None:
        interval_seconds(window)  # a bad duration is bad input before any work
    realert_seconds(realert)
    ws = connect()
    options: dict[str, Any] = {
        "window": window or "1h",
        "last": last,
        "reference": reference,
        "alias": alias,
        "target": target,
        "max_rows": max_rows,
        "min_rows": min_rows,
        "multivariate": multivariate,
        "include": include,
        "exclude": exclude,
        "workspace": ws,
    }
    if every is None:
        result = check(model, **options)
        _write_report(result, report)
        if as_json:
            emit_json(result.to_dict())
        else:
            _show(result, report, brief=False)
        if result.exit_code:
            raise SystemExit(result.exit_code)
        return

    def delivered(d: Delivery, alert: dict[str, Any]) -> None:
        if d.ok:
            _echo(f"{_what(alert)} sent to {d.url} (report {str(alert.get('report'))[:8]})", err=True)
        else:
            _echo(
                f"alert delivery to {d.url} failed after {d.attempts} tries: {d.error}"
                + (f" (recorded in {alert_file})" if alert_file else ""),
                err=True,
            )

    alerter = Alerter(alerts, alert_file, on_delivery=delivered)

    seen: dict[str, int] = {}

    def shown(result: MonitorResult) -> None:
        seen[result.status] = seen.get(result.status, 0) + 1
        _write_report(result, report)
        if as_json:
            with _print_lock:
                sys.stdout.write(_json_line(result.to_dict()))
                sys.stdout.flush()
        else:
            _show(result, report, brief=True)

    def failed(exc: BaseException) -> None:
        _echo(f"keel: check failed, trying again next interval: {exc}", err=True)

    try:
        results = watch(
            model,
            every,
            times=times,
            alerter=alerter,
            realert=realert,
            on_result=shown,
            on_error=failed,
            **options,
        )
    except KeyboardInterrupt:
        # Ctrl-C is how a watch ends: say what it saw, and exit 0.
        alerter.close(wait=5.0)
        checks = sum(seen.values())
        tally = ", ".join(f"{n} {status}" for status, n in seen.items()) or "none finished"
        _echo(
            f"stopped after {checks} check{'s' if checks != 1 else ''} ({tally}); alerts sent: "
            f"{alerter.sent['firing']} firing, {alerter.sent['resolved']} resolved",
            err=as_json,
        )
        return
    finally:
        alerter.close(wait=30.0)
    if any(r.exit_code for r in results):
        raise SystemExit(1)


def _what(alert: dict[str, Any]) -> str:
    """``alert (2 firing, 1 resolved)``: what one delivery carried."""
    counts: dict[str, int] = {}
    for a in alert.get("alerts", []):
        counts[a["status"]] = counts.get(a["status"], 0) + 1
    inner = ", ".join(f"{n} {status}" for status, n in counts.items())
    return f"alert ({inner})" if inner else "alert"


def _json_line(doc: Any) -> str:
    import json

    return json.dumps(doc, default=plain) + "\n"
