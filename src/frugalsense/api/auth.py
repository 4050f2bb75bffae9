"""API keys: `Authorization: Bearer fs_...` or `X-API-Key: fs_...`, checked against the hashes in the store.

The check never runs on the event loop: it is asked from the metadata pool, on a database connection of its own
(`app.state.key_store`), so a long write on the main connection (a large erasure) never holds it up and a key
revoked anywhere, by this server or the CLI, stops working at once. Failed checks are counted per client address
and refused with 429 past `FRUGALSENSE_AUTH_FAILURES_PER_MINUTE`, before the database is asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from frugalsense.api.problems import ApiError

__all__ = ["Principal", "authenticate", "require_admin"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every object they touch must belong to."""

    tenant_id: str
    key_id: str
    role: str


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the caller's principal, or 401 (429 for an address that keeps failing)."""
    key = _presented_key(request)
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


def require_admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "this needs an admin key of your tenant")
