"""Prometheus metrics, on a registry owned by one app (never the global registry)."""

from __future__ import annotations

from typing import Any

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge,
                               Histogram, generate_latest)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """The server's metrics; ``render()`` gives the Prometheus text format."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter("haloguard_requests_total", "HTTP requests",
                                ("endpoint", "method", "status"), registry=r)
        self.latency = Histogram("haloguard_request_latency_seconds", "request latency",
                                 ("endpoint",), buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("haloguard_requests_in_flight", "requests being served",
                               registry=r)
        self.batch_size = Histogram("haloguard_batch_size", "items scored per backend batch",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_latency = Histogram("haloguard_batch_latency_seconds",
                                       "time to score one batch", buckets=LATENCY_BUCKETS,
                                       registry=r)
        self.verdicts = Counter("haloguard_verdicts_total", "verdicts by label and category",
                                ("safety_label", "category"), registry=r)
        self.overlays = Counter("haloguard_attack_overlays_total", "attack overlays detected",
                                ("overlay",), registry=r)
        self.errors = Counter("haloguard_errors_total", "error responses by type and code",
                              ("type", "code"), registry=r)
        self.escalations = Counter("haloguard_escalations_total",
                                   "verdicts decided by a later cascade stage", ("stage",),
                                   registry=r)
        self.jobs = Counter("haloguard_jobs_total", "jobs by final status", ("status",),
                            registry=r)
        self.queue = Gauge("haloguard_queue_items", "items waiting for a batch", registry=r)

    def observe_batch(self, n_items: int, seconds: float) -> None:
        self.batch_size.observe(n_items)
        self.batch_latency.observe(seconds)

    def observe_verdict(self, v: Any) -> None:
        self.verdicts.labels(v.safety_label, v.category).inc()
        if v.attack_overlay != "none":
            self.overlays.labels(v.attack_overlay).inc()
        stage = getattr(v, "stage", None)
        if stage is not None and stage not in ("first", "stage1", "0"):
            self.escalations.labels(str(stage)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
