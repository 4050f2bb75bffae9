"""Search over HTTP: index uploads, search by words and meaning or by an example picture, read and delete items."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from frugalsense.api import schemas
from frugalsense.api.auth import Principal, authenticate
from frugalsense.api.routes.analyze import receipt_response
from frugalsense.api.uploads import read_upload, upload_body
from frugalsense.api.work import admitted, infer, metadata
from frugalsense.errors import InvalidRequestError
from frugalsense.media.phash import NEAR_RADIUS as DEFAULT_MAX_DISTANCE
from frugalsense.search.service import SearchService, check_date, outcome_error

router = APIRouter(tags=["search"])

_CREATE_LOCK = threading.Lock()

_FILTERS_DOC = {
    "person": "a person id, a person's name, or an unknown-face cluster id",
    "label": "comma-separated labels the item must all have",
    "modality": "comma-separated: image, document, audio, video",
    "since": "ISO date or time: captured at or after",
    "until": "ISO date or time: captured at or before (a date includes that day)",
    "max_nsfw": "leave out items whose moderation score is above this",
    "safe": "leave out items the moderation model flagged",
}


def search_service(request: Request) -> SearchService:
    """The app's search service, made on first use from the store, analyzer and gallery the app holds."""
    state = request.app.state
    service: SearchService | None = getattr(state, "search", None)
    if service is None:
        with _CREATE_LOCK:
            service = getattr(state, "search", None)
            if service is None:
                service = SearchService(state.store, state.analyzer, state.gallery)
                state.search = service
    return service


async def search_service_of(request: Request) -> SearchService:
    """`search_service`, made off the event loop the first time (it opens its tables)."""
    found: SearchService | None = getattr(request.app.state, "search", None)
    return found if found is not None else await metadata(request, lambda: search_service(request))


def _field(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"'{name}' must be a string")
    return value


def _number(fields: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"'{name}' must be a number, got {value!r}") from None
    if not low <= number <= high:
        raise InvalidRequestError(f"'{name}' must be between {low:g} and {high:g}")
    return number


@router.post(
    "/index",
    status_code=201,
    response_model=schemas.IndexOutcome,
    responses={200: {"model": schemas.IndexOutcome, "description": "The same file was indexed before: unchanged"}},
    summary="Index a photo, scan, PDF, recording or video: analyse it and store it for search",
    openapi_extra=upload_body(
        "file",
        extra={
            "source": {"type": "string", "description": "the item's key (a re-upload with it replaces the item)"},
            "captured_at": {"type": "string", "description": "ISO time the item was made (default: now)"},
            "collection_id": {"type": "string", "description": "collection to identify faces against"},
        },
    ),
)
async def index(request: Request, p: Principal = Depends(admitted)) -> JSONResponse:
    upload, fields = await read_upload(request)
    source, captured_at = _field(fields, "source"), _field(fields, "captured_at")
    collection_id = _field(fields, "collection_id")
    if captured_at is not None:
        captured_at = check_date(captured_at, "captured_at")
    service = await search_service_of(request)

    def work() -> Any:
        if collection_id is not None:
            service.gallery.get_collection(p.tenant_id, collection_id)
        return service.index(
            p.tenant_id,
            upload.data,
            name=upload.name,
            source_key=source,
            captured_at=captured_at,
            collection_id=collection_id,
        )

    outcome = await infer(request, p, work)
    if outcome.status == "failed":
        raise outcome_error(outcome)
    body = outcome.to_dict()
    status = 200 if outcome.status == "unchanged" else 201
    if outcome.receipt is None:
        return JSONResponse(body, status_code=status)
    return receipt_response(body, outcome.receipt, request, status=status, pictures=outcome.pictures)


