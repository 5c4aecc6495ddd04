"""``keel serve``, ``keel deploy …`` and ``keel logs``: serving and online validation from the shell."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from keel.cli.output import emit_json, table, when

__all__ = ["deploy", "logs_cmd", "serve_cmd"]


@click.command("serve")
@click.argument("model")
@click.option(
    "--alias", default="champion", show_default=True, help="The alias to serve and follow."
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind (elsewhere than loopback needs KEEL_SERVE_TOKEN).",
)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=int,
    help="Worker processes; each follows alias and deployment moves.",
)
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=int,
    help="BLAS/OpenMP threads per worker (OMP_NUM_THREADS, if you set it, wins).",
)
@click.option(
    "--flush-interval",
    default=1.0,
    show_default=True,
    type=float,
    help="Seconds between prediction-log flushes: the most a kill -9 can lose.",
)
@click.option(
    "--log-sample",
    default=1.0,
    show_default=True,
    type=float,
    help="Fraction of requests whose predictions are logged.",
)
@click.option(
    "--max-batch", default=10_000, show_default=True, type=int, help="Rows per request at most."
)
@click.option(
    "--max-body-mb", default=32.0, show_default=True, type=float, help="Request body size limit."
)
@click.option(
    "--extra-field",
    "extra_fields",
    multiple=True,
    help="An input field outside the model's signature to accept and log, never given to the "
    "model (a customer id to route canaries by). Repeatable.",
)
@click.option(
    "--poll",
    default=0.25,
    show_default=True,
    type=float,
    help="Seconds between looks for alias and deployment moves.",
)
@click.option(
    "--allow-stale-features",
    is_flag=True,
    help="Serve a model trained on a training set even when the online table was built from "
    "other feature versions than it was trained on (a warning, not a refusal).",
)
def serve_cmd(
    model: str,
    alias: str,
    host: str,
    port: int,
    workers: int,
    threads: int,
    flush_interval: float,
    log_sample: float,
    max_batch: int,
    max_body_mb: float,
    extra_fields: tuple[str, ...],
    poll: float,
    allow_stale_features: bool,
) -> None:
    """Serve MODEL@ALIAS over HTTP: /predict, /feedback, the Open Inference Protocol v2 routes,
    /healthz and /metrics (OpenAPI at /docs). Follows promotions, rollbacks and deployments."""
    from keel.serve.config import ServeConfig
    from keel.serve.server import limit_threads

    limit_threads(threads)  # before numpy is imported by anything below
    from keel.registry.versions import resolve_model
    from keel.workspace import connect

    ws = connect()
    served = resolve_model(
        ws, f"{model}@{alias}"
    )  # a missing model or alias: exit 2 here, not in a worker
    config = ServeConfig(
        model=model,
        alias=alias,
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        workspace=str(ws.root),
        flush_seconds=flush_interval,
        log_sample=log_sample,
        max_batch=max_batch,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        poll_seconds=poll,
        extra_fields=tuple(extra_fields),
        token=os.environ.get("KEEL_SERVE_TOKEN") or None,
        allow_stale_features=allow_stale_features,
    )
    from keel.serve.server import check_exposure, check_port

    check_exposure(config)  # one error line, not the banner and then the error
    check_port(config)
    from keel.deploy.fields import declare_fields

    declare_fields(ws, model, extra_fields)  # every server of the model accepts them from now on
    if served.signature and served.signature.get("features"):
        _check_features(ws, served.ref, served.signature, allow_stale_features)
    if not served.signature:
        click.echo(
            f"keel: warning: {served.ref} has no signature (it was logged without an "
            "input_example): requests are not checked before the model sees them, and one "
            "it cannot score is refused with the model's own error",
            err=True,
        )
    click.echo(
        f"keel: serving {served.ref} ({model}@{alias}) on http://{host}:{port} with {workers} worker(s); "
        f"OpenAPI at /docs; Ctrl-C stops",
        err=True,
    )
    from keel.serve.server import serve

    serve(config)


def _check_features(ws: Any, ref: str, doc: dict[str, Any], allow_stale: bool) -> None:
    """A model trained on a training set: its features must be online, from the versions it
    was trained on (exit 2 here, not in a worker); say what requests carry."""
    from keel.registry.signature import Signature
    from keel.serve.features import FeatureAssembler

    assembler = FeatureAssembler(ws, ref, Signature.from_dict(doc), allow_stale=allow_stale)
    for text in assembler.warnings:
        click.echo(f"keel: warning: {text} (--allow-stale-features)", err=True)
    views = ", ".join(v.name for v in assembler.views)
    fields = ", ".join(c.name for c in assembler.request.columns)
    click.echo(f"keel: {ref} takes {fields}; its features are looked up online ({views})", err=True)


class _DeployGroup(click.Group):
    """``keel deploy MODEL --challenger N …`` starts a deployment; the other words are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


