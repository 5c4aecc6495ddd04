"""Prometheus metrics: requests, errors, latency and the prediction distribution, per version and arm.

With several workers the metrics of all of them are merged through
prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by
``keel serve --workers N`` to a private folder).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["ServerMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_PREDICTION_BUCKETS = (
    0.0,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
    2.0,
    5.0,
    10.0,
    100.0,
    1000.0,
)
SAMPLED_ROWS = 16  # prediction-distribution observations per request at most


class ServerMetrics:
    """The server's metrics, with the label children of the hot path cached."""

    def __init__(self, model: str) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )

        disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created repeat the start
        self.model = model
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        registry = None if self.multiprocess else CollectorRegistry()
        kw: dict[str, Any] = {"registry": registry} if registry is not None else {}
        self.registry = registry
        self.requests = Counter(
            "keel_requests",
            "Prediction requests answered, by model version, arm and status code",
            ["model", "version", "arm", "code"],
            **kw,
        )
        self.latency = Histogram(
            "keel_request_latency_seconds",
            "Time to answer a prediction request",
            ["model", "version", "arm"],
            buckets=_LATENCY_BUCKETS,
            **kw,
        )
        self.predictions = Histogram(
            "keel_prediction",
            f"Predicted values or positive-class scores (up to {SAMPLED_ROWS} rows a request)",
            ["model", "version", "arm"],
            buckets=_PREDICTION_BUCKETS,
            **kw,
        )
        self.rows = Counter(
            "keel_predicted_rows", "Rows predicted", ["model", "version", "arm"], **kw
        )
        self.invalid = Counter(
            "keel_invalid_requests",
            "Requests refused before the model saw them",
            ["model", "route"],
            **kw,
        )
        self.swaps = Counter("keel_model_swaps", "Times the served models changed", ["model"], **kw)
        self.rollbacks = Counter(
            "keel_guardrail_rollbacks", "Deployments ended by a guardrail", ["model"], **kw
        )
        self.outcomes = Counter(
            "keel_outcomes", "Outcomes accepted through /feedback", ["model"], **kw
        )
        self.outcomes_refused = Counter(
            "keel_outcomes_refused",
            "Outcomes refused by /feedback (not what the model answers, or malformed)",
            ["model"],
            **kw,
        )
        gauge_kw = dict(kw, multiprocess_mode="livesum") if self.multiprocess else kw
        self.log_buffered = Gauge(
            "keel_log_buffered_rows", "Log rows waiting for the next flush", ["model"], **gauge_kw
        )
        self.log_dropped = Gauge(
            "keel_log_dropped_rows", "Log rows dropped after failed writes", ["model"], **gauge_kw
        )
        self.drift = Gauge(
            "keel_drift_detected",
            "1 when the newest drift report of the served version found drift",
            ["model", "version"],
            **gauge_kw,
        )
        self.schema_broken = Gauge(
            "keel_schema_broken",
            "1 when the newest drift report found an input the model needs missing or retyped",
            ["model", "version"],
            **gauge_kw,
        )
        self.drifted_features = Gauge(
            "keel_drifted_features",
            "Features the newest drift report found drifted",
            ["model", "version"],
            **gauge_kw,
        )
        self.feature_drift = Gauge(
            "keel_feature_drift",
            "Each feature's drift statistic (effect size) in the newest drift report",
            ["model", "version", "feature", "method"],
            **gauge_kw,
        )
        self.drift_report_time = Gauge(
            "keel_drift_report_timestamp_seconds",
            "When the newest drift report was made",
            ["model", "version"],
            **gauge_kw,
        )
        self._children: dict[tuple[Any, ...], tuple[Any, Any, Any, Any]] = {}

    def arm(self, version: int, arm: str) -> tuple[Any, Any, Any, Any]:
        """(ok counter, latency, prediction histogram, rows counter) for one version and arm."""
        key = (version, arm)
        found = self._children.get(key)
        if found is None:
            labels = (self.model, str(version), arm)
            found = self._children[key] = (
                self.requests.labels(*labels, "200"),
                self.latency.labels(*labels),
                self.predictions.labels(*labels),
                self.rows.labels(*labels),
            )
        return found

    def observe(self, version: int, arm: str, seconds: float, values: list[Any]) -> None:
        ok, latency, dist, rows = self.arm(version, arm)
        ok.inc()
        latency.observe(seconds)
        rows.inc(len(values))
        for v in values[:SAMPLED_ROWS]:
            if v is not None:
                dist.observe(v)

    def error(self, version: int, arm: str, code: int, seconds: float) -> None:
        labels = (self.model, str(version), arm)
        self.requests.labels(*labels, str(code)).inc()
        self.latency.labels(*labels).observe(seconds)

    def set_drift(self, version: int, report: dict[str, Any]) -> None:
        """Export the newest drift report of the served version (``keel monitor`` makes them)."""
        import datetime as dt

        labels = (self.model, str(version))
        self.drift.labels(*labels).set(1.0 if report.get("drifted") else 0.0)
        self.drifted_features.labels(*labels).set(len(report.get("drifted_features") or []))
        self.schema_broken.labels(*labels).set(1.0 if report.get("schema_broken") else 0.0)
        created = report.get("created_at")
        if isinstance(created, str):
            self.drift_report_time.labels(*labels).set(
                dt.datetime.fromisoformat(created).timestamp()
            )
        for name, feature in (report.get("features") or {}).items():
            statistic = feature.get("statistic")
            if isinstance(statistic, int | float):
                self.feature_drift.labels(*labels, name, str(feature.get("method"))).set(statistic)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.registry is not None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST
