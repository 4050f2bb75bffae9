"""Limits at the edge: request body size, per-key rate, and bounded in-flight work."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frugalsense.api.problems import ApiError, problem

__all__ = ["BodySizeLimit", "InFlight", "RateLimiter"]


class BodySizeLimit:
    """Refuses bodies over `max_bytes` with 413, from Content-Length or while streaming (chunked uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        too_large = problem(
            413,
            "input_too_large",
            f"request body is over the limit of {self.max_bytes} bytes; send a smaller file "
            "(the limit is FRUGALSENSE_MAX_UPLOAD_BYTES)",
            instance=scope.get("path", ""),
        )
        if declared is not None:
            try:
                if int(declared) > self.max_bytes:
                    await too_large(scope, receive, send)
                    return
            except ValueError:
                pass
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    raise _BodyTooLarge
            return message

        sent_start = False

        async def tracking_send(message: Message) -> None:
            nonlocal sent_start
            if message["type"] == "http.response.start":
                sent_start = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not sent_start:
                await too_large(scope, receive, send)
        except Exception:
            if refused and not sent_start:
                await too_large(scope, receive, send)
            else:
                raise


class _BodyTooLarge(Exception):
    pass


class RateLimiter:
    """A token bucket per API key: `rate` requests per second with bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                wait = (1.0 - tokens) / self.rate
                self._buckets[key] = (tokens, now)
                raise ApiError(
                    429,
                    "rate_limited",
                    f"this key is over its limit of {self.rate:g} requests per second; retry after {wait:.1f} s",
                    {"Retry-After": str(max(1, round(wait + 0.5)))},
                )
            self._buckets[key] = (tokens - 1.0, now)


class InFlight:
    """Bounds work in progress: at most `workers` compute at once, at most `queue` more wait, the rest get 503."""

    def __init__(self, workers: int, queue: int) -> None:
        self.workers, self.queue = workers, queue
        self._slots = asyncio.Semaphore(workers)
        self._waiting = 0
        self.active = 0

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking `fn(*args)` in a worker thread, off the event loop."""
        import anyio.to_thread

        if self._waiting >= self.queue and self._slots.locked():
            raise ApiError(
                503,
                "overloaded",
                f"the server is busy ({self.workers} running, {self._waiting} waiting); retry shortly",
                {"Retry-After": "1"},
            )
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        self.active += 1
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        finally:
            self.active -= 1
            self._slots.release()

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def runner(*args: Any) -> Any:
            return await self.run(fn, *args)

        return runner