@click.group("deploy", cls=_DeployGroup)
def deploy() -> None:
    """Online validation: `keel deploy MODEL --challenger N --mode shadow|canary|ab`, then status,
    promote, stop, watch."""


def _value(text: str | None) -> Any:
    if text is None:
        return None
    from keel.evaluation.outcomes import ValueMatrix

    return ValueMatrix.parse(text)


@deploy.command("start")
@click.argument("model")
@click.option("--challenger", required=True, type=int, help="The challenger's version number.")
@click.option(
    "--mode",
    required=True,
    type=click.Choice(["shadow", "canary", "ab"]),
    help="shadow: scores every request, answers none; canary/ab: answers a share.",
)
@click.option(
    "--share",
    type=float,
    help="Fraction of traffic (or of sticky keys) the challenger answers (canary 0.1, ab 0.5).",
)
@click.option(
    "--key", help="Input field whose hash picks the arm, so a customer always meets the same one."
)
@click.option(
    "--guardrails",
    "guardrails_path",
    type=click.Path(dir_okay=False),
    help="TOML bounds; a breach routes everything back to the champion.",
)
@click.option(
    "--value", "value", help="Value matrix tp=…,fp=…,fn=…,tn=… the online outcome is judged by."
)
@click.option("--alias", default="champion", show_default=True)
@click.option("-m", "--message", default="", help="Why, for the event log.")
@click.option("--json", "as_json", is_flag=True)
def start_cmd(
    model: str,
    challenger: int,
    mode: str,
    share: float | None,
    key: str | None,
    guardrails_path: str | None,
    value: str | None,
    alias: str,
    message: str,
    as_json: bool,
) -> None:
    """Start a deployment: the challenger meets traffic beside MODEL@ALIAS."""
    from keel.deploy import Guardrails, start_deployment
    from keel.workspace import connect

    rails = Guardrails.load(guardrails_path) if guardrails_path else None
    outcome = _value(value)
    dep = start_deployment(
        connect(),
        model,
        challenger,
        mode=mode,
        share=share,
        key=key,
        guardrails=rails,
        outcome=outcome.to_dict() if outcome is not None else None,
        alias=alias,
        message=message,
    )
    if as_json:
        emit_json(dep.to_dict())
        return
    what = (
        "scores every request, answers none"
        if mode == "shadow"
        else f"answers {dep.share:.0%} of {'keys' if key else 'requests'}"
    )
    click.echo(
        f"{model}: {dep.challenger_ref} in {mode} beside {model}@{alias} ({what}); deployment {dep.id[:8]}"
    )


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


