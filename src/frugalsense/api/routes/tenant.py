"""The caller's own tenant: erase it with everything it owns (admin keys only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from frugalsense.api import schemas
from frugalsense.api.auth import Principal, authenticate, require_admin
from frugalsense.api.routes.search import search_service_of
from frugalsense.api.work import metadata

router = APIRouter(tags=["tenant"])


@router.delete(
    "/tenant",
    response_model=schemas.TenantErasure,
    summary="Erase your tenant: items, faces, persons, collections, keys and files (cannot be undone)",
    description=(
        "Erases the tenant of the calling key with everything it owns, including the key itself, and answers with "
        "counts of what was erased. Words and vectors are purged from the database files, not only unlinked."
    ),
)
async def erase_tenant(request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    require_admin(p)
    service = await search_service_of(request)
    return JSONResponse(await metadata(request, lambda: service.erase_tenant(p.tenant_id)))
