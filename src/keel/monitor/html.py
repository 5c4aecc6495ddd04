"""A self-contained HTML drift report (plotly, its JavaScript inlined once: opens offline).

Summary first (status, what drifted and how much, the decision rule), then the
multivariate and performance panels, then per-column overlays of the two
distributions with every detector's statistic.
"""

from __future__ import annotations

import html
import itertools
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.monitor.feature import FeatureDrift
    from keel.monitor.report import DriftReport

__all__ = ["write_report"]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "–" if v is None else html.escape(str(v))


def _overlay(f: FeatureDrift) -> Any:
    import plotly.graph_objects as go

    d = f.distribution
    if not d:
        return None
    if "edges" in d:
        e = d["edges"]
        x = [(a + b) / 2 for a, b in itertools.pairwise(e)]
    else:
        x = d["categories"]
    fig = go.Figure()
    fig.add_bar(x=x, y=d["reference"], name="reference", opacity=0.6)
    fig.add_bar(x=x, y=d["current"], name="current", opacity=0.6)
    fig.update_layout(
        barmode="overlay",
        title=f"{f.name}: {f.status} ({f.method} {_fmt(f.statistic)})",
        yaxis_title="share of rows",
        height=320,
        margin={"t": 40, "b": 30},
    )
    return fig


def _performance_fig(report: DriftReport) -> Any:
    import plotly.graph_objects as go

    perf = report.performance
    if perf is None or not perf.chunks:
        return None
    m = perf.metric
    x = [c["start"] for c in perf.chunks]
    y = [c[m] for c in perf.chunks]
    lo = [c[m] - c["interval"][0] for c in perf.chunks]
    hi = [c["interval"][1] - c[m] for c in perf.chunks]
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=y,
            mode="lines+markers",
            name=m,
            error_y={"type": "data", "array": hi, "arrayminus": lo},
        )
    )
    if perf.first_detection is not None:
        fig.add_vline(
            x=perf.first_detection,
            line={"dash": "dash", "color": "red"},
            annotation_text=f"change detected at row {perf.first_detection:,}",
        )
    fig.update_layout(
        title=f"Realized {m} per chunk (95% intervals)", xaxis_title="first row of the chunk"
    )
    return fig


def _over_time_fig(report: DriftReport) -> Any:
    """Each feature's effect statistic per chunk of the current table: since when it drifted."""
    import plotly.graph_objects as go

    shown = [f for f in report.features.values() if f.over_time]
    if not shown:
        return None
    fig = go.Figure()
    for f in sorted(shown, key=lambda f: (not f.drifted, f.name)):
        fig.add_trace(
            go.Scatter(
                x=[c["first_row"] for c in f.over_time],
                y=[c["statistic"] for c in f.over_time],
                mode="lines+markers",
                name=f"{f.name} ({f.method})",
                visible=True if f.drifted else "legendonly",
                hovertemplate=f"{f.name}: %{{y:.3f}} from row %{{x}} (drift at {f.threshold})",
            )
        )
    fig.update_layout(
        title="Effect size per chunk of the current table (drifted features shown; click others)",
        xaxis_title="first row of the chunk",
        yaxis_title="effect size",
        height=380,
    )
    return fig


def _row(f: FeatureDrift) -> str:
    cls = "drift" if f.drifted else ""
    why = "; ".join([*f.reasons, *f.notes]) or "–"
    miss = f.missing
    missing = f"{miss['reference']:.1%} → {miss['current']:.1%}" if "reference" in miss else "–"
    return (
        f"<tr class='{cls}'><td>{html.escape(f.name)}</td><td>{html.escape(f.role)}</td>"
        f"<td>{f.kind}</td><td>{html.escape(f.status)}</td><td>{_fmt(f.method)}</td>"
        f"<td>{_fmt(f.statistic)}</td><td>{_fmt(f.threshold)}</td><td>{_fmt(f.p_value)}</td>"
        f"<td>{missing}</td><td>{html.escape(why)}</td></tr>"
    )


