"""``keel watch MODEL --policy loop.toml``: drift starts retraining, a gate decides, the rollout
is gradual, rollback is automatic. ``keel watch status|resume|retry MODEL``."""

from __future__ import annotations

import time
from typing import Any

import click

from keel.cli.output import ago, emit_json, table
from keel.errors import InvalidInput

__all__ = ["watch_cmd"]


class _WatchGroup(click.Group):
    """``keel watch MODEL …`` runs the loop; ``keel watch status MODEL`` and the others are
    subcommands (a model named like one of them: ``keel watch run status``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _say(tick: Any) -> None:
    for x in tick.looks:
        mark = "fired" if x.fired else "-"
        click.echo(f"  trigger {x.kind}: {mark}: {x.message}")
    if tick.not_started:
        click.echo(f"  nothing started: {tick.not_started}")
    progress = tick.progress
    if progress is not None:
        a = progress.attempt
        version = f" v{a.version}" if a.version is not None else ""
        where = f": waiting at {progress.waiting}" if progress.waiting else ""
        click.echo(f"  attempt {a.id[:8]}{version}: {a.state}{where}")


@click.group("watch", cls=_WatchGroup, invoke_without_command=False)
def watch_cmd() -> None:
    """The closed loop for one model: `keel watch MODEL --policy loop.toml [--once]`;
    `keel watch status MODEL`, `keel watch resume MODEL`, `keel watch retry MODEL`."""


@watch_cmd.command("run", hidden=True)
@click.argument("model")
@click.option("--policy", "policy_path", required=True, metavar="FILE", help="The loop policy (TOML).")
@click.option("--once", is_flag=True, help="Look at the triggers once and follow what starts to its end (for cron).")
@click.option("--interval", default="1m", show_default=True, help="How often to look at the triggers.")
@click.option("--poll", default="1s", show_default=True, help="How often to judge a rollout step.")
@click.option("--json", "as_json", is_flag=True, help="Print the last tick as JSON (with --once).")
def run_cmd(model: str, policy_path: str, once: bool, interval: str, poll: str, as_json: bool) -> None:
    """Run the loop for MODEL. Exit 0 when the loop ended well (nothing to do, or promoted),
    1 when an attempt was rejected, rolled back, aborted, failed or paused, 2 on bad input."""
    from keel.loop.policy import load_policy
    from keel.loop.watch import watch
    from keel.monitor.live import interval_seconds
    from keel.registry.versions import resolve_model
    from keel.workspace import connect

    ws = connect()
    resolve_model(ws, f"{model}@champion")  # a model without a champion is bad input
    policy = load_policy(policy_path)
    _check_registers(policy, model)
    every, step = interval_seconds(interval), interval_seconds(poll)
    last: dict[str, Any] = {}

    def on_tick(tick: Any) -> None:
        state = (tick.attempt.state if tick.attempt else None, tick.progress.waiting if tick.progress else None)
        if not as_json and state != last.get("state"):
            click.echo(time.strftime("%H:%M:%S ") + f"{model}:")
            _say(tick)
        last["state"] = state

    result = watch(ws, model, policy, once=once, interval=every, poll=step, on_tick=on_tick)
    if as_json:
        emit_json(result.to_dict())
    attempt = result.attempt
    if attempt is not None and attempt.state in ("rejected", "rolled_back", "aborted", "failed", "paused"):
        raise SystemExit(1)


def _check_registers(policy: Any, model: str) -> None:
    """The policy's pipeline must register MODEL (read when the policy imported it)."""
    registers = policy.retrain.registers
    if registers != model:
        raise InvalidInput(
            f"{policy.source}: [retrain] pipeline {policy.retrain.pipeline.rsplit('/', 1)[-1]} "
            f"registers {registers or 'nothing'}, not {model}: give it register=\"{model}\""
        )


@watch_cmd.command("status")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--limit", default=5, show_default=True, help="How many attempts to show.")
def status_cmd(model: str, as_json: bool, limit: int) -> None:
    """What the loop did for MODEL: its attempts, newest first, each with its events."""
    from keel.loop.state import attempts_of, events_of
    from keel.registry.versions import require_model
    from keel.workspace import connect

    ws = connect()
    require_model(ws, model)
    attempts = attempts_of(ws, model, limit=limit)
    stories = {a.id: events_of(ws, model, attempt=a.id) for a in attempts}
    if as_json:
        emit_json(
            {
                "model": model,
                "attempts": [
                    {**a.to_dict(), "events": [e.to_dict() for e in stories[a.id]]} for a in attempts
                ],
            }
        )
        return
    if not attempts:
        click.echo(f"{model}: the loop has started no attempt yet")
        return
    for a in attempts:
        version = f"v{a.version}" if a.version is not None else "-"
        click.echo(f"attempt {a.id[:8]}  {version}  {a.state}  (trigger {a.trigger_id}, {ago(a.created_at)})")
        table(
            ["when", "what", "state", "message"],
            [(ago(e.at), e.kind, e.state or "-", e.message) for e in stories[a.id]],
        )


def _latest(ws: Any, model: str, state: str) -> Any:
    from keel.loop.state import attempts_of

    found = next((a for a in attempts_of(ws, model, limit=1) if a.state == state), None)
    if found is None:
        newest = attempts_of(ws, model, limit=1)
        now = f"its newest attempt is {newest[0].state}" if newest else "it has no attempt"
        raise InvalidInput(f"{model} has no {state} attempt to act on: {now}")
    return found


@watch_cmd.command("resume")
@click.argument("model")
def resume_cmd(model: str) -> None:
    """Resume MODEL's paused rollout at the step it paused at (a running keel watch, or the
    next `keel watch --once`, drives it on)."""
    from keel.loop.attempt import resume
    from keel.workspace import connect

    ws = connect()
    moved = resume(ws, _latest(ws, model, "paused"))
    click.echo(f"attempt {moved.id[:8]} of {model}: rolling out again at step {(moved.step or 0) + 1}")


@watch_cmd.command("retry")
@click.argument("model")
@click.option(
    "--policy",
    "policy_path",
    default=None,
    metavar="FILE",
    help="The loop policy (TOML); default: the file the attempt was started with.",
)
def retry_cmd(model: str, policy_path: str | None) -> None:
    """Start MODEL's aborted rollout again from its first step."""
    from keel.loop.attempt import retry
    from keel.loop.policy import load_policy
    from keel.workspace import connect

    ws = connect()
    attempt = _latest(ws, model, "aborted")
    path = policy_path or attempt.trigger.get("policy")
    if not path:
        raise InvalidInput(f"attempt {attempt.id[:8]} recorded no policy file: give --policy FILE")
    moved = retry(ws, load_policy(path, check_pipeline=False), attempt)
    click.echo(f"attempt {moved.id[:8]} of {model}: canary of v{moved.version} started again")
