"""API keys: `Authorization: Bearer fs_...` or `X-API-Key: fs_...`, checked against the hashes in the store.

The check never runs on the event loop: it is asked from the metadata pool, on a database connection of its own
(`app.state.key_store`), so a long write on the main connection (a large erasure) never holds it up and a key
revoked anywhere, by this server or the CLI, stops working at once. Failed checks are counted per client address
and refused with 429 past `FRUGALSENSE_AUTH_FAILURES_PER_MINUTE`, before the database is asked.

The web console signs in with a key once and then sends a session cookie instead (`frugalsense.console.sessions`):
a state-changing request on a session also needs the session's CSRF token in `X-CSRF-Token` and, when the
browser names an origin, this server's own; the session's key is checked to be still active on every request.
Sessions are in the database, so they are looked up in the metadata pool too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request

from frugalsense.api.problems import ApiError
from frugalsense.errors import NotFoundError

__all__ = ["Principal", "authenticate", "require_admin"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every object they touch must belong to."""

    tenant_id: str
    key_id: str
    role: str


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key a request's headers carry (``Authorization: Bearer`` first, then ``X-API-Key``), if any."""
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return headers.get("x-api-key") or None


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the caller's principal, or 401 (429 for an address that keeps failing)."""
    key = presented_key(request.headers)
    if key is None and request.cookies.get("fs_session"):
        return await _from_session(request, request.cookies["fs_session"])
    if key is None:
        raise _unauthorized(
            "send an API key as 'Authorization: Bearer <key>'; create one with `frugalsense keys create`"
        )
    state = request.app.state
    address = request.client.host if request.client else "unknown"
    state.auth_failures.check(address)
    record = await state.pools.metadata(lambda: state.key_store.verify_api_key(key))
    if record is None:
        state.auth_failures.failed(address)
        raise _unauthorized("this API key is unknown or revoked")
    state.rate_limiter.check(record.id)
    principal = Principal(tenant_id=record.tenant_id, key_id=record.id, role=record.role)
    request.state.principal = principal
    return principal


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _from_session(request: Request, token: str) -> Principal:
    """The principal of a console session: CSRF token and origin checked for writes, its key still active."""
    from frugalsense.console.sessions import CSRF_HEADER, csrf_matches, same_origin, sessions_of

    state = request.app.state
    session = await state.pools.metadata(lambda: sessions_of(state).find(token))
    if session is None:
        raise _unauthorized("your console session has ended; sign in again with your API key")
    if request.method not in _SAFE_METHODS:
        if not same_origin(request.headers.get("origin"), request.url.scheme, request.headers.get("host")):
            raise ApiError(403, "forbidden", "the console accepts changes only from its own pages")
        if not csrf_matches(session, request.headers.get(CSRF_HEADER)):
            raise ApiError(
                403, "forbidden", "this change needs the console's X-CSRF-Token header; reload the page"
            )

    def key_active() -> bool:
        try:
            keys = state.key_store.list_api_keys(session.tenant_id)
        except NotFoundError:  # the tenant was erased
            keys = []
        if any(k.id == session.key_id and k.active for k in keys):
            return True
        sessions_of(state).end(token)
        return False

    if not await state.pools.metadata(key_active):
        raise _unauthorized("the key this session signed in with was revoked; sign in with another key")
    state.rate_limiter.check(session.key_id)
    principal = Principal(tenant_id=session.tenant_id, key_id=session.key_id, role=session.role)
    request.state.principal = principal
    request.state.console_session = session
    return principal


def require_admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "this needs an admin key of your tenant")
