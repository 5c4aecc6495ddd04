"""What a worker serves right now, and the thread that keeps it current.

The served models live in one immutable :class:`Routing`; a request reads it
once and finishes on it. A watcher thread polls the metadata store for alias
and deployment moves; on a change it loads the new models beside the old
ones and then swaps the reference, so in-flight requests finish on the old
models and no request fails. The same thread judges the live deployment's
guardrails and, on a breach, ends it (an event that says why) and routes
everything back to the champion at once; other workers and replicas see the
ended deployment at their next poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.deploy.guardrails import ArmWindow, check

if TYPE_CHECKING:
    from keel.deploy.records import Deployment
    from keel.registry.scoring import Scorer
    from keel.serve.config import ServeConfig
    from keel.serve.features import FeatureAssembler
    from keel.serve.metrics import ServerMetrics
    from keel.store.logs import LogWriter
    from keel.workspace import Workspace

__all__ = ["Routing", "Runtime"]

log = logging.getLogger("keel.serve")

_OUTCOME_CHECK_SECONDS = 10.0
_DRIFT_CHECK_SECONDS = 30.0


@dataclass(frozen=True)
class Routing:
    champion: Scorer
    challenger: Scorer | None = None
    deployment: Deployment | None = None
    state: tuple[str | None, str | None] = (None, None)  # (alias target, deployment id)
    windows: dict[str, ArmWindow] = field(default_factory=dict)
    # fields outside the signature to accept and log: --extra-field and every declared one
    extras: tuple[str, ...] = ()
    # per arm, for a model trained on a training set: what looks its features up
    features: dict[str, FeatureAssembler] = field(default_factory=dict)


class Runtime:
    """One worker's models, log writer and watcher."""

    def __init__(
        self, ws: Workspace, config: ServeConfig, metrics: ServerMetrics, writer: LogWriter
    ) -> None:
        self.ws = ws
        self.config = config
        self.metrics = metrics
        self.writer = writer
        self.routing: Routing | None = None
        self.ready = False
        self.last_error: str | None = None
        self._cache: OrderedDict[int, Scorer] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outcome_checked = 0.0
        self._outcome_interval: tuple[float, float] | None = None
        self._drift_checked = 0.0
        self._drift_seen: tuple[int, str] | None = None

    # -- loading ---------------------------------------------------------------

    def _scorer(self, number: int) -> Scorer:
        found = self._cache.get(number)
        if found is not None:
            self._cache.move_to_end(number)
            return found
        from keel.registry import load_model
        from keel.registry.scoring import Scorer

        scorer = Scorer(load_model(f"{self.config.model}/v{number}", workspace=self.ws))
        self._cache[number] = scorer
        while len(self._cache) > 4:
            self._cache.popitem(last=False)
        return scorer

    def _build(self, state: tuple[str | None, str | None]) -> Routing:
        from keel.deploy.fields import declared_fields
        from keel.deploy.records import current_deployment
        from keel.errors import NotFound

        target, did = state
        if target is None:
            raise NotFound(
                f"{self.config.model}@{self.config.alias} points nowhere: "
                f"`keel models promote {self.config.model} N` first"
            )
        champion = self._scorer(int(target))
        deployment = current_deployment(self.ws, self.config.model) if did else None
        if deployment is not None and deployment.alias != self.config.alias:
            deployment = None
        challenger = self._scorer(deployment.challenger) if deployment is not None else None
        windows = {"champion": ArmWindow(), "challenger": ArmWindow()} if deployment else {}
        extras = tuple(
            dict.fromkeys((*self.config.extra_fields, *declared_fields(self.ws, self.config.model)))
        )
        features = {
            arm: self._features(scorer)
            for arm, scorer in (("champion", champion), ("challenger", challenger))
            if scorer is not None and scorer.loaded.signature is not None
            and scorer.loaded.signature.features
        }  # fmt: skip
        return Routing(champion, challenger, deployment, state, windows, extras, features)

    def _features(self, scorer: Scorer) -> FeatureAssembler:
        """What looks up the features of a model trained on a training set; raises
        StaleFeatures when the online table holds other versions than it was trained on."""
        from keel.serve.features import FeatureAssembler

        assert scorer.loaded.signature is not None
        return FeatureAssembler(
            self.ws,
            scorer.ref,
            scorer.loaded.signature,
            allow_stale=self.config.allow_stale_features,
        )

    def start(self) -> None:
        """Load what the alias and the deployment name now, then watch them."""
        from keel.deploy.records import routing_state

        if self.ready:
            return
        from keel.deploy.fields import declare_fields

        declare_fields(self.ws, self.config.model, self.config.extra_fields)
        self._warm()
        self.routing = self._build(routing_state(self.ws, self.config.model, self.config.alias))
        self._limit_threads()
        self.writer.start()
        self.ready = True
        self._thread = threading.Thread(target=self._watch, name="keel-serve-watch", daemon=True)
        self._thread.start()

    def _warm(self) -> None:
        """Before serving: import what loading any version of the model may need (the flavor's
        ``warm``), so a version swapped in under load loads without importing."""
        from keel.registry.flavors import get_flavor

        rows = self.ws.db.fetch_all(
            "SELECT DISTINCT v.flavor FROM model_versions v JOIN models m ON m.id = v.model_id "
            "WHERE m.name = ?",
            (self.config.model,),
        )
        for (name,) in rows:
            warm = getattr(get_flavor(str(name)), "warm", None)
            if warm is not None:
                try:
                    warm()
                except ImportError:
                    pass  # the framework is absent: loading its versions says so, once needed

    def _limit_threads(self) -> None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(self.config.threads)

    # -- watching --------------------------------------------------------------

    def _watch(self) -> None:
        from keel.deploy.records import routing_state

        while not self._stop.wait(self.config.poll_seconds):
            try:
                current = self.routing
                assert current is not None
                state = routing_state(self.ws, self.config.model, self.config.alias)
                if state != current.state:
                    self.refresh(state)
                elif current.deployment is not None:
                    self.guard(current)
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - keep serving what is loaded; say why
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "keel serve: could not follow %s: %s", self.config.model, self.last_error
                )
            try:
                self.export_drift()
            except Exception as exc:  # noqa: BLE001 - gauges are a view; never stop serving for them
                log.warning("keel serve: could not read the newest drift report: %s", exc)
            self.metrics.log_buffered.labels(self.config.model).set(self.writer.buffered)
            self.metrics.log_dropped.labels(self.config.model).set(self.writer.dropped)

    def refresh(self, state: tuple[str | None, str | None] | None = None) -> None:
        """Load the models the store now names, then switch to them in one assignment."""
        from keel.deploy.records import routing_state

        if state is None:
            state = routing_state(self.ws, self.config.model, self.config.alias)
        new = self._build(state)
        old = self.routing
        self.routing = new
        self.metrics.swaps.labels(self.config.model).inc()
        log.info(
            "keel serve: now %s%s (was %s)",
            new.champion.ref,
            f" + {new.deployment.mode} {new.challenger.ref}"
            if new.deployment and new.challenger
            else "",
            old.champion.ref if old else None,
        )

    def guard(self, current: Routing) -> None:
        """Judge the live deployment; on a breach end it and answer everything with the champion."""
        from keel.deploy.records import end_deployment

        dep = current.deployment
        assert dep is not None
        rails = dep.guardrails
        if rails.min_outcome_delta is not None:
            self._check_outcomes(dep)
        breaches = check(
            rails,
            current.windows["champion"],
            current.windows["challenger"],
            self._outcome_interval,
        )
        if not breaches:
            return
        why = "; ".join(b.message for b in breaches)
        self.routing = Routing(
            current.champion,
            None,
            None,
            (current.state[0], None),
            extras=current.extras,
            features={k: v for k, v in current.features.items() if k == "champion"},
        )
        self.metrics.rollbacks.labels(self.config.model).inc()
        log.warning(
            "keel serve: guardrail breached, %s back to %s: %s",
            dep.challenger_ref,
            current.champion.ref,
            why,
        )
        end_deployment(
            self.ws, self.config.model, action="rollback", message=f"guardrail: {why}", only=dep.id
        )

    def export_drift(self, force: bool = False) -> None:
        """Export the newest drift report of the served version as gauges (every 30 s)."""
        now = time.time()
        routing = self.routing
        if routing is None or (not force and now - self._drift_checked < _DRIFT_CHECK_SECONDS):
            return
        self._drift_checked = now
        from keel.monitor.records import latest_report

        version = routing.champion.version
        report = latest_report(self.ws, self.config.model, version)
        if report is None or self._drift_seen == (version, report["id"]):
            return
        self._drift_seen = (version, report["id"])
        self.metrics.set_drift(version, report)

    def _check_outcomes(self, dep: Deployment) -> None:
        now = time.time()
        if now - self._outcome_checked < _OUTCOME_CHECK_SECONDS:
            return
        self._outcome_checked = now
        from keel.deploy.status import outcome_test

        test = outcome_test(self.ws, dep)
        self._outcome_interval = test.interval if test is not None else None

    # -- stopping --------------------------------------------------------------

    def close(self) -> None:
        """Stop watching and write every buffered log row (a clean stop loses nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.writer.close()

    def scorer_for(self, version: int) -> Any:
        return self._cache.get(version)
