"""The web console's routes (`frugalsense.console`): the page at ``/``, its own script and style sheet, sign-in
and sign-out, and the paged reads its screens need beyond the /v1 API (every other call of the page goes to /v1
with the session cookie).

None of these is in the OpenAPI document: they serve the page, not API clients.
"""

from __future__ import annotations

import hashlib
import threading
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from frugalsense.api.auth import Principal, authenticate
from frugalsense.api.problems import ApiError
from frugalsense.api.work import metadata
from frugalsense.console.page import PAGE
from frugalsense.console.sessions import COOKIE, LIFETIME_S, Session, same_origin, sessions_of
from frugalsense.errors import NotFoundError
from frugalsense.store.pages import PagedReads, open_paged_reads

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: the page may load and call only this server, and nobody may frame it
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "media-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_STATIC = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
_MADE = threading.Lock()


@cache
def _static(name: str) -> tuple[bytes, str]:
    data = resources.files("frugalsense.console").joinpath("static", name).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:16]


@router.get("/", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    version = _static("console.js")[1] + _static("console.css")[1]
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    return HTMLResponse(PAGE.replace("{version}", version[:12]), headers=headers)


@router.get("/console/static/{name}")
async def static(name: str, request: Request) -> Response:
    if name not in _STATIC:
        raise NotFoundError(f"no console file {name!r}")
    data, etag = _static(name)
    headers = {**SECURITY_HEADERS, "ETag": f'"{etag}"', "Cache-Control": "public, max-age=3600"}
    if request.headers.get("if-none-match") == f'"{etag}"':
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=_STATIC[name], headers=headers)


class SignIn(BaseModel):
    key: str = Field(min_length=1, max_length=200)


class Who(BaseModel):
    tenant_id: str
    key_id: str
    role: str
    csrf: str


@router.post("/console/session")
async def sign_in(body: SignIn, request: Request) -> JSONResponse:
    """Trade an API key for a session cookie; the answer carries the CSRF token the page sends back."""
    if not same_origin(request.headers.get("origin"), request.url.scheme, request.headers.get("host")):
        raise ApiError(403, "forbidden", "sign in from the console's own page")
    state = request.app.state
    address = request.client.host if request.client else "unknown"
    state.auth_failures.check(address)
    record = await metadata(request, lambda: state.key_store.verify_api_key(body.key.strip()))
    if record is None:
        state.auth_failures.failed(address)
        raise ApiError(401, "unauthorized", "this API key is unknown or revoked; ask your admin for a key")
    opened = await metadata(request, lambda: sessions_of(state).open(record.tenant_id, record.id, record.role))
    if opened is None:  # revoked between the check and the session
        raise ApiError(401, "unauthorized", "this API key is unknown or revoked; ask your admin for a key")
    token, session = opened
    who = Who(tenant_id=record.tenant_id, key_id=record.id, role=record.role, csrf=session.csrf)
    response = JSONResponse(who.model_dump(), headers={"Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME_S),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/console/session")
async def whoami(request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    """The signed-in session (the page asks on load); 401 when there is none."""
    session: Session | None = getattr(request.state, "console_session", None)
    if session is None:  # signed in with a key header, not a session
        raise ApiError(401, "unauthorized", "sign in to the console")
    who = Who(tenant_id=p.tenant_id, key_id=p.key_id, role=p.role, csrf=session.csrf)
    return JSONResponse(who.model_dump(), headers={"Cache-Control": "no-store"})


@router.delete("/console/session", status_code=204)
async def sign_out(request: Request, p: Principal = Depends(authenticate)) -> Response:
    state = request.app.state
    token = request.cookies.get(COOKIE, "")
    await metadata(request, lambda: sessions_of(state).end(token))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _reads(request: Request) -> PagedReads:
    state = request.app.state
    found: PagedReads | None = getattr(state, "console_reads", None)
    if found is None:
        with _MADE:
            found = getattr(state, "console_reads", None)
            if found is None:
                found = state.console_reads = open_paged_reads(state.store.path)
    return found


async def _read(request: Request, fn: Any) -> Any:
    return await metadata(request, lambda: fn(_reads(request)))


@router.get("/console/api/persons")
async def persons(
    request: Request,
    p: Principal = Depends(authenticate),
    collection_id: str = Query(..., max_length=100),
    name: str = Query("", max_length=200),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Any:
    page = await _read(
        request, lambda r: r.persons(p.tenant_id, collection_id, name=name, limit=limit, offset=offset)
    )
    return {"persons": [x.to_dict() for x in page.rows], "total": page.total, "limit": limit, "offset": offset}


@router.get("/console/api/persons/{person_id}/faces")
async def person_faces(person_id: str, request: Request, p: Principal = Depends(authenticate)) -> Any:
    faces = await _read(request, lambda r: r.person_faces(p.tenant_id, person_id))
    return {"faces": [f.to_dict() for f in faces]}


@router.get("/console/api/persons/{person_id}/erasure")
async def person_erasure(person_id: str, request: Request, p: Principal = Depends(authenticate)) -> Any:
    """What deleting the person would erase, for the confirmation."""
    return (await _read(request, lambda r: r.person_erasure(p.tenant_id, person_id))).to_dict()


@router.get("/console/api/clusters")
async def clusters(
    request: Request,
    p: Principal = Depends(authenticate),
    min_size: int = Query(2, ge=1, le=1000),
    limit: int = Query(24, ge=1, le=100),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Any:
    page = await _read(request, lambda r: r.clusters(p.tenant_id, min_size=min_size, limit=limit, offset=offset))
    return {"clusters": [c.to_dict() for c in page.rows], "total": page.total, "limit": limit, "offset": offset}


@router.get("/console/api/crops/{face_id}")
async def crop(face_id: str, request: Request, p: Principal = Depends(authenticate)) -> Response:
    """A face's thumbnail, only to a signed-in user of its tenant."""
    data_dir: Path = request.app.state.settings.data_dir

    def work() -> bytes:
        relative = _reads(request).crop_path(p.tenant_id, face_id)
        path = (data_dir / relative).resolve()
        if not path.is_relative_to(data_dir.resolve()) or not path.is_file():
            raise NotFoundError(f"no picture of face {face_id!r}")
        return path.read_bytes()

    data = await metadata(request, work)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})
