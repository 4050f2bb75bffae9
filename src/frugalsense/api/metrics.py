"""Prometheus metrics: requests, latency, CPU-seconds billed by stage, work in flight."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frugalsense.ledger import CostReceipt

__all__ = ["Metrics", "MetricsMiddleware"]

#: label values a client can choose are limited to these, so made-up methods cannot grow the registry
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """One registry per app, so tests can run several apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "frugalsense_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "frugalsense_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.cpu_seconds = Counter(
            "frugalsense_cpu_seconds_total", "CPU-seconds billed on receipts", ["stage"], registry=self.registry
        )
        self.cost_usd = Counter("frugalsense_cost_usd_total", "USD billed on receipts", registry=self.registry)
        self.in_flight = Gauge("frugalsense_in_flight", "requests being processed", registry=self.registry)

    def bill(self, receipt: CostReceipt) -> None:
        for stage in receipt.stages:
            self.cpu_seconds.labels(stage.stage).inc(stage.cpu_s)
        self.cost_usd.inc(receipt.cost_usd)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        self.metrics.in_flight.inc()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_flight.dec()
            route = _route_template(scope)
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method if method in _METHODS else "other", route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)


def _route_template(scope: dict[str, Any] | Any) -> str:
    """The matched route's path with ids put back as `{name}`: ids and made-up paths never grow the labels."""
    if scope.get("route") is None:
        return "unmatched"
    path = str(scope.get("path", ""))
    for name, value in (scope.get("path_params") or {}).items():
        path = path.replace(f"/{value}", f"/{{{name}}}", 1)
    return path
