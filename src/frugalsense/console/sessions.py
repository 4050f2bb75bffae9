"""Console sessions at the HTTP edge: signing in with an API key gives a random session id in an HttpOnly,
SameSite=Strict cookie (Secure over HTTPS) and a CSRF token the page sends back in a header with every
state-changing request.

The sessions themselves live in the database (`frugalsense.store.sessions`: only the SHA-256 of their id), so a
restart keeps them and every server on one PostgreSQL database shares them. Every call on them is a database call:
run it in the metadata pool, never on the event loop.
"""

from __future__ import annotations

import hmac
import threading

from frugalsense.store.sessions import IDLE_S, LIFETIME_S, Session, SessionStore, open_sessions

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "IDLE_S",
    "LIFETIME_S",
    "Session",
    "csrf_matches",
    "same_origin",
    "sessions_of",
]

COOKIE = "fs_session"
CSRF_HEADER = "x-csrf-token"


def csrf_matches(session: Session, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(session.csrf.encode(), presented.encode())


_MADE = threading.Lock()


def sessions_of(state: object) -> SessionStore:
    """The app's sessions (``app.state.console_sessions``): a connection of their own to the store's database,
    opened on first use. Call it in the metadata pool (opening is a database call too)."""
    found: SessionStore | None = getattr(state, "console_sessions", None)
    if found is None:
        with _MADE:
            found = getattr(state, "console_sessions", None)
            if found is None:
                found = open_sessions(getattr(state, "store").path)  # noqa: B009 - starlette's State
                setattr(state, "console_sessions", found)  # noqa: B010 - starlette's State is attribute-only
    return found


def same_origin(origin: str | None, scheme: str, host: str | None) -> bool:
    """True unless the browser named an origin other than this server's (absent Origin: not a browser's
    cross-site request, which always carries one on state-changing fetches)."""
    if origin is None:
        return True
    return host is not None and origin.lower() in (f"{scheme}://{host}".lower(),)
