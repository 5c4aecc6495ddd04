"""A self-contained HTML report (plotly, its JavaScript inlined once: it opens offline).

Summary first (model, data, headline metrics, value with its interval, the
threshold), then ROC and precision-recall curves, calibration, value against
threshold, a per-slice table and bars, and, for a gate, its evidence.
"""

from __future__ import annotations

import html
import json
import os
from typing import TYPE_CHECKING, Any

from keel.store.jsondoc import plain

if TYPE_CHECKING:
    from keel.evaluation.evaluation import Evaluation
    from keel.evaluation.gate import Decision

__all__ = ["write_report"]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}"
    return html.escape(str(v)) if v is not None else "–"


def _figures(ev: Evaluation) -> list[Any]:
    import plotly.graph_objects as go

    figs = []
    c = ev.curves
    if "roc" in c:
        f = go.Figure(go.Scatter(x=c["roc"]["fpr"], y=c["roc"]["tpr"], mode="lines", name="ROC"))
        f.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"dash": "dot", "color": "grey"})
        f.update_layout(
            title=f"ROC (AUC {_fmt(ev.metrics.get('auc'))})",
            xaxis_title="false positive rate",
            yaxis_title="true positive rate",
        )
        figs.append(f)
    if "pr" in c:
        f = go.Figure(
            go.Scatter(x=c["pr"]["recall"], y=c["pr"]["precision"], mode="lines", name="PR")
        )
        f.update_layout(title="Precision-recall", xaxis_title="recall", yaxis_title="precision")
        figs.append(f)
    if "calibration" in c:
        cal = c["calibration"]
        f = go.Figure(
            go.Scatter(
                x=cal["predicted"],
                y=cal["observed"],
                mode="lines+markers",
                name="model",
                text=[f"{n} rows" for n in cal["count"]],
            )
        )
        f.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"dash": "dot", "color": "grey"})
        f.update_layout(
            title=f"Calibration (error {_fmt(ev.metrics.get('calibration_error'))})",
            xaxis_title="predicted probability",
            yaxis_title="observed frequency",
        )
        figs.append(f)
    if "value" in c:
        f = go.Figure(
            go.Scatter(x=c["value"]["threshold"], y=c["value"]["total"], mode="lines", name="value")
        )
        if ev.threshold is not None:
            f.add_vline(
                x=ev.threshold,
                line={"dash": "dash"},
                annotation_text=f"threshold {ev.threshold:.3g}",
            )
        f.update_layout(
            title="Total value against the decision threshold",
            xaxis_title="threshold",
            yaxis_title="total value",
        )
        figs.append(f)
    judged = {k: v for k, v in ev.slices.items() if not v.get("too_small")}
    if judged:
        key = "auc" if ev.task == "classification" else "rmse"
        names = list(judged)
        f = go.Figure(go.Bar(x=names, y=[judged[n]["metrics"].get(key) for n in names], name=key))
        f.update_layout(title=f"{key} per slice", yaxis_title=key)
        figs.append(f)
    return figs


def write_report(
    path: str | os.PathLike[str], ev: Evaluation, decision: Decision | None = None
) -> str:
    """Write the report to ``path`` (atomically) and return the path."""
    import plotly.io as pio

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>keel evaluation: {html.escape(ev.model)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px}"
        "table{border-collapse:collapse}td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}"
        ".pass{color:#0a7a2f}.fail{color:#b3261e}</style></head><body>",
        f"<h1>{html.escape(ev.model)} on {html.escape(ev.data)}</h1>",
        f"<p>target <b>{html.escape(ev.target)}</b>, {ev.rows:,} rows, {ev.task}; evaluation {ev.id[:8]}</p>",
    ]
    if ev.positive_class is not None:
        how = "chosen" if ev.positive_chosen else "the last class, by default"
        parts.append(f"<p>positive class <b>{html.escape(str(ev.positive_class))}</b> ({how})</p>")
    if decision is not None:
        cls = "pass" if decision.promote else "fail"
        verdict = "PROMOTE" if decision.promote else "DO NOT PROMOTE"
        parts.append(
            f"<h2 class='{cls}'>Gate: {verdict} {html.escape(decision.challenger)} over "
            f"{html.escape(decision.champion)}</h2><ul>"
        )
        parts += [f"<li>{html.escape(r)}</li>" for r in decision.reasons]
        parts.append("</ul><table><tr><th>evidence</th><th>value</th></tr>")
        parts += [
            f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>"
            for k, v in decision.primary.items()
        ]
        parts.append("</table>")
        if decision.guardrails:
            parts.append("<h3>Guardrails</h3><ul>")
            parts += [
                f"<li class='{'pass' if g['passed'] else 'fail'}'>{html.escape(g.get('reason', ''))}</li>"
                for g in decision.guardrails
            ]
            parts.append("</ul>")
    parts.append("<h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>")
    parts += [
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in ev.metrics.items()
    ]
    parts.append("</table>")
    confusion = ev.curves.get("confusion")
    if confusion is not None:
        names = [html.escape(str(c)) for c in confusion["classes"]]
        parts.append(
            "<h2>Confusion matrix</h2><table><tr><th>truth \\ predicted</th>"
            + "".join(f"<th>{n}</th>" for n in names)
            + "</tr>"
        )
        for name, row in zip(names, confusion["matrix"], strict=True):
            parts.append(
                f"<tr><th>{name}</th>" + "".join(f"<td>{int(v):,}</td>" for v in row) + "</tr>"
            )
        parts.append("</table>")
    if ev.outcome is not None:
        o = ev.outcome
        parts.append(
            f"<h2>Value</h2><p>total <b>{_fmt(o.total)}</b> ({o.confidence:.0%} interval {_fmt(o.total_interval[0])} "
            f"to {_fmt(o.total_interval[1])}); per decision {_fmt(o.per_row)}; threshold {_fmt(ev.threshold)}</p>"
        )
    if ev.slices:
        parts.append(
            "<h2>Slices</h2><table><tr><th>slice</th><th>rows</th><th>metrics</th><th>value</th></tr>"
        )
        for name, s in ev.slices.items():
            if s.get("too_small"):
                parts.append(
                    f"<tr><td>{html.escape(name)}</td><td>{s['rows']}</td><td colspan=2>"
                    f"{html.escape(s['note'])}</td></tr>"
                )
                continue
            metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in s["metrics"].items() if v is not None)
            value = _fmt(s.get("value", {}).get("total")) if "value" in s else "–"
            parts.append(
                f"<tr><td>{html.escape(name)}</td><td>{s['rows']:,}</td><td>{metrics}</td><td>{value}</td></tr>"
            )
        parts.append("</table>")
    for i, fig in enumerate(_figures(ev)):
        parts.append(
            pio.to_html(fig, full_html=False, include_plotlyjs="inline" if i == 0 else False)
        )
    parts.append(
        f"<script type='application/json' id='keel-evaluation'>{html.escape(json.dumps(ev.to_dict(), default=plain))}</script>"
    )
    parts.append("</body></html>")
    target = os.fspath(path)
    tmp = f"{target}.keel-tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
    os.replace(tmp, target)
    return target
