"""The replica's Prometheus metrics, served at `GET /metrics`.

The supervisor reads them (through the admin socket) to autoscale and to show a
service's health; anyone may scrape them. A registry of its own, not the process
global one, so nothing a driver's libraries register leaks into the replica's page
and two apps in one test process never collide.

    modelyard_requests_total{route,status}          requests answered
    modelyard_request_duration_seconds{route}       latency histogram
    modelyard_requests_in_flight                    requests uvicorn holds now
    modelyard_accept_backlog                        connections waiting to be accepted
    modelyard_batch_size                            items per run_batch call (batching only)
    modelyard_replica_start_time_seconds            when this replica started (unix time)

`route` is one of the app's paths, or `other`, so the label set stays bounded.

Request counts and latencies are kept in plain dicts and lists and turned into
metric families only when scraped: prometheus_client's own Counter and Histogram
take a lock and loop over buckets in Python on every observation, 1.5 µs per
request, several percent of the scoring path. Everything runs on the event loop's
thread, the scrape included, so no lock is needed.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "RuntimeMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class RuntimeMetrics:
    """The replica's registry; `observe` is what the hot path calls."""

    def __init__(
        self, in_flight: Callable[[], float], backlog: Callable[[], float], *, batching: bool
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = RequestStats()
        self.registry.register(self.requests)
        Gauge(
            "modelyard_requests_in_flight",
            "Requests uvicorn has parsed and not finished answering.",
            registry=self.registry,
        ).set_function(in_flight)
        Gauge(
            "modelyard_accept_backlog",
            "Connections waiting in the kernel to be accepted (shared by replicas on one port).",
            registry=self.registry,
        ).set_function(backlog)
        Gauge(
            "modelyard_replica_start_time_seconds",
            "When this replica started, in seconds since the epoch.",
            registry=self.registry,
        ).set(time.time())
        self._batch_size = (
            Histogram(
                "modelyard_batch_size",
                "Requests answered by one call of the driver's run_batch.",
                buckets=_BATCH_BUCKETS,
                registry=self.registry,
            )
            if batching
            else None
        )
        self.observe = self.requests.observe

    def observe_batch(self, size: int) -> None:
        if self._batch_size is not None:
            self._batch_size.observe(size)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


_FOLD_EVERY = 4096


class RequestStats:
    """Request counts by (route, status) and latency histograms by route, as a Collector."""

    def __init__(self, buckets: tuple[float, ...] = _LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts: dict[tuple[str, int], int] = {}
        self.latency: dict[str, list[float]] = {}
        """Per route: a count per bucket (the last one for +Inf), then the sum."""
        self._pending: list[tuple[str, int, float]] = []

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Note one answered request; folded into the counters later.

        An append is a fraction of the dictionary and bisect work, and this runs on
        every request: the folding happens when metrics are read, or every few
        thousand requests so memory stays bounded.
        """
        self._pending.append((route, status, seconds))
        if len(self._pending) >= _FOLD_EVERY:
            self.fold()

    def fold(self) -> None:
        pending, self._pending = self._pending, []
        for route, status, seconds in pending:
            self._count(route, status, seconds)

    def _count(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        histogram = self.latency.get(route)
        if histogram is None:
            histogram = self.latency[route] = [0.0] * (len(self.buckets) + 2)
        histogram[bisect_left(self.buckets, seconds)] += 1
        histogram[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        self.fold()
        requests = CounterMetricFamily(
            "modelyard_requests", "Requests answered.", labels=["route", "status"]
        )
        for (route, status), count in sorted(self.counts.items()):
            requests.add_metric([route, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "modelyard_request_duration_seconds",
            "Time from a request's arrival in the app to its response.",
            labels=["route"],
        )
        bounds = [*(repr(float(b)) for b in self.buckets), "+Inf"]
        for route, histogram in sorted(self.latency.items()):
            cumulative = 0.0
            buckets: list[tuple[str, float]] = []
            for bound, in_bucket in zip(bounds, histogram[:-1], strict=True):
                cumulative += in_bucket
                buckets.append((bound, cumulative))
            latency.add_metric([route], buckets, histogram[-1])
        yield latency
