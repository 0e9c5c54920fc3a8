"""The scoring service's Prometheus metrics, in a registry of its own."""

from __future__ import annotations

from typing import Any


class ServiceMetrics:
    """Requests, latency, batch sizes, errors and drift of one scoring service."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "studies_requests", "HTTP requests by route and status", ["path", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "studies_request_latency_seconds",
            "Time from request to response, by route",
            ["path"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.inference = Histogram(
            "studies_inference_seconds",
            "Time of one forward pass of the model",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "studies_batch_size",
            "Examples per forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.errors = Counter("studies_errors", "Refused or failed requests, by kind", ["kind"], registry=self.registry)
        self.drift_score = Gauge(
            "studies_drift_score",
            "Largest KS statistic of recent inputs against the training inputs",
            registry=self.registry,
        )
        self.drift_p_value = Gauge(
            "studies_drift_p_value", "Bonferroni-corrected KS p-value of recent inputs", registry=self.registry
        )
        self.drift_window = Gauge("studies_drift_window", "Recent inputs in the drift window", registry=self.registry)

    def render(self, drift: dict[str, Any] | None) -> tuple[str, str]:
        """The metrics as Prometheus text, with the drift gauges set from ``drift``; and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        nan = float("nan")
        drift = drift or {}
        self.drift_score.set(nan if drift.get("score") is None else drift["score"])
        self.drift_p_value.set(nan if drift.get("p_value") is None else drift["p_value"])
        self.drift_window.set(drift.get("window", 0))
        return generate_latest(self.registry).decode(), CONTENT_TYPE_LATEST
