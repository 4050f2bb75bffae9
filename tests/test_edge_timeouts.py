"""Slow and greedy clients at the transport edge, against a real `frugalsense serve` on 127.0.0.1.

The server runs with one-second header and body timeouts, a cap of 50 connections and an open-files limit of
676 (set in the server process only), so a burst of 800 sockets shows what thousands would do under the usual 1024.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from _server import Server

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 50
#: what 50 connections need by the server's own accounting (two descriptors each, the accepts it has not yet
#: refused, its own files), but too few for the 800 sockets of the flood: a server that keeps them all runs out
OPEN_FILES = 676
FLOOD = 800
SLACK_S = 3.0

# Runs the CLI in a process whose open-files limit (soft and hard) is argv[1].
_WITH_FEW_FILES = (
    "import resource, runpy, sys; n = int(sys.argv.pop(1)); "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
    "runpy.run_module('frugalsense.cli', run_name='__main__', alter_sys=True)"
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")


@dataclass
class FewFilesServer(Server):
    """A real server whose process may hold at most `open_files` descriptors."""

    open_files: int = OPEN_FILES
    idle_descriptors: int = 0

    def command(self, *args: str) -> list[str]:
        base = super().command(*args)
        assert base[:3] == [sys.executable, "-m", "frugalsense.cli"]
        return [sys.executable, "-c", _WITH_FEW_FILES, str(self.open_files), *base[3:]]

    def open_descriptors(self) -> int:
        assert self.process is not None
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[FewFilesServer]:
    srv = FewFilesServer(
        tmp_path_factory.mktemp("edge"),
        model_dir,
        env={
            "FRUGALSENSE_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
            "FRUGALSENSE_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
            "FRUGALSENSE_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
            "FRUGALSENSE_RATE_PER_KEY": "0",
        },
    )
    srv.start()
    assert _healthy_and_served(srv, time.monotonic() + 30) == [200, 200]
    srv.idle_descriptors = srv.open_descriptors()
    yield srv
    srv.kill()


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _read_until_closed(
    sock: socket.socket, deadline: float, trickle: Iterator[bytes] | None = None
) -> bytes | None:
    """What the server sent before it closed `sock` (None: open at `deadline`), sending `trickle` meanwhile."""
    received = b""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while time.monotonic() < deadline:
        try:
            if poller.poll(300):
                data = sock.recv(65536)
                if not data:
                    return received
                received += data
            elif trickle is not None:
                sock.send(next(trickle))
        except (ConnectionResetError, BrokenPipeError):
            return received
    return None


def _room_for_sockets(count: int) -> None:
    """Raise this test process's open-files soft limit to `count` if it is lower (and the hard limit allows)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (count if hard == resource.RLIM_INFINITY else min(count, hard), hard)
        )


