"""API keys of the caller's tenant (admin keys only)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from frugalsense.api import schemas
from frugalsense.api.auth import Principal, authenticate, require_admin
from frugalsense.api.work import metadata

router = APIRouter(tags=["keys"])


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "user"] = "user"


@router.post(
    "/keys",
    status_code=201,
    response_model=schemas.CreatedApiKey,
    summary="Create an API key (the secret is shown once)",
)
async def create_key(body: NewKey, request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    require_admin(p)
    store = request.app.state.store
    created = await metadata(request, lambda: store.create_api_key(p.tenant_id, body.name, body.role))
    return JSONResponse(created.to_dict(), status_code=201)


@router.get("/keys", response_model=schemas.ApiKeyList, summary="List your tenant's keys (never their secrets)")
async def list_keys(request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    require_admin(p)
    store = request.app.state.store
    keys = await metadata(request, lambda: store.list_api_keys(p.tenant_id))
    return JSONResponse({"keys": [k.to_dict() for k in keys]})


@router.delete("/keys/{key_id}", response_model=schemas.ApiKey, summary="Revoke a key")
async def revoke_key(key_id: str, request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    require_admin(p)
    store = request.app.state.store
    revoked = await metadata(request, lambda: store.revoke_api_key(p.tenant_id, key_id))
    return JSONResponse(revoked.to_dict())
