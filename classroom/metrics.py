"""Prometheus metrics, one registry per application (no module globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connected_clients = Gauge(
            "classroom_connected_clients", "Socket.IO clients connected to this process", registry=r
        )
        self.live_classrooms = Gauge(
            "classroom_live_classrooms",
            "Classrooms with someone in them on this process",
            registry=r,
        )
        self.joins = Counter("classroom_joins", "Accepted classroom joins", registry=r)
        self.join_refusals = Counter(
            "classroom_join_refusals", "Refused classroom joins by code", ["code"], registry=r
        )
        self.presence_changes = Counter(
            "classroom_presence_changes", "Presence snapshots published", registry=r
        )
        self.completions = Counter("classroom_completions", "Sessions completed", registry=r)
        self.gate_refusals = Counter(
            "classroom_gate_refusals", "Completions refused because participants remain", registry=r
        )
        self.forwarded_streams = Gauge(
            "classroom_forwarded_media_streams", "Media tracks forwarded to subscribers", registry=r
        )
        self.event_latency = Histogram(
            "classroom_socketio_event_seconds",
            "Socket.IO event handling time",
            ["event"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._event_latencies: dict[str, Histogram] = {}
        self.http_latency = Histogram(
            "classroom_http_request_seconds",
            "HTTP request handling time",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def event_latency_of(self, event: str) -> Histogram:
        """``event_latency`` of one Socket.IO event, its labelled child looked up once (``labels``
        takes a lock and builds the key on every call; events are the handlers' fixed names)."""
        child = self._event_latencies.get(event)
        if child is None:
            child = self._event_latencies[event] = self.event_latency.labels(event)
        return child

    def render(self) -> bytes:
        return generate_latest(self.registry)
