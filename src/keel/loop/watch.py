"""``keel watch``: the loop for one model, holding its lease while it acts.

A *tick* looks at the triggers when no attempt is under way (and starts one when one
fires), then drives the attempt as far as it can go now (:func:`keel.loop.attempt.advance`).
``--once`` ticks once and follows the attempt it started (or found) until it ends or
pauses, waiting through its rollout steps: a cron job's whole loop. Without it, the
loop ticks for ever: every ``poll`` seconds while a rollout step waits, else every
``interval``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.loop.attempt import Progress, advance
from keel.loop.state import (
    LEASE_SECONDS,
    Attempt,
    Lease,
    LoopHeld,
    acquire,
    active_attempt,
    release,
    renew,
    start_attempt,
)
from keel.loop.triggers import TriggerLook, look

if TYPE_CHECKING:
    from keel.loop.policy import LoopPolicy
    from keel.workspace import Workspace

__all__ = ["Tick", "tick", "watch"]


@dataclass
class Tick:
    """One tick: what the triggers said, what started, and where the attempt stands."""

    model: str
    looks: list[TriggerLook] = field(default_factory=list)
    started: Attempt | None = None
    not_started: str | None = None  # why a firing started nothing
    progress: Progress | None = None

    @property
    def attempt(self) -> Attempt | None:
        return self.progress.attempt if self.progress is not None else self.started

    def to_dict(self) -> dict[str, Any]:
        attempt = self.attempt
        return {
            "model": self.model,
            "triggers": [x.to_dict() for x in self.looks],
            "started": self.started.id if self.started is not None else None,
            "not_started": self.not_started,
            "attempt": attempt.to_dict() if attempt is not None else None,
            "waiting": self.progress.waiting if self.progress is not None else None,
        }


class _Notifier:
    """Loop alerts through the monitor's delivery (webhooks, JSONL)."""

    def __init__(self, policy: LoopPolicy, model: str) -> None:
        from keel.monitor.alerts import Alerter

        self.model = model
        self.alerter = (
            Alerter(policy.alerts.webhooks, policy.alerts.jsonl)
            if policy.alerts.webhooks or policy.alerts.jsonl
            else None
        )

    def __call__(self, kind: str, message: str, evidence: dict[str, Any]) -> None:
        if self.alerter is not None:
            self.alerter.send(
                {"source": "keel watch", "model": self.model, "kind": kind, "message": message, "evidence": evidence}
            )

    def close(self) -> None:
        if self.alerter is not None:
            self.alerter.close()


def tick(
    ws: Workspace,
    model: str,
    policy: LoopPolicy,
    *,
    notify: Callable[[str, str, dict[str, Any]], None] | None = None,
    now: float | None = None,
) -> Tick:
    """One look and one drive (the caller holds the model's lease)."""
    tell = notify or (lambda *_: None)
    result = Tick(model)
    attempt = active_attempt(ws, model)
    if attempt is None:
        result.looks = look(ws, model, policy, now=now)
        for fired in (x for x in result.looks if x.fired):
            assert fired.trigger_id is not None
            attempt, why = start_attempt(
                ws,
                model,
                fired.trigger_id,
                {**fired.to_dict(), "policy": policy.path},  # what a retry reads again
                cooldown=policy.trigger.cooldown,
            )
            if attempt is not None:
                result.started = attempt
                tell("trigger", f"{model}: {fired.message}", fired.to_dict())
                break
            result.not_started = why
    if attempt is not None and attempt.state != "paused":
        result.progress = advance(ws, policy, attempt, notify=tell, now=now)
    elif attempt is not None:
        result.progress = Progress(attempt, None)
    return result


class _Holder:
    """Holds the lease and renews it on a thread while the loop works (training can take
    longer than a lease)."""

    def __init__(self, ws: Workspace, model: str, seconds: float) -> None:
        self.ws, self.seconds = ws, seconds
        self.lease: Lease = acquire(ws, model, seconds=seconds)
        self.lost: LoopHeld | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="keel-loop-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.lease = renew(self.ws, self.lease, self.seconds)
            except LoopHeld as exc:  # it expired (the process stalled) and another took it
                self.lost = exc
                return
            except Exception:  # noqa: BLE001, S112 - a transient store error: try again
                continue

    def check(self) -> None:
        if self.lost is not None:
            raise self.lost

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.lost is None:
            release(self.ws, self.lease)


def watch(
    ws: Workspace,
    model: str,
    policy: LoopPolicy,
    *,
    once: bool = False,
    interval: float = 60.0,
    poll: float = 1.0,
    on_tick: Callable[[Tick], None] | None = None,
    lease_seconds: float = LEASE_SECONDS,
) -> Tick:
    """Run the loop for ``model``; with ``once``, one tick followed to its end or pause.
    Returns the last tick. Another ``keel watch`` holding the loop is :class:`LoopHeld`."""
    from keel.registry.versions import resolve_model

    resolve_model(ws, f"{model}@champion")  # no champion: bad input, before the lease
    holder = _Holder(ws, model, lease_seconds)
    notify = _Notifier(policy, model)
    try:
        while True:
            holder.check()
            result = tick(ws, model, policy, notify=notify)
            if on_tick is not None:
                on_tick(result)
            progress = result.progress
            while progress is not None and progress.waiting is not None:
                time.sleep(poll)
                holder.check()
                progress = advance(ws, policy, progress.attempt, notify=notify)
                result.progress = progress
                if on_tick is not None:
                    on_tick(result)
            if once:
                return result
            time.sleep(interval)
    finally:
        notify.close()
        holder.close()
