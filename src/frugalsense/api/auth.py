"""API keys: `Authorization: Bearer fs_...` or `X-API-Key: fs_...`, checked against the hashes in the store."""

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


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the caller's principal, or 401."""
    key = _presented_key(request)
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "send an API key as 'Authorization: Bearer <key>'; create one with `frugalsense keys create`",
            {"WWW-Authenticate": "Bearer"},
        )
    record = request.app.state.store.verify_api_key(key)
    if record is None:
        raise ApiError(401, "unauthorized", "this API key is unknown or revoked", {"WWW-Authenticate": "Bearer"})
    request.app.state.rate_limiter.check(record.id)
    principal = Principal(tenant_id=record.tenant_id, key_id=record.id, role=record.role)
    request.state.principal = principal
    return principal


def require_admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "this needs an admin key of your tenant")
