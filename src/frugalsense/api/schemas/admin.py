"""Bodies of the admin routes: API keys and the erasure of a tenant."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from frugalsense.api.schemas._base import Body

__all__ = ["ApiKey", "ApiKeyList", "CreatedApiKey", "Tenant", "TenantErasure"]


class ApiKey(Body):
    """A key's record; the secret itself is never stored."""

    id: str
    tenant_id: str
    name: str
    prefix: str
    role: Literal["admin", "user"]
    created_at: str
    revoked_at: str | None


class CreatedApiKey(ApiKey):
    """A key just made: ``key`` is the secret, shown this once."""

    key: str


class ApiKeyList(Body):
    keys: list[ApiKey]


class Tenant(Body):
    id: str
    name: str
    created_at: str


class TenantErasure(Body):
    """The erased tenant and counts of what went with it."""

    erased: Tenant
    items: int
    vectors: int
    labels: int
    face_links: int
    faces: int
    persons: int
    collections: int
    corrections: int
    keys: int
    vector_files: int = Field(description="vector snapshot files deleted")