@deploy.command("status")
@click.argument("model")
@click.option(
    "--since", help="Judge traffic since (1h, 2d, an ISO time); default: the deployment's start."
)
@click.option(
    "--value", "value", help="Value matrix tp=…,fp=…,fn=…,tn=… (default: the deployment's)."
)
@click.option("--json", "as_json", is_flag=True)
def status_cmd(model: str, since: str | None, value: str | None, as_json: bool) -> None:
    """Traffic, errors, latency and the online outcome metric per arm, with intervals, and the
    always-valid test between champion and challenger."""
    from keel.deploy.status import deployment_status
    from keel.store.logs import parse_since
    from keel.workspace import connect

    start = parse_since(since) if since and since != "all" else (0.0 if since == "all" else None)
    doc = deployment_status(connect(), model, since=start, outcome=_value(value))
    if as_json:
        emit_json(doc)
        return
    dep = doc["deployment"]
    click.echo(
        f"{model}: champion {doc['champion'] or '(none)'}"
        + (
            f"; {dep['mode']} {dep['challenger']} since {when(dep['created_at'])}"
            + (f" at share {dep['share']:g}" if dep["mode"] != "shadow" else "")
            if dep
            else "; no live deployment"
        )
    )
    if not doc["arms"]:
        click.echo("no logged predictions in this window yet")
    else:
        table(
            [
                "version",
                "arm",
                "requests",
                "errors",
                "p50 ms",
                "p99 ms",
                "outcomes",
                "metric",
                "online",
                "95% interval",
                "offline",
            ],
            [
                (
                    a["ref"],
                    a["arm"] + ("" if a["served"] else " (shadow)"),
                    a["requests"],
                    a["errors"],
                    _fmt(a["latency_ms"]["p50"], 3),
                    _fmt(a["latency_ms"]["p99"], 3),
                    a["outcomes"],
                    (a["metric"] or "-")
                    + (f" @{a['threshold']:.3g}" if a.get("threshold") is not None else ""),
                    _fmt(a["value"]),
                    f"[{_fmt(a['interval'][0])}, {_fmt(a['interval'][1])}]"
                    if a["interval"]
                    else "-",
                    _fmt((a["offline"] or {}).get("metrics", {}).get(a["metric"] or "", None))
                    if a["offline"]
                    else "-",
                )
                for a in doc["arms"]
            ],
        )
    for a in doc["arms"]:
        if a["errors"] and a.get("top_error"):
            click.echo(f"{a['ref']} {a['arm']}: {a['errors']} errors, most often: {a['top_error']}")
    if any(a.get("threshold") is not None for a in doc["arms"]):
        click.echo(
            "metric @t: decisions at the threshold t of the version's newest offline "
            "evaluation, as its offline figure"
        )
    test = doc["test"]
    if test is not None:
        lo, hi = test["interval"] or (None, None)
        click.echo(
            f"challenger - champion on {test['metric']}: {_fmt(test['difference'])} "
            f"(always-valid {1 - test['alpha']:.0%} interval [{_fmt(lo)}, {_fmt(hi)}], p={_fmt(test['p_value'], 3)}): {test['decision']}"
        )
    extra = doc["outcomes"]
    if extra["unmatched"] or extra["duplicates_ignored"]:
        click.echo(
            f"outcomes: {extra['unmatched']} name no logged prediction; {extra['duplicates_ignored']} repeats ignored (first wins)"
        )
    for e in doc["events"][:5]:
        click.echo(f"  {when(e['at'])}  {e['action']:<8} {e['actor']}: {e['message']}")


@deploy.command("promote")
@click.argument("model")
@click.option("-m", "--message", default="")
def promote_cmd(model: str, message: str) -> None:
    """Make the challenger the champion (the alias moves; every server follows) and end the deployment."""
    from keel.deploy import promote_challenger
    from keel.workspace import connect

    moved = promote_challenger(connect(), model, message)
    alias = next((e for e in moved if e.kind == "model.alias"), None)
    click.echo(
        f"{alias.name if alias else model}: v{alias.from_target if alias else '?'} -> v{alias.to_target if alias else '?'}; deployment ended"
    )


@deploy.command("stop")
@click.argument("model")
@click.option("-m", "--message", default="")
def stop_cmd(model: str, message: str) -> None:
    """End the deployment: all traffic back to the champion."""
    from keel.deploy import end_deployment
    from keel.workspace import connect

    end_deployment(connect(), model, action="stop", message=message or "stopped by hand")
    click.echo(f"{model}: deployment stopped; the champion answers everything")


