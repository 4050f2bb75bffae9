"""The transport edge: uvicorn with deadlines for slow clients and a cap on open connections.

uvicorn (0.55, HTTP/1.1 through h11) gives a connection no deadline for its request headers and counts its
``limit_concurrency`` only once a request's headers are complete, so sockets that trickle their headers stay open
for ever and, past the open-files limit, lock everyone out. Here each connection has ``header_timeout_s`` to send
its headers (then 408, or a silent close if it sent nothing), a request body may pause at most ``body_timeout_s``
(then 408), connections past ``max_connections`` are answered 503 and closed at once, and the process's open-files
limit is raised so that the connections it accepts always fit.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from frugalsense.api.problems import problem
from frugalsense.settings import Settings

__all__ = [
    "BodyTimeout",
    "ConnectionBudget",
    "EdgeProtocol",
    "connection_budget",
    "edge_protocol",
    "open_files_needed",
    "raise_open_files_limit",
    "serve",
]

log = logging.getLogger("frugalsense.api")

#: descriptors one connection may hold: its socket and, while its upload is spooled to disk, a temporary file
FDS_PER_CONNECTION = 2
#: connections the kernel queues for us; asyncio accepts up to this many per turn of the event loop
ACCEPT_BACKLOG = 128
#: descriptors of accepted connections not yet refused: a refused socket is closed three loop turns after its
#: accept (transport, connection_made, connection_lost), and each turn accepts another backlog's worth
ACCEPTS_IN_FLIGHT = 4 * ACCEPT_BACKLOG
#: descriptors the service needs besides its connections: database and WAL, pipes, model files, logs
RESERVED_FDS = 64
#: the interpreter's thread switch interval in the server (see `serve`)
SWITCH_INTERVAL_S = 0.001
#: how long an idle keep-alive connection stays open after its last response
KEEP_ALIVE_S = 5


@dataclass(frozen=True)
class ConnectionBudget:
    """The open-files soft limit to set (None: unlimited) and the connections that fit under it."""

    open_files: int | None
    max_connections: int


def open_files_needed(max_connections: int) -> int:
    """Descriptors the service may hold at once while serving `max_connections` connections."""
    return max_connections * FDS_PER_CONNECTION + ACCEPTS_IN_FLIGHT + RESERVED_FDS


def connection_budget(max_connections: int, soft: int | None, hard: int | None) -> ConnectionBudget:
    """Raise the soft open-files limit as far as `max_connections` needs and `hard` allows (None: unlimited).

    >>> connection_budget(512, 1024, 4096)
    ConnectionBudget(open_files=1600, max_connections=512)
    >>> connection_budget(512, 1024, 1024).max_connections
    224
    """
    needed = open_files_needed(max_connections)
    if soft is None:
        return ConnectionBudget(None, max_connections)
    open_files = max(soft, needed if hard is None else min(hard, needed))
    fitting = (open_files - ACCEPTS_IN_FLIGHT - RESERVED_FDS) // FDS_PER_CONNECTION
    return ConnectionBudget(open_files, max(1, min(max_connections, fitting)))


def raise_open_files_limit(max_connections: int) -> int:
    """Raise this process's open-files limit for `max_connections`; return the connections that fit under it."""
    if sys.platform == "win32":
        return max_connections
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = resource.RLIM_INFINITY
    budget = connection_budget(
        max_connections, None if soft == unlimited else soft, None if hard == unlimited else hard
    )
    if budget.open_files is not None and budget.open_files != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (budget.open_files, hard))
    if budget.max_connections < max_connections:
        log.warning(
            "the open-files limit %d leaves room for %d connections, fewer than FRUGALSENSE_MAX_CONNECTIONS=%d, "
            "so at most %d are served; raise the hard limit to %d (ulimit -Hn, LimitNOFILE=) or lower the setting",
            hard,
            budget.max_connections,
            max_connections,
            budget.max_connections,
            open_files_needed(max_connections),
        )
    return budget.max_connections


def _raw_problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 problem response that closes its connection, for writing straight to a socket."""
    response = problem(status, code, detail)
    response.headers.update({**(headers or {}), "connection": "close"})
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    lines += [name + b": " + value for name, value in response.raw_headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + bytes(response.body)


class EdgeProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for every request's headers and a cap on open connections.

    The deadline starts when the connection opens and again after each response, and stops when a request's
    headers are complete. A connection opened past the cap gets 503 and is closed before it reads anything, so it
    holds a descriptor only for an instant. Configure a subclass with :func:`edge_protocol`.
    """

    header_timeout_s: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 512
    #: connections one client address may hold, so one client cannot take every connection (0: no cap)
    max_per_address: ClassVar[int] = 64
    #: addresses without that cap (reverse proxies carry many clients' connections)
    uncapped: ClassVar[frozenset[str]] = frozenset()
    #: open connections by client address, across the protocol's instances (one event loop: no lock needed)
    by_address: ClassVar[Counter[str]] = Counter()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._refused = False
        self._address: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self._refuse(transport, f"the server has {self.max_connections} connections open, its limit")
            return
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else None
        if address is not None and self.max_per_address and address not in self.uncapped:
            if self.by_address[address] >= self.max_per_address:
                self._refuse(transport, f"your address has {self.max_per_address} connections open, its limit")
                return
            self.by_address[address] += 1
            self._address = address
        super().connection_made(transport)
        self._start_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_deadline()
        if self._address is not None:
            self.by_address[self._address] -= 1
            if self.by_address[self._address] <= 0:
                del self.by_address[self._address]
            self._address = None
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if not self._awaiting_headers():
            self._stop_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._awaiting_headers() and not self.transport.is_closing():
            self._start_header_deadline()

    def _awaiting_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _start_header_deadline(self) -> None:
        self._stop_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _stop_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        # Part of a request arrived: say why it is dropped. Nothing did: close quietly, since an unasked answer on
        # an idle keep-alive connection would be read as the reply to the client's next request.
        if self.conn.trailing_data[0]:
            detail = f"the request's headers did not arrive within {self.header_timeout_s:g} s; send them at once"
            self.transport.write(_raw_problem(408, "request_timeout", detail))
        self.transport.close()

    def _refuse(self, transport: asyncio.Transport, why: str) -> None:
        self._refused = True
        self.transport = transport
        detail = f"{why}; retry in a moment"
        transport.write(_raw_problem(503, "overloaded", detail, {"retry-after": "1"}))
        transport.close()