def _endless_headers() -> Iterator[bytes]:
    """The rest of a request line, then one header that never ends, a byte at a time."""
    yield from (bytes([b]) for b in b"TP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    while True:
        yield b"a"


def _status_and_problem(response: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def _stalled_body_request(server: Server) -> bytes:
    return (
        b"POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: Bearer {server.admin_key}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        + b'{"file": "'
    )


def test_a_client_that_trickles_its_headers_is_cut_off(server: FewFilesServer) -> None:
    sock = _connect(server)
    try:
        sock.sendall(b"GET /healthz HT")
        start = time.monotonic()
        response = _read_until_closed(sock, start + HEADER_TIMEOUT_S + SLACK_S, _endless_headers())
        waited = time.monotonic() - start
    finally:
        sock.close()
    assert response is not None, f"a connection trickling its headers was still open after {waited:.1f} s"
    assert waited < HEADER_TIMEOUT_S + SLACK_S
    if response:
        status, body = _status_and_problem(response)
        assert (status, body["code"]) == (408, "request_timeout")


def test_a_connection_that_sends_nothing_is_closed(server: FewFilesServer) -> None:
    sock = _connect(server)
    try:
        start = time.monotonic()
        response = _read_until_closed(sock, start + HEADER_TIMEOUT_S + SLACK_S)
    finally:
        sock.close()
    # Nothing was asked, so nothing is answered (an unasked 408 would be read as the reply to a later request).
    assert response == b"", f"an idle connection got {response!r} (None: still open)"


def test_a_stalled_body_gets_408_and_the_connection_is_closed(server: FewFilesServer) -> None:
    sock = _connect(server)
    try:
        sock.sendall(_stalled_body_request(server))
        start = time.monotonic()
        response = _read_until_closed(sock, start + BODY_TIMEOUT_S + SLACK_S)
        waited = time.monotonic() - start
    finally:
        sock.close()
    assert response, f"a request whose body stalled had no answer after {waited:.1f} s (None: still open)"
    status, body = _status_and_problem(response)
    assert (status, body["code"]) == (408, "request_timeout"), response
    assert b"content-type: application/problem+json" in response.lower()
    assert f"{BODY_TIMEOUT_S:g} s" in str(body["detail"])


def test_connections_past_the_limit_are_refused_at_once(tmp_path: Path, model_dir: Path) -> None:
    # Long timeouts here, so the first 50 connections surely hold their places while the rest arrive.
    patient = Server(tmp_path, model_dir, env={"FRUGALSENSE_MAX_CONNECTIONS": str(MAX_CONNECTIONS)}).start()
    extra = 20
    socks: list[socket.socket] = []
    try:
        socks = [_connect(patient) for _ in range(MAX_CONNECTIONS + extra)]
        deadline = time.monotonic() + 5
        refused = [_read_until_closed(sock, deadline) for sock in socks[-extra:]]
        poller = select.poll()
        for sock in socks[:MAX_CONNECTIONS]:
            poller.register(sock, select.POLLIN)
        closed_within_limit = poller.poll(200)
    finally:
        for sock in socks:
            sock.close()
        patient.kill()
    assert all(r and r.startswith(b"HTTP/1.1 503") for r in refused), [r and r[:12] for r in refused]
    assert all(r and b"retry-after:" in r.lower() and b'"code":"overloaded"' in r for r in refused)
    assert not closed_within_limit, "a connection within the limit was answered or closed"


def _healthy_and_served(server: Server, deadline: float) -> list[int]:
    """Status codes of /healthz and an authenticated /v1/collections, retried until both are 200 or `deadline`."""
    statuses = [0, 0]
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    while time.monotonic() < deadline and statuses != [200, 200]:
        try:
            statuses = [
                httpx.get(f"{server.url}/healthz", timeout=2).status_code,
                httpx.get(f"{server.url}/v1/collections", headers=headers, timeout=2).status_code,
            ]
        except httpx.TransportError:
            time.sleep(0.2)
    return statuses


def test_a_flood_of_slow_sockets_does_not_lock_out_legitimate_clients(server: FewFilesServer) -> None:
    _room_for_sockets(FLOOD + 100)
    socks: list[socket.socket] = []
    try:
        for _ in range(FLOOD):  # all at once, as an attacker would
            socks.append(socket.socket())
            socks[-1].setblocking(False)
            socks[-1].connect_ex(("127.0.0.1", server.port))
        time.sleep(0.2)
        for sock in socks:
            with contextlib.suppress(OSError):  # refused already, or not yet connected
                sock.send(b"GET /healthz HT")
        start = time.monotonic()
        statuses = _healthy_and_served(server, start + HEADER_TIMEOUT_S + 2 * SLACK_S)
        waited = time.monotonic() - start
    finally:
        for sock in socks:
            sock.close()
    assert statuses == [200, 200], f"after {waited:.1f} s of a {FLOOD}-socket flood: {statuses}"
    assert not [line for line in server.output if "Too many open files" in line]


def test_the_server_stays_up_and_lets_go_of_every_abusive_connection(server: FewFilesServer) -> None:
    idle = server.idle_descriptors
    socks: list[socket.socket] = []
    try:
        for i in range(2 * MAX_CONNECTIONS):
            sock = _connect(server)
            socks.append(sock)
            with contextlib.suppress(OSError):  # refused already
                sock.sendall(_stalled_body_request(server) if i % 2 else b"GET /healthz HTTP/1.1\r\nX-Slow: a")
        deadline = time.monotonic() + max(HEADER_TIMEOUT_S, BODY_TIMEOUT_S) + 2 * SLACK_S
        while time.monotonic() < deadline and server.open_descriptors() > idle + 2:
            time.sleep(0.2)
        held = server.open_descriptors() - idle
    finally:
        for sock in socks:
            sock.close()
    assert server.process is not None and server.process.poll() is None, "".join(server.output)
    assert held <= 2, f"the server still holds {held} more descriptors than when idle"
    assert _healthy_and_served(server, time.monotonic() + SLACK_S) == [200, 200]


@pytest.mark.parametrize(
    ("max_connections", "soft", "hard", "expected"),
    [
        (512, 1024, 4096, (1600, 512)),  # raised to what 512 connections need
        (512, 8192, 8192, (8192, 512)),  # already enough: left alone
        (512, 1024, 1024, (1024, 224)),  # hard limit too low: fewer connections
        (512, 1024, None, (1600, 512)),  # no hard limit
        (512, None, None, (None, 512)),  # no limit at all
        (50, 512, 512, (512, 1)),  # hopelessly low: one connection at a time
    ],
)
def test_connection_budget(
    max_connections: int, soft: int | None, hard: int | None, expected: tuple[int | None, int]
) -> None:
    from frugalsense.api.server import connection_budget

    budget = connection_budget(max_connections, soft, hard)
    assert (budget.open_files, budget.max_connections) == expected


def test_one_address_cannot_take_every_connection(tmp_path: Path, model_dir: Path) -> None:
    """A client holding many slow connections from one address is capped there; another address is served at once
    instead of waiting for the header deadline to free a connection."""
    env = {
        "FRUGALSENSE_MAX_CONNECTIONS": "200",
        "FRUGALSENSE_MAX_CONNECTIONS_PER_ADDRESS": "20",
        "FRUGALSENSE_HEADER_TIMEOUT_S": "30",
    }
    server = Server(tmp_path / "data", model_dir, env=env).start()
    socks: list[socket.socket] = []
    try:
        refused = 0
        for _ in range(60):
            sock = socket.socket()
            sock.bind(("127.0.0.2", 0))
            sock.settimeout(5)
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(b"GET /healthz HT")  # and never more
            socks.append(sock)
        time.sleep(0.5)
        for sock in socks:
            sock.settimeout(0.2)
            with contextlib.suppress(TimeoutError, OSError):
                refused += b" 503 " in sock.recv(4096).split(b"\r\n", 1)[0]
        # Answered at all means before the 30 s header deadline freed a connection; how soon: bench/edge_latency.py
        other = httpx.get(f"{server.url}/healthz", timeout=20)
    finally:
        for sock in socks:
            sock.close()
        server.kill()
    assert refused == 40
    assert other.status_code == 200