@deploy.command("watch")
@click.argument("model")
@click.option(
    "--interval", default=5.0, show_default=True, type=float, help="Seconds between checks."
)
@click.option(
    "--once",
    is_flag=True,
    help="Check once; exit 1 if a guardrail was breached (and the deployment rolled back).",
)
@click.option("--json", "as_json", is_flag=True)
def watch_cmd(model: str, interval: float, once: bool, as_json: bool) -> None:
    """Judge the live deployment's guardrails on the log lake; on a breach, roll it back."""
    from keel.deploy.watch import judge
    from keel.workspace import connect

    ws = connect()
    while True:
        verdict = judge(ws, model)
        if as_json:
            emit_json(verdict.to_dict())
        elif verdict.deployment is None:
            click.echo(f"{model}: no live deployment")
        elif verdict.breaches:
            click.echo(
                f"{model}: guardrail breached, rolled back {verdict.deployment.challenger_ref}: "
                + "; ".join(b.message for b in verdict.breaches)
            )
        else:
            click.echo(
                f"{model}: {verdict.deployment.challenger_ref} holds its guardrails (requests {verdict.requests})"
            )
        if once or verdict.deployment is None or verdict.breaches:
            sys.exit(1 if verdict.breaches else 0)
        time.sleep(interval)


@click.command("logs")
@click.argument("model")
@click.option("--since", default="1h", show_default=True, help="1h, 2d, an ISO time, or 'all'.")
@click.option(
    "--limit", default=20, show_default=True, help="Newest rows to print (not for --out)."
)
@click.option("--outcomes", "with_outcomes", is_flag=True, help="Join the outcomes fed back.")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    help="Write every row in the window to a Parquet file.",
)
@click.option("--json", "as_json", is_flag=True)
def logs_cmd(
    model: str, since: str, limit: int, with_outcomes: bool, out: str | None, as_json: bool
) -> None:
    """Logged predictions of MODEL (newest first), from the log lake."""
    from keel.registry.versions import require_model
    from keel.store.logs import parse_since
    from keel.workspace import connect

    ws = connect()
    require_model(ws, model)
    start = None if since == "all" else parse_since(since)
    if with_outcomes:
        from keel.evaluation.online import join

        frame = join(model, since=start, workspace=ws, how="left")
        rel = None
    else:
        rel = ws.logs.scan("predictions", model, start)
        frame = None
    if out is not None:
        import pyarrow.parquet as pq

        table_ = frame if frame is not None else (rel.to_arrow_table() if rel is not None else None)
        if table_ is None or len(table_) == 0:
            raise click.ClickException(f"no logged predictions of {model} since {since}")
        if frame is not None:
            import pyarrow as pa

            table_ = pa.Table.from_pandas(frame, preserve_index=False)
        tmp = f"{out}.{os.getpid()}.tmp"
        pq.write_table(table_, tmp)
        os.replace(tmp, out)
        click.echo(f"wrote {len(table_)} rows to {out}")
        return
    if frame is None:
        frame = rel.order("ts DESC").limit(limit).df() if rel is not None else None
    else:
        frame = frame.sort_values("ts", ascending=False).head(limit)
    # a missing value is null (to_dict gives NaN, which --json would print as a bare NaN)
    rows = (
        [] if frame is None else frame.astype(object).where(frame.notna(), None).to_dict("records")
    )
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo(f"no logged predictions of {model} since {since}")
        return
    inputs = [c for c in rows[0] if c.startswith("input_")][:4]
    headers = [
        "time",
        "prediction_id",
        "version",
        "arm",
        "prediction",
        "ms",
        *[c[6:] for c in inputs],
    ]
    if with_outcomes:
        headers.insert(5, "outcome")
    body = []
    for r in rows:
        pred = r.get("label") if r.get("label") is not None else r.get("prediction")
        line = [
            r["ts"].strftime("%m-%d %H:%M:%S") if hasattr(r["ts"], "strftime") else str(r["ts"]),
            r.get("prediction_id") or f"({r.get('error')})",
            f"v{r['version']}",
            r["arm"] + ("" if r["served"] else "*"),
            _fmt(pred),
            _fmt(r["latency_ms"], 3),
            *[_fmt(r.get(c)) for c in inputs],
        ]
        if with_outcomes:
            line.insert(
                5,
                _fmt(
                    r.get("outcome") if r.get("outcome_label") is None else r.get("outcome_label")
                ),
            )
        body.append(line)
    table(headers, body)
