"""Limits at the edge: body size, per-key rate, failed sign-ins per address, memory, and fair pools of work.

Work runs in two pools so that a cheap read never waits behind a model: inference (a few threads, shared fairly
between tenants, each request inside its CPU budget and stopped when its client goes away) and metadata (database
reads and writes, more threads, no queue behind inference).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frugalsense.api.auth import presented_key
from frugalsense.api.problems import ApiError, problem
from frugalsense.budget import MemoryBudget, RequestLimits, request_limits
from frugalsense.errors import InputTooLargeError
from frugalsense.priority import LowerablePool, lower_priority
from frugalsense.settings import Settings

__all__ = [
    "KNOWN_METHODS",
    "SMALL_BODY_BYTES",
    "AuthFailures",
    "BodySizeLimit",
    "FairSlots",
    "RateLimiter",
    "TurnAway",
    "WorkPools",
]

_T = TypeVar("_T")

#: bodies of routes that take no file (JSON objects: names, metadata, corrections) stay under this size
SMALL_BODY_BYTES = 1024 * 1024


class BodySizeLimit:
    """Refuses bodies over the limit with 413, from Content-Length or while streaming (chunked uploads).

    Paths that take files (`upload_paths`) may send up to `max_bytes`; every other path up to
    `SMALL_BODY_BYTES`, so a JSON body of names and metadata can never be a 50 MB allocation.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, upload_paths: Iterable[re.Pattern[str]]) -> None:
        self.app, self.max_bytes, self.upload_paths = app, max_bytes, list(upload_paths)

    def _limit(self, scope: Scope) -> int:
        path = scope.get("path", "")
        if any(pattern.match(path) for pattern in self.upload_paths):
            return self.max_bytes
        return min(self.max_bytes, SMALL_BODY_BYTES)

    async def _memory_for(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """An upload the memory budget cannot take now is refused here (503), before the key check, routing and
        its body: a burst of large uploads then costs the event loop a header each. The route's own reservation
        (`work.admitted`) stays the check that counts; this one only answers sooner what it would answer."""
        if scope.get("method") not in ("POST", "PUT"):
            return True
        budget: MemoryBudget | None = getattr(scope["app"].state, "memory", None)
        if budget is None or budget.would_fit(body_reservation(Headers(scope=scope), self.max_bytes)):
            return True
        await memory_refusal(budget).response(scope.get("path", "")[:200])(scope, receive, send)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        too_large = problem(
            413,
            "input_too_large",
            f"the request body is over the limit of {limit:,} bytes for this route; send a smaller file"
            + (" (the limit is FRUGALSENSE_MAX_UPLOAD_BYTES)" if limit == self.max_bytes else ""),
            instance=scope.get("path", ""),
        )
        if declared is not None:
            try:
                if int(declared) > limit:
                    await too_large(scope, receive, send)
                    return
            except ValueError:
                pass
        if limit == self.max_bytes and not await self._memory_for(scope, receive, send):
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(f"the request body is over the limit of {limit:,} bytes; send less")
            return message

        sent_start = False

        async def tracking_send(message: Message) -> None:
            nonlocal sent_start
            if message["type"] == "http.response.start":
                sent_start = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not sent_start:
                await too_large(scope, receive, send)


#: the methods the API answers; any other is refused at the edge
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class TurnAway:
    """Refuses, before routing, what can only be refused: a method no route has (405), and a request with an API
    key from an address locked out by `AuthFailures` (429, as `authenticate` would answer after the whole
    routing and dependency machinery). Either answer is held back `Settings.refusal_delay_s` (a tarpit): a flood
    of guesses or junk from one address then gets a few answers a second per connection (and an address holds at
    most `max_connections_per_address`), instead of as many as the event loop can write, every other tenant's
    request waiting its turn behind them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        state = scope["app"].state
        if scope.get("method") not in KNOWN_METHODS:
            allowed = ", ".join(sorted(KNOWN_METHODS))
            refusal = problem(405, "method_not_allowed", f"use one of {allowed}", instance=path[:200])
            refusal.headers["Allow"] = allowed
            await _held_back(state)
            await refusal(scope, receive, send)
            return
        guard: AuthFailures | None = getattr(state, "auth_failures", None)
        if guard is not None and path.startswith("/v1/") and presented_key(Headers(scope=scope)) is not None:
            client = scope.get("client")
            try:
                guard.check(client[0] if client else "unknown")
            except ApiError as exc:
                await _held_back(state)
                await exc.response(path[:200])(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _held_back(state: Any) -> None:
    settings: Settings | None = getattr(state, "settings", None)
    if settings is not None and settings.refusal_delay_s > 0:
        await asyncio.sleep(settings.refusal_delay_s)


class BodyTooLarge(InputTooLargeError):
    """Raised inside `receive` when a streamed body passes its limit (parsers re-raise our errors as they are)."""


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


class AuthFailures:
    """Failed key checks per client address: past `per_minute` (with as large a burst), the address gets 429
    before its key is even looked up. Bounded: at most `max_addresses` addresses are remembered.

    >>> guard = AuthFailures(per_minute=2)
    >>> guard.failed("10.0.0.9"); guard.failed("10.0.0.9")
    >>> guard.check("10.0.0.9")
    Traceback (most recent call last):
    ...
    frugalsense.api.problems.ApiError: too many failed API-key checks from this address; retry after 30 s
    >>> guard.check("10.0.0.8")
    """

    def __init__(self, per_minute: float, max_addresses: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1.0, per_minute)
        self.max_addresses = max_addresses
        self._spent: dict[str, tuple[float, float]] = {}  # address -> (failures not yet forgiven, when)

    def _level(self, address: str, now: float) -> float:
        spent, when = self._spent.get(address, (0.0, now))
        return max(0.0, spent - (now - when) * self.rate)

    def check(self, address: str) -> None:
        if self.rate <= 0:
            return
        level = self._level(address, time.monotonic())
        if level > self.burst - 1.0:
            wait = (level - self.burst + 1.0) / self.rate
            raise ApiError(
                429,
                "rate_limited",
                f"too many failed API-key checks from this address; retry after {wait:.0f} s",
                {"Retry-After": str(max(1, round(wait)))},
            )

    def failed(self, address: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        if address not in self._spent and len(self._spent) >= self.max_addresses:
            self._forget(now)
        self._spent[address] = (self._level(address, now) + 1.0, now)

    def _forget(self, now: float) -> None:
        """Drop forgiven addresses; if every one still counts, drop the oldest half."""
        for address in [a for a in self._spent if self._level(a, now) <= 0.0]:
            del self._spent[address]
        if len(self._spent) >= self.max_addresses:
            for address, _ in sorted(self._spent.items(), key=lambda kv: kv[1][1])[: len(self._spent) // 2]:
                del self._spent[address]


def overloaded(detail: str, retry_after: int = 1) -> ApiError:
    return ApiError(503, "overloaded", detail, {"Retry-After": str(retry_after)})


#: bytes held per byte of body while it is parsed: a JSON body is kept as bytes, as a parsed string and as the
#: decoded file; a multipart file is spooled, then read
_HELD_PER_BODY_BYTE = {"application/json": 3, "multipart/form-data": 2}


def body_reservation(headers: Headers, max_upload_bytes: int) -> int:
    """Bytes to reserve for a request's body: from Content-Length, or the upload limit when it streams."""
    declared = headers.get("content-length")
    try:
        size = min(int(declared), max_upload_bytes) if declared is not None else max_upload_bytes
    except ValueError:
        size = max_upload_bytes
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    return max(0, size) * _HELD_PER_BODY_BYTE.get(media, 1)


def memory_refusal(budget: MemoryBudget) -> ApiError:
    """503 for a body the memory budget cannot take now."""
    return overloaded(
        f"the server holds {budget.held / 2**20:.0f} MiB of uploads, near its budget of "
        f"{budget.limit / 2**20:.0f} MiB (FRUGALSENSE_MEMORY_BUDGET_BYTES); retry shortly",
        retry_after=2,
    )


class FairSlots:
    """At most `workers` requests compute at once; while other tenants are about, at most `per_tenant` of them
    for one tenant.

    A tenant alone on the server (no other tenant's request in the last `share_window_s`) may use every worker,
    so a one-shop install loses nothing; once another tenant shows up, each keeps to its share. A freed slot goes
    to the longest-waiting request whose tenant is under its share, so one tenant's backlog never stands in front
    of another tenant's request. At most `queue` requests wait (503 past it), and while others are about at most
    half of those for one tenant (429 past it). Lives on the event loop; not thread-safe.
    """

    def __init__(self, workers: int, per_tenant: int, queue: int, share_window_s: float = 600.0) -> None:
        self.workers, self.per_tenant, self.queue = workers, min(per_tenant, workers), queue
        self.tenant_queue = max(1, queue // 2)
        self.share_window_s = share_window_s
        self.running = 0
        self._active: Counter[str] = Counter()
        self._waiting: Counter[str] = Counter()
        self._waiters: deque[tuple[str, asyncio.Future[None]]] = deque()
        self._last_seen: dict[str, float] = {}

    def _shared(self, tenant: str) -> bool:
        """Whether another tenant has asked for work lately (then `tenant` keeps to its share)."""
        horizon = time.monotonic() - self.share_window_s
        return any(t != tenant and seen >= horizon for t, seen in self._last_seen.items())

    def _cap(self, tenant: str) -> int:
        return self.per_tenant if self._shared(tenant) else self.workers

    def _free_for(self, tenant: str) -> bool:
        return self.running < self.workers and self._active[tenant] < self._cap(tenant)

    def _take(self, tenant: str) -> None:
        self.running += 1
        self._active[tenant] += 1

    def _seen(self, tenant: str) -> None:
        now = time.monotonic()
        self._last_seen[tenant] = now
        if len(self._last_seen) > 10_000:  # forget tenants gone quiet
            horizon = now - self.share_window_s
            self._last_seen = {t: seen for t, seen in self._last_seen.items() if seen >= horizon}

    @asynccontextmanager
    async def slot(self, tenant: str) -> AsyncIterator[None]:
        self._seen(tenant)
        ahead = any(self._active[t] < self._cap(t) for t, _ in self._waiters)
        if self._free_for(tenant) and not ahead:
            self._take(tenant)
        else:
            await self._wait(tenant)
        try:
            yield
        finally:
            self.running -= 1
            self._active[tenant] -= 1
            if not self._active[tenant]:
                del self._active[tenant]
            self._grant()

    async def _wait(self, tenant: str) -> None:
        if len(self._waiters) >= self.queue:
            raise overloaded(f"the server is busy ({self.running} running, {len(self._waiters)} waiting)")
        if self._waiting[tenant] >= self.tenant_queue and self._shared(tenant):
            raise ApiError(
                429,
                "tenant_busy",
                f"your tenant already has {self._waiting[tenant]} requests waiting for a worker; "
                "wait for some to finish",
                {"Retry-After": "1"},
            )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (tenant, future)
        self._waiters.append(entry)
        self._waiting[tenant] += 1
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                # The slot was granted just as the wait was cancelled: hand it on.
                self.running -= 1
                self._active[tenant] -= 1
                self._grant()
            raise
        finally:
            self._waiting[tenant] -= 1
            if not self._waiting[tenant]:
                del self._waiting[tenant]
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _grant(self) -> None:
        """Give free slots to waiters, oldest first, skipping tenants at their share."""
        for entry in list(self._waiters):
            if self.running >= self.workers:
                return
            tenant, future = entry
            if future.done() or not self._free_for(tenant):
                continue
            self._waiters.remove(entry)
            self._take(tenant)
            future.set_result(None)


class WorkPools:
    """The two pools every route's blocking work goes through."""

    def __init__(self, settings: Settings, memory: MemoryBudget) -> None:
        self.settings = settings
        self.memory = memory
        self.inference = FairSlots(settings.workers, settings.inference_per_tenant, settings.queue)
        self._inference_threads = anyio.CapacityLimiter(settings.workers)
        self._metadata_threads = anyio.CapacityLimiter(settings.metadata_threads)
        self._large_bodies = anyio.Semaphore(1)
        #: where model work and large bodies run: their threads drop in priority once the work is large
        self.lowerable = LowerablePool("frugalsense-work", nice=settings.large_work_nice)

    async def parse(self, fn: Callable[[], _T], size: int) -> _T:
        """Parse or decode a request body of `size` bytes in a thread; large ones one at a time.

        The JSON parser and the base64 decoder hold the interpreter while they run (about 0.1 s for 48 MiB), so
        several at once would stall the event loop and every other request for that long, stacked.
        """
        if size <= SMALL_BODY_BYTES:
            return await anyio.to_thread.run_sync(fn, limiter=self._metadata_threads)

        def lowered() -> _T:
            lower_priority()
            return fn()

        async with self._large_bodies:
            return await anyio.to_thread.run_sync(self.lowerable.run, lowered, limiter=self._metadata_threads)

    async def metadata(self, fn: Callable[[], _T]) -> _T:
        """Database reads and writes: their own threads, never behind inference."""
        return await anyio.to_thread.run_sync(fn, limiter=self._metadata_threads)

    def limits(self) -> RequestLimits:
        """Fresh limits for one request: the CPU budget, a cancel flag and the server's memory budget."""
        settings = self.settings
        return RequestLimits(
            settings.max_request_cpu_seconds,
            threading.Event(),
            self.memory,
            settings.memory_wait_seconds,
            large_cpu_s=settings.large_work_cpu_seconds,
            large_pixels=settings.large_work_pixels,
        )

    async def infer(self, tenant: str, fn: Callable[[], _T], limits: RequestLimits) -> _T:
        """Model work of `tenant`: a fair slot, then a worker thread, inside the request's `limits`; the thread
        gives way to small requests once the work is large (`frugalsense.priority`).

        `limits.cancelled` is set by the caller when its client goes away; the work stops at its next stage.
        """

        def bounded() -> _T:
            with request_limits(limits):
                return fn()

        async with self.inference.slot(tenant):
            if limits.cancelled is not None and limits.cancelled.is_set():
                from frugalsense.errors import CancelledError

                raise CancelledError("the client went away before its work started")
            # A thread of the inference limiter waits while a lowerable thread works: the limiter keeps the count
            # and anyio's semantics (the await ends when the work does), the other thread may give way.
            return await anyio.to_thread.run_sync(self.lowerable.run, bounded, limiter=self._inference_threads)

    @property
    def active(self) -> int:
        return self.inference.running


def watch_disconnect(receive: Receive, cancelled: threading.Event) -> asyncio.Task[Any]:
    """A task that sets `cancelled` when the client disconnects; start it once the body has been read."""

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                cancelled.set()
                return

    return asyncio.get_running_loop().create_task(watch())
