"""``keel drift``: judge a current table against a reference; exit 1 on drift."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from keel.cli.output import emit_json, table

__all__ = ["drift_cmd"]


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else ("-" if v is None else str(v))


def _label(f: Any) -> str:
    return f.name if f.role in ("feature", f.name) else f"{f.name} ({f.role})"


def show_details(report: Any, echo: Callable[[str], None], outcomes: str = "") -> None:
    """What a drift report found, for a person: the columns that matter, multivariate drift,
    performance (realized or estimated) and the notes. ``keel monitor`` prints the same."""
    shown = [
        f for f in report.features.values() if f.drifted or f.status != "no drift" or f.notes
    ]
    shown += [f for f in (report.prediction, report.target) if f is not None]
    if shown:
        table(
            ["column", "status", "effect", "statistic", "threshold", "p"],
            [
                (
                    _label(f),
                    f.status,
                    f.method or "-",
                    _fmt(f.statistic),
                    _fmt(f.threshold),
                    _fmt(f.p_value),
                )
                for f in shown
            ],
        )
        # Why each verdict, and every note, below the table: a line each reads whole.
        for f in shown:
            for line in [*f.reasons, *f.notes]:
                echo(f"  {_label(f)}: {line}")
    if report.schema.changed and not report.schema_broken:
        echo(f"schema: {report.schema.sentence()}")
    mv = report.multivariate
    if mv is not None and mv.auc is not None:
        lo, hi = mv.auc_interval or (0.0, 0.0)
        if mv.drifted:
            echo("multivariate drift: " + "; ".join(mv.reasons()))
        else:
            echo(f"no multivariate drift: domain classifier AUC {mv.auc:.3f} ({lo:.3f}-{hi:.3f})")
    if report.performance is not None:
        p = report.performance
        at = p.first_detection
        echo(
            f"realized {p.metric} by chunk{outcomes}: "
            + " ".join(f"{c[p.metric]:.3f}" for c in p.chunks)
            + (f"; change detected at row {at:,}" if at is not None else "")
        )
    est = report.estimated_performance
    if est is not None:
        trust = "trustworthy" if est.trustworthy else "NOT trustworthy"
        echo(f"estimated accuracy {est.accuracy:.3f} (AUC {est.auc:.3f}), {trust}: {est.reason}")
    for note in report.notes:
        echo(f"note: {note}")


@click.command("drift")
@click.argument("reference")
@click.argument("current")
@click.option("--target", default=None, help="The column holding the outcome, if any.")
@click.option(
    "--prediction",
    default=None,
    help="The column holding the model's prediction; a reference without it is scored by "
    "the model (REFERENCE's, or --model).",
)
@click.option("--exclude", default=None, help="Columns to leave out: a,b,c.")
@click.option(
    "--include", default=None, help="Judge only these columns (and --target, --prediction): a,b."
)
@click.option(
    "--model",
    "model_ref",
    default=None,
    help="The model (churn@champion) whose signature names the columns CURRENT must have, "
    "and which scores REFERENCE for --prediction; by default REFERENCE's, when it is a "
    "model version.",
)
@click.option(
    "--allow-missing",
    default=None,
    help="Columns that may be missing from CURRENT without a schema break: a,b.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a self-contained HTML report.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def drift_cmd(
    reference: str,
    current: str,
    target: str | None,
    prediction: str | None,
    exclude: str | None,
    include: str | None,
    model_ref: str | None,
    allow_missing: str | None,
    report: str | None,
    as_json: bool,
) -> None:
    """Has CURRENT drifted from REFERENCE? Exit 0 no drift, 1 drift or a schema break,
    2 bad input.

    Each may be a CSV or Parquet file, a dataset version (churn@v3) or a file inside
    one (churn@v3:current.csv); REFERENCE
    may also be a model version (churn/v4, churn@champion): its training data. A
    column the model needs (its signature's inputs, --target, --prediction) missing
    from CURRENT, or of another type, is a schema break: status SCHEMA, exit 1.
    """
    from keel.cli.memory import tune_for_batch

    tune_for_batch()  # before numpy's import: reuse large blocks, no huge pages
    from keel.errors import WorkspaceNotFound
    from keel.monitor import drift
    from keel.workspace import connect

    try:
        ws = connect()
    except WorkspaceNotFound:
        ws = None
    result = drift(
        reference,
        current,
        target=target,
        prediction=prediction,
        exclude=exclude,
        include=include,
        workspace=ws,
        model=model_ref,
        allow_missing=allow_missing,
    )
    if report:
        from keel.monitor.html import write_report

        write_report(report, result)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(
            f"{result.headline()} ({result.reference} -> {result.current}; "
            f"{result.rows[1]:,} rows)"
        )
        show_details(result, click.echo)
        if report:
            click.echo(f"report: {report}")
    if result.exit_code:
        raise SystemExit(result.exit_code)
