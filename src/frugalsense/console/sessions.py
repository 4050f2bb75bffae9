"""Console sessions: signing in with an API key gives a random session id in an HttpOnly, SameSite=Strict cookie
(Secure over HTTPS) and a CSRF token the page sends back in a header with every state-changing request.

Sessions live in the server's memory, keyed by the SHA-256 of their id: a restart signs everyone out, and the
ids never reach the disk. A session ends at sign-out, after `IDLE_S` without a request or `LIFETIME_S` after
sign-in, and with its key: every request checks the key is still active, so revoking a key ends its sessions.

>>> sessions = Sessions()
>>> token, session = sessions.open("ten_1", "key_1", "admin")
>>> sessions.find(token).csrf == session.csrf, sessions.find("forged")
(True, None)
>>> sessions.close(token); sessions.find(token) is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "IDLE_S",
    "LIFETIME_S",
    "Session",
    "Sessions",
    "csrf_matches",
    "same_origin",
    "sessions_of",
]

COOKIE = "fs_session"
CSRF_HEADER = "x-csrf-token"
#: a session ends after this long without a request ...
IDLE_S = 2 * 3600.0
#: ... and this long after sign-in, whatever happens
LIFETIME_S = 12 * 3600.0
#: sessions kept at most; signing in past this ends the oldest
MAX_SESSIONS = 10_000


@dataclass
class Session:
    tenant_id: str
    key_id: str
    role: str
    csrf: str = field(repr=False)
    created: float
    seen: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """The server's console sessions. Thread-safe."""

    def __init__(self, *, idle_s: float = IDLE_S, lifetime_s: float = LIFETIME_S) -> None:
        self.idle_s = idle_s
        self.lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._by_digest: dict[str, Session] = {}

    def open(self, tenant_id: str, key_id: str, role: str) -> tuple[str, Session]:
        """A new session for a key just verified: (the cookie's value, the session)."""
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        session = Session(tenant_id, key_id, role, secrets.token_urlsafe(32), now, now)
        with self._lock:
            if len(self._by_digest) >= MAX_SESSIONS:
                oldest = min(self._by_digest, key=lambda d: self._by_digest[d].created)
                del self._by_digest[oldest]
            self._by_digest[_digest(token)] = session
        return token, session

    def find(self, token: str) -> Session | None:
        """The live session of a cookie value (its idle clock restarts), or None."""
        digest = _digest(token)
        now = time.monotonic()
        with self._lock:
            session = self._by_digest.get(digest)
            if session is None:
                return None
            if now - session.seen > self.idle_s or now - session.created > self.lifetime_s:
                del self._by_digest[digest]
                return None
            session.seen = now
            return session

    def close(self, token: str) -> None:
        with self._lock:
            self._by_digest.pop(_digest(token), None)


def csrf_matches(session: Session, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(session.csrf.encode(), presented.encode())


_MADE = threading.Lock()


def sessions_of(state: object) -> Sessions:
    """The app's sessions (``app.state.console_sessions``), made on first use."""
    found: Sessions | None = getattr(state, "console_sessions", None)
    if found is None:
        with _MADE:
            found = getattr(state, "console_sessions", None)
            if found is None:
                found = Sessions()
                setattr(state, "console_sessions", found)  # noqa: B010 - starlette's State is attribute-only
    return found


def same_origin(origin: str | None, scheme: str, host: str | None) -> bool:
    """True unless the browser named an origin other than this server's (absent Origin: not a browser's
    cross-site request, which always carries one on state-changing fetches)."""
    if origin is None:
        return True
    return host is not None and origin.lower() in (f"{scheme}://{host}".lower(),)