def render(report: DriftReport) -> str:
    """The report as one HTML document."""
    import plotly.io as pio

    columns = [*report.features.values()]
    columns += [f for f in (report.prediction, report.target) if f is not None]
    ordered = sorted(columns, key=lambda f: (not f.drifted, -(f.statistic or 0.0)))
    figs = [_over_time_fig(report), _performance_fig(report)] + [_overlay(f) for f in ordered]
    parts = []
    first = True
    for fig in figs:
        if fig is None:
            continue
        parts.append(
            pio.to_html(fig, full_html=False, include_plotlyjs="inline" if first else False)
        )
        first = False
    schema_html = ""
    if report.schema.changed:
        schema_html = (
            f"<h2>Schema</h2><p>{html.escape(report.schema.sentence())}.</p>"
            if report.schema_broken
            else f"<h2>Schema</h2><p>Not a break: {html.escape(report.schema.sentence())}.</p>"
        )
    mv = report.multivariate
    mv_html = ""
    if mv is not None and mv.auc is not None:
        lo, hi = mv.auc_interval or (float("nan"), float("nan"))
        top = ", ".join(f"{c} ({w:.3f})" for c, w in mv.top_columns) or "–"
        pca = mv.pca
        mv_html = (
            f"<h2>Multivariate drift</h2><p>Domain classifier AUC <b>{mv.auc:.3f}</b> "
            f"(95% interval {lo:.3f}–{hi:.3f}; drift when the interval is above "
            f"{mv.auc_threshold}) on {mv.rows:,} rows a side. Columns that tell the tables "
            f"apart: {html.escape(top)}.</p>"
            + (
                f"<p><b>Tripped</b>: {html.escape('; '.join(mv.reasons()))}.</p>"
                if mv.drifted
                else "<p>Not tripped.</p>"
            )
        )
        if "ratio" in pca:
            mv_html += (
                f"<p>PCA reconstruction error ({pca['components']} components): reference "
                f"{pca['reference_error']:.4g}, current {pca['current_error']:.4g} "
                f"(ratio {pca['ratio']:.3f}; drift at {pca['threshold']} and z &gt; 3).</p>"
            )
    est = report.estimated_performance
    est_html = ""
    if est is not None:
        est_html = (
            f"<h2>Estimated performance (CBPE, no outcomes yet)</h2><p>Expected accuracy "
            f"<b>{est.accuracy:.3f}</b> ({est.accuracy_interval[0]:.3f}–"
            f"{est.accuracy_interval[1]:.3f}), expected AUC {est.auc:.3f} on {est.rows:,} rows. "
            f"<b>{'Trustworthy' if est.trustworthy else 'Not trustworthy'}</b>: "
            f"{html.escape(est.reason)}.</p>"
        )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    rows = "".join(_row(f) for f in ordered)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>keel drift report {report.id[:8]}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; }}
tr.drift td {{ background: #fde8e8; }}
.verdict {{ font-size: 1.4em; font-weight: bold; }}
</style></head><body>
<h1>Drift report</h1>
<p class="verdict">{html.escape(report.headline())}</p>
<p>Reference: {html.escape(report.reference)} ({report.rows[0]:,} rows) · current:
{html.escape(report.current)} ({report.rows[1]:,} rows) · report {report.id[:8]}</p>
<h2>The decision rule</h2><p>{html.escape(report.explanation())}</p>
{"<ul>" + notes + "</ul>" if notes else ""}
{schema_html}
<h2>Columns</h2>
<table><tr><th>column</th><th>role</th><th>kind</th><th>status</th><th>effect</th>
<th>statistic</th><th>threshold</th><th>p (corrected)</th><th>missing</th><th>why</th></tr>
{rows}</table>
{mv_html}{est_html}
{"".join(f"<div>{p}</div>" for p in parts)}
</body></html>
"""


def write_report(path: str | os.PathLike[str], report: DriftReport) -> str:
    """Write the HTML report to ``path``; returns the path."""
    out = os.fspath(path)
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(render(report))
    return out
