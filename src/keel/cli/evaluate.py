"""``keel evaluate`` and ``keel gate``."""

from __future__ import annotations

from typing import Any

import click

from keel.cli.output import emit_json, table

__all__ = ["evaluate_cmd", "gate_cmd"]


def _value(text: str | None, matrix: str | None = None) -> Any:
    if text is not None and matrix is not None:
        raise click.UsageError(
            "--value (a binary classifier's tp, fp, fn, tn) and --value-matrix (a K x K table "
            "for a multi-class one) are alternatives: give one"
        )
    if matrix is not None:
        from keel.evaluation.outcomes import ClassValueMatrix

        return ClassValueMatrix.read(matrix)
    if text is None:
        return None
    from keel.evaluation.outcomes import ValueMatrix

    return ValueMatrix.parse(text)


def _threshold(text: str | None) -> Any:
    if text is None or text == "optimize":
        return text
    from keel.errors import InvalidInput

    try:
        return float(text)
    except ValueError:
        raise InvalidInput(
            f"invalid --threshold {text!r}: expected a number from 0 to 1, or 'optimize'"
        ) from None


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else ("-" if v is None else str(v))


@click.command("evaluate")
@click.argument("model")
@click.option(
    "--data",
    required=True,
    help="A dataset version (churn@v7), a file in one (churn@v7:test.csv) or a path.",
)
@click.option("--target", required=True, help="The column holding the truth.")
@click.option(
    "--value", "value_text", default=None, help="Value matrix: tp=120,fp=-15,fn=-80,tn=0."
)
@click.option(
    "--value-matrix",
    "value_matrix",
    type=click.Path(dir_okay=False),
    default=None,
    help="A multi-class value matrix: a CSV of the value of predicting j when the truth is i.",
)
@click.option(
    "--threshold", default=None, help="A number from 0 to 1, or 'optimize' (needs --value)."
)
@click.option(
    "--slice", "slices", multiple=True, help="A column (region) or an expression (tenure < 12)."
)
@click.option(
    "--positive-class",
    default=None,
    help="The class a binary classifier's scores and value are of (default: its last class).",
)
@click.option(
    "--exclude-training-rows",
    is_flag=True,
    help="Leave out the rows equal to rows of the data the model was trained on.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a self-contained HTML report.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation as JSON.")
def evaluate_cmd(
    model: str,
    data: str,
    target: str,
    value_text: str | None,
    value_matrix: str | None,
    threshold: str | None,
    slices: tuple[str, ...],
    positive_class: str | None,
    exclude_training_rows: bool,
    report: str | None,
    as_json: bool,
) -> None:
    """Evaluate MODEL on data: metrics, value with an interval, threshold, slices. DATA is a
    dataset version (churn@v2), a file inside one (churn@v2:test.csv) or a path."""
    import warnings

    from keel.evaluation import evaluate
    from keel.evaluation.evaluation import TrainingDataWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingDataWarning)  # said below, in one line each
        ev = evaluate(
            model,
            data=data,
            target=target,
            outcome=_value(value_text, value_matrix),
            slices=list(slices),
            threshold=_threshold(threshold),
            positive_class=positive_class,
            exclude_training_rows=exclude_training_rows,
        )
    for note in ev.warnings:
        click.echo(f"keel: warning: {note}", err=True)
    if report:
        from keel.evaluation.report import write_report

        write_report(report, ev)
    if as_json:
        emit_json(ev.to_dict())
        return
    click.echo(
        f"{ev.model} on {ev.data} ({ev.rows:,} rows, target {ev.target}); evaluation {ev.id[:8]}"
    )
    if ev.positive_class is not None:
        how = "" if ev.positive_chosen else " (the last class; --positive-class chooses)"
        click.echo(f"positive class: {ev.positive_class}{how}")
    table(["metric", "value"], [(k, _fmt(v)) for k, v in ev.metrics.items()])
    if ev.outcome is not None:
        o = ev.outcome
        click.echo(
            f"value: total {o.total:,.2f} ({o.confidence:.0%} interval {o.total_interval[0]:,.2f} .. "
            f"{o.total_interval[1]:,.2f}); per decision {o.per_row:.4f}; threshold {_fmt(ev.threshold)}"
        )
    confusion = ev.curves.get("confusion")
    if confusion is not None:
        names = [str(c) for c in confusion["classes"]]
        table(
            ["truth \\ predicted", *names],
            [[name, *map(str, row)] for name, row in zip(names, confusion["matrix"], strict=True)],
            title="confusion matrix",
        )
    if ev.slices:
        key = {"classification": "auc", "multiclass": "accuracy"}.get(ev.task, "rmse")
        table(
            ["slice", "rows", key, "value"],
            [
                (
                    name,
                    s["rows"],
                    "too small" if s.get("too_small") else _fmt(s["metrics"].get(key)),
                    _fmt(s.get("value", {}).get("total")) if "value" in s else "-",
                )
                for name, s in ev.slices.items()
            ],
        )
    if report:
        click.echo(f"report: {report}")