@router.get(
    "/search",
    response_model=schemas.SearchResults,
    summary="Search items by meaning and words, with filters; each hit says why it matched",
)
async def search(
    request: Request,
    p: Principal = Depends(authenticate),
    q: str = Query("", max_length=1000, description="the query text (may be empty when a filter is given)"),
    top_k: int = Query(20, ge=1, le=100),
    mode: str = Query("hybrid", pattern="^(hybrid|semantic|keyword)$"),
    person: str | None = Query(None, max_length=200, description=_FILTERS_DOC["person"]),
    label: str | None = Query(None, max_length=500, description=_FILTERS_DOC["label"]),
    modality: str | None = Query(None, max_length=100, description=_FILTERS_DOC["modality"]),
    since: str | None = Query(None, max_length=40, description=_FILTERS_DOC["since"]),
    until: str | None = Query(None, max_length=40, description=_FILTERS_DOC["until"]),
    max_nsfw: float | None = Query(None, ge=0, le=1, description=_FILTERS_DOC["max_nsfw"]),
    safe: bool = Query(False, description=_FILTERS_DOC["safe"]),
) -> JSONResponse:
    service = await search_service_of(request)

    def work() -> Any:
        filters = service.filters(
            p.tenant_id,
            person=person,
            label=label,
            modality=modality,
            since=since,
            until=until,
            max_nsfw=max_nsfw,
            safe=safe,
        )
        return service.search(p.tenant_id, q, filters=filters, top_k=top_k, mode=mode).to_dict()

    return JSONResponse(await infer(request, p, work))


@router.post(
    "/search/image",
    summary="Search by an example picture: near-duplicates first, then pictures close in meaning",
    response_model=schemas.SearchResults,
    openapi_extra=upload_body(
        "file",
        extra={
            "top_k": {"type": "integer", "minimum": 1, "maximum": 100},
            **{k: {"type": "string", "description": v} for k, v in _FILTERS_DOC.items() if k != "max_nsfw"},
        },
    ),
)
async def search_image(request: Request, p: Principal = Depends(admitted)) -> JSONResponse:
    upload, fields = await read_upload(request)
    top_k = int(_number(fields, "top_k", 1, 100) or 20)
    safe = (_field(fields, "safe") or "false").lower() in ("1", "true", "yes")
    service = await search_service_of(request)

    def work() -> Any:
        filters = service.filters(
            p.tenant_id,
            person=_field(fields, "person"),
            label=_field(fields, "label"),
            modality=_field(fields, "modality"),
            since=_field(fields, "since"),
            until=_field(fields, "until"),
            safe=safe,
        )
        return service.search_image(p.tenant_id, upload.data, name=upload.name, filters=filters, top_k=top_k)

    results = await infer(request, p, work)
    assert results.receipt is not None
    return receipt_response(results.to_dict(), results.receipt, request)


@router.get(
    "/search/duplicates", response_model=schemas.DuplicateGroups, summary="Groups of near-duplicate pictures"
)
async def duplicates(
    request: Request,
    p: Principal = Depends(authenticate),
    max_distance: int = Query(DEFAULT_MAX_DISTANCE, ge=0, le=16, description="bits of 64 that may differ"),
) -> JSONResponse:
    service = await search_service_of(request)

    def work() -> Any:
        groups = service.near_duplicates(p.tenant_id, max_distance)
        return {"groups": [[i.to_dict() for i in group] for group in groups]}

    return JSONResponse(await metadata(request, work))


@router.get("/items", response_model=schemas.ItemList, summary="Indexed items, newest first")
async def list_items(
    request: Request,
    p: Principal = Depends(authenticate),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> JSONResponse:
    service = await search_service_of(request)
    items = await metadata(request, lambda: service.list_items(p.tenant_id, limit=limit, offset=offset))
    return JSONResponse({"items": [i.to_dict() for i in items]})


@router.get(
    "/items/{item_id}", response_model=schemas.ItemDetail, summary="An indexed item with its analysis and faces"
)
async def get_item(item_id: str, request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    service = await search_service_of(request)
    return JSONResponse(await metadata(request, lambda: service.get_item(p.tenant_id, item_id)))


@router.delete(
    "/items/{item_id}",
    response_model=schemas.ItemDeletion,
    summary="Delete an item with its faces, text and vectors",
)
async def delete_item(item_id: str, request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    service = await search_service_of(request)
    return JSONResponse(await metadata(request, lambda: service.delete_item(p.tenant_id, item_id)))
