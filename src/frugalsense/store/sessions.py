"""Console sessions in the database (table ``console_sessions``, migration ``m008_console_sessions``), so they
survive a restart and every server on one PostgreSQL database shares them.

A row holds the SHA-256 of the session id (the cookie's value never reaches the database), the tenant, the key
it signed in with, its role, and when it was created and last seen (seconds since the epoch). The CSRF token is
not stored at all: it is an HMAC of the session id, so the server derives it again from the cookie and a copy of
the database yields neither. A session ends at sign-out (its row deleted), after `IDLE_S` without a request or
`LIFETIME_S` after sign-in (checked on every read; expired rows are purged at each sign-in), when its key is
revoked and when its tenant is erased (both delete its rows, in `_tenants.py`). The last-seen time is written at
most once every `SEEN_EVERY_S`, so a page's burst of requests costs reads, not writes. A tenant keeps at most
`MAX_PER_TENANT` sessions; signing in past that ends its oldest.

    >>> import tempfile
    >>> from frugalsense.store import SQLiteStore
    >>> store = SQLiteStore(tempfile.mkdtemp() + "/frugalsense.db")
    >>> acme = store.create_tenant("acme")
    >>> key = store.create_api_key(acme.id, "desk", "admin").record
    >>> sessions = open_sessions(store.path)
    >>> token, session = sessions.open(acme.id, key.id, key.role)
    >>> sessions.find(token).csrf == session.csrf, sessions.find("forged")
    (True, None)
    >>> sessions.end(token); sessions.find(token) is None
    True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from frugalsense.store._database import Database
from frugalsense.store.postgres_db import PgDatabase, is_postgres_url

__all__ = [
    "IDLE_S",
    "LIFETIME_S",
    "MAX_PER_TENANT",
    "SEEN_EVERY_S",
    "PostgresSessionStore",
    "Session",
    "SessionStore",
    "csrf_of",
    "open_sessions",
    "session_digest",
]

#: a session ends after this long without a request ...
IDLE_S = 2 * 3600.0
#: ... and this long after sign-in, whatever happens
LIFETIME_S = 12 * 3600.0
#: the last-seen time is written at most this often per session
SEEN_EVERY_S = 60.0
#: sessions one tenant keeps at most; signing in past this ends its oldest
MAX_PER_TENANT = 1000

_CSRF_CONTEXT = b"frugalsense console csrf"


@dataclass(frozen=True)
class Session:
    """A live console session: who it acts for, its CSRF token, and its times (seconds since the epoch)."""

    tenant_id: str
    key_id: str
    role: str
    csrf: str = field(repr=False)
    created: float
    seen: float


def session_digest(token: str) -> str:
    """What the database keeps of a session id: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_of(token: str) -> str:
    """The CSRF token of a session id: an HMAC keyed by the id, so it is derived again, never stored, and
    knowing it tells nothing of the id."""
    mac = hmac.new(token.encode(), _CSRF_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


class SessionStore(Database):
    """Console sessions in an SQLite database file, on a connection of their own. Thread-safe."""

    idle_s = IDLE_S
    lifetime_s = LIFETIME_S
    seen_every_s = SEEN_EVERY_S
    max_per_tenant = MAX_PER_TENANT

    def open(
        self, tenant_id: str, key_id: str, role: str, *, now: float | None = None
    ) -> tuple[str, Session] | None:
        """A new session for a key just verified: (the cookie's value, the session); None if the key was revoked
        or its tenant erased in the meantime. Expired sessions of every tenant are purged on the way."""
        token = secrets.token_urlsafe(32)
        at = time.time() if now is None else now
        # A call of its own: under PostgreSQL's row-level security `purge` acts for every tenant, `open` for one.
        self.purge(now=at)
        with self._write() as conn:
            # Only while the key is still active: a revocation between its check and here leaves no session.
            made = conn.execute(
                "INSERT INTO console_sessions (digest, tenant_id, key_id, role, created, seen)"
                " SELECT ?, tenant_id, id, ?, ?, ? FROM api_keys"
                " WHERE id = ? AND tenant_id = ? AND revoked_at IS NULL",
                (session_digest(token), role, at, at, key_id, tenant_id),
            ).rowcount
            if not made:
                return None
            # The newest `max_per_tenant` stay.
            conn.execute(
                "DELETE FROM console_sessions WHERE tenant_id = ? AND created < (SELECT created FROM"
                " console_sessions WHERE tenant_id = ? ORDER BY created DESC LIMIT 1 OFFSET ?)",
                (tenant_id, tenant_id, self.max_per_tenant - 1),
            )
        return token, Session(tenant_id, key_id, role, csrf_of(token), at, at)

    def find(self, token: str, *, now: float | None = None) -> Session | None:
        """The live session of a cookie value, or None (an expired one is deleted). Its last-seen time moves
        when it is at least `seen_every_s` old."""
        if not token:
            return None
        digest = session_digest(token)
        rows = self._rows(
            "SELECT tenant_id, key_id, role, created, seen FROM console_sessions WHERE digest = ?", (digest,)
        )
        if not rows:
            return None
        tenant_id, key_id, role, created, seen = rows[0]
        at = time.time() if now is None else now
        if at - seen > self.idle_s or at - created > self.lifetime_s:
            self.end(token)
            return None
        if at - seen >= self.seen_every_s:
            with self._write() as conn:
                conn.execute("UPDATE console_sessions SET seen = ? WHERE digest = ?", (at, digest))
            seen = at
        return Session(tenant_id, key_id, role, csrf_of(token), float(created), float(seen))

    def end(self, token: str) -> None:
        """End a session (sign-out)."""
        with self._write() as conn:
            conn.execute("DELETE FROM console_sessions WHERE digest = ?", (session_digest(token),))

    def purge(self, *, now: float | None = None) -> int:
        """Delete every expired session, of every tenant; returns how many went."""
        at = time.time() if now is None else now
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM console_sessions WHERE seen < ? OR created < ?",
                (at - self.idle_s, at - self.lifetime_s),
            )
            return int(cursor.rowcount)

    def count(self, tenant_id: str) -> int:
        """The tenant's sessions, live or not yet purged."""
        return int(self._rows("SELECT COUNT(*) FROM console_sessions WHERE tenant_id = ?", (tenant_id,))[0][0])


class PostgresSessionStore(PgDatabase, SessionStore):  # type: ignore[misc]
    """The same sessions in a PostgreSQL database (PgDatabase's connection and transactions win; the SQL is
    shared through its statement adapter). The driver is imported only when one is opened."""


def open_sessions(where: str | Path) -> SessionStore:
    """The sessions of the database a store's ``path`` names: a ``postgresql://`` address or an SQLite file, on
    a connection of their own (``close()`` it when done)."""
    if is_postgres_url(str(where)):
        return PostgresSessionStore(str(where))
    return SessionStore(where)