@click.command("gate")
@click.argument("challenger")
@click.option("--against", required=True, help="The model to beat, usually NAME@champion.")
@click.option("--data", required=True, help="A dataset version both models are judged on.")
@click.option("--target", required=True, help="The column holding the truth.")
@click.option(
    "--policy", type=click.Path(dir_okay=False), default=None, help="gate.toml (default: see docs)."
)
@click.option(
    "--value", "value_text", default=None, help="Value matrix: tp=120,fp=-15,fn=-80,tn=0."
)
@click.option(
    "--metric", default=None, help="Primary metric (overrides the policy): value, auc, logloss, …"
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a self-contained HTML report.",
)
@click.option(
    "--positive-class",
    default=None,
    help="The class binary classifiers are judged on (default: the last class).",
)
@click.option(
    "--value-matrix",
    "value_matrix",
    type=click.Path(dir_okay=False),
    default=None,
    help="A multi-class value matrix (CSV, K x K): judge multi-class models on value.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def gate_cmd(
    challenger: str,
    against: str,
    data: str,
    target: str,
    policy: str | None,
    value_text: str | None,
    metric: str | None,
    report: str | None,
    positive_class: str | None,
    value_matrix: str | None,
    as_json: bool,
) -> None:
    """Should CHALLENGER replace --against? Exit 0 to promote, 1 to reject."""
    from keel.evaluation import gate
    from keel.evaluation.policy import GATE_METRICS

    if metric is not None and metric not in GATE_METRICS:
        from keel.errors import InvalidInput

        raise InvalidInput(
            f"invalid --metric {metric!r}: expected one of {', '.join(GATE_METRICS)}"
        )
    outcome = _value(value_text, value_matrix)
    decision = gate(
        challenger,
        against=against,
        data=data,
        target=target,
        policy=policy,
        outcome=outcome,
        metric=metric,
        positive_class=positive_class,
    )
    if report:
        from keel.evaluation import evaluate
        from keel.evaluation.outcomes import outcome_from_dict
        from keel.evaluation.report import write_report

        used = decision.policy.get("value")  # the matrix the gate used: --value or the policy's
        multiclass = decision.primary.get("task") == "multiclass"
        ev = evaluate(
            challenger,
            data=data,
            target=target,
            record=False,
            outcome=outcome_from_dict(used) if used else None,
            threshold=None if multiclass else float(decision.policy.get("threshold", 0.5)),
            positive_class=positive_class,
        )
        write_report(report, ev, decision)
    if as_json:
        emit_json(decision.to_dict())
    else:
        verdict = "PROMOTE" if decision.promote else "REJECT"
        click.echo(f"{verdict}: {decision.challenger} vs {decision.champion} on {decision.data}")
        for reason in decision.reasons:
            click.echo(f"  {reason}")
        for g in decision.guardrails:  # the failed ones are among the reasons above
            if g["passed"]:
                click.echo(f"  {g['reason']}")
    if not decision.promote:
        raise SystemExit(1)