def edge_protocol(
    header_timeout_s: float,
    max_connections: int,
    max_per_address: int = 0,
    uncapped: frozenset[str] = frozenset(),
) -> type[EdgeProtocol]:
    """An :class:`EdgeProtocol` with these limits, to pass as ``uvicorn.Config(http=...)``."""

    class ConfiguredEdgeProtocol(EdgeProtocol):
        pass

    ConfiguredEdgeProtocol.header_timeout_s = header_timeout_s
    ConfiguredEdgeProtocol.max_connections = max_connections
    ConfiguredEdgeProtocol.max_per_address = max_per_address
    ConfiguredEdgeProtocol.uncapped = uncapped
    ConfiguredEdgeProtocol.by_address = Counter()
    return ConfiguredEdgeProtocol


class BodyTimeout:
    """ASGI middleware: a request body pausing longer than `timeout_s` is answered 408 and its connection closed.

    Only waits for body parts are timed; once the body is complete, ``receive`` (which an app also awaits to notice
    a client going away) waits as long as the app likes. After a timeout the app sees the client as disconnected,
    and whatever it still sends or raises is dropped: the client already has its answer. :func:`serve` wraps the
    whole app in it (outside every other middleware, so it also times the reads they make)::

        uvicorn.Config(BodyTimeout(create_app(settings), settings.body_timeout_s), ...)
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app, self.timeout_s = app, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guard = _TimedBody(scope, receive, send, self.timeout_s)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            if not guard.timed_out:
                raise
            log.debug("%s %s failed after its body timed out", scope["method"], scope["path"], exc_info=True)


class _TimedBody:
    """One request's ``receive`` with a deadline for each body part, and its ``send``."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, timeout_s: float) -> None:
        self._scope, self._receive, self._send, self._timeout_s = scope, receive, send, timeout_s
        self.body_complete = self.response_started = self.timed_out = False

    async def receive(self) -> Message:
        if self.timed_out:
            return {"type": "http.disconnect"}
        if self.body_complete:
            return await self._receive()
        try:
            message = await asyncio.wait_for(self._receive(), self._timeout_s)
        except TimeoutError:
            await self._answer_timeout()
            return {"type": "http.disconnect"}
        self.body_complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.timed_out:
            return
        self.response_started = self.response_started or message["type"] == "http.response.start"
        await self._send(message)

    async def _answer_timeout(self) -> None:
        self.timed_out = True
        if self.response_started:
            return  # too late for a status; the app stops reading as if the client had gone
        detail = (
            f"no part of the request body arrived for {self._timeout_s:g} s; send the body without pausing "
            "(FRUGALSENSE_BODY_TIMEOUT_S sets the limit)"
        )
        response = problem(408, "request_timeout", detail, instance=self._scope["path"])
        response.headers["connection"] = "close"
        await response(self._scope, self._receive, self._send)


def serve(settings: Settings) -> None:
    """Run the HTTP API on ``settings.host:settings.port`` until interrupted, with the edge limits set there."""
    from frugalsense.api import create_app
    from frugalsense.budget import limit_heap_arenas

    limit_heap_arenas()
    # A thread that waits for the interpreter lock gets it after at most this long from one that keeps running
    # Python (5 ms by default): another tenant's request, which takes the lock back after each model run, then
    # waits less behind a large upload being decoded (bench/abuse.py, 48 MiB bodies: victim identify p95 80/83 ms
    # against 94/106 at 5 ms, two runs each, idle 35-37).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    connections = raise_open_files_limit(settings.max_connections)
    config = uvicorn.Config(
        BodyTimeout(create_app(settings), settings.body_timeout_s),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        http=edge_protocol(
            settings.header_timeout_s,
            connections,
            settings.max_connections_per_address,
            frozenset(a.strip() for a in settings.trusted_proxies.split(",") if a.strip()),
        ),
        ws="none",  # no WebSocket routes: an upgrade request is served as plain HTTP
        timeout_keep_alive=KEEP_ALIVE_S,
        # uvicorn answers 503 once this many connections (counting the asking one) or request tasks, which
        # outlive a client that left, are open; the cap on connections itself is EdgeProtocol's.
        limit_concurrency=connections + 1,
        backlog=ACCEPT_BACKLOG,
        # X-Forwarded-For is believed only from the proxies named in settings: a client must not choose the address
        # its failed key checks are counted against.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )
    uvicorn.Server(config).run()
