"""API keys: `Authorization: Bearer fs_...` or `X-API-Key: fs_...`, checked against the hashes in the store.

The check never runs on the event loop: the store is asked from the metadata pool, and a key it accepted is
remembered for `KEY_CACHE_SECONDS` so that a busy store (a large erasure) does not hold up every request.
Revoking a key through this server forgets it at once; a key revoked by another process (the CLI) stops working
within `KEY_CACHE_SECONDS`. Failed checks are counted per client address and refused with 429 past
`FRUGALSENSE_AUTH_FAILURES_PER_MINUTE`, before the store is asked.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from fastapi import Request

from frugalsense.api.problems import ApiError
from frugalsense.store.base import ApiKey

__all__ = ["KEY_CACHE_SECONDS", "KeyCache", "Principal", "authenticate", "require_admin"]

#: how long an accepted key is trusted without asking the store again
KEY_CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every object they touch must belong to."""

    tenant_id: str
    key_id: str
    role: str


class KeyCache:
    """Keys the store accepted in the last few seconds, by a hash of the secret (never the secret itself)."""

    def __init__(self, ttl_s: float = KEY_CACHE_SECONDS, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[str, tuple[ApiKey, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def get(self, key: str) -> ApiKey | None:
        digest = self._digest(key)
        with self._lock:
            found = self._entries.get(digest)
            if found is None:
                return None
            if found[1] < time.monotonic():
                del self._entries[digest]
                return None
            return found[0]

    def put(self, key: str, record: ApiKey) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[self._digest(key)] = (record, time.monotonic() + self.ttl_s)

    def forget(self, *, key_id: str | None = None, tenant_id: str | None = None) -> None:
        """Drop a revoked key, or every key of an erased tenant."""
        with self._lock:
            for digest, (record, _) in list(self._entries.items()):
                if record.id == key_id or record.tenant_id == tenant_id:
                    del self._entries[digest]


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
    cache: KeyCache = state.key_cache
    record = cache.get(key)
    if record is None:
        address = request.client.host if request.client else "unknown"
        state.auth_failures.check(address)
        record = await state.pools.metadata(lambda: state.store.verify_api_key(key))
        if record is None:
            state.auth_failures.failed(address)
            raise _unauthorized("this API key is unknown or revoked")
        cache.put(key, record)
    state.rate_limiter.check(record.id)
    principal = Principal(tenant_id=record.tenant_id, key_id=record.id, role=record.role)
    request.state.principal = principal
    return principal


def require_admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "this needs an admin key of your tenant")
