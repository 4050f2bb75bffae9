"""Galleries: collections, persons, enrolment, identification with "unknown", corrections, search, clusters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from frugalsense.api import schemas
from frugalsense.api.auth import Principal, authenticate
from frugalsense.api.routes.analyze import receipt_response
from frugalsense.api.routes.faces import optional_float
from frugalsense.api.uploads import read_upload, upload_body
from frugalsense.api.work import admitted, infer, metadata
from frugalsense.errors import InvalidRequestError

router = APIRouter(tags=["galleries"])


class NewCollection(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class NewPerson(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None


class CorrectionBody(BaseModel):
    is_person: str | None = Field(default=None, description="this face is this person (enrols it)")
    is_not_person: str | None = Field(default=None, description="this face is not this person")


class PromoteBody(BaseModel):
    collection_id: str
    name: str = Field(min_length=1, max_length=200)


def _int(fields: dict[str, Any], name: str, default: int | None, low: int, high: int) -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"'{name}' must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise InvalidRequestError(f"'{name}' must be between {low} and {high}")
    return number


def _bool(fields: dict[str, Any], name: str, default: bool) -> bool:
    value = fields.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InvalidRequestError(f"'{name}' must be true or false, got {value!r}")


# -- collections -------------------------------------------------------------------------------------------


@router.post(
    "/collections", status_code=201, response_model=schemas.Collection, summary="Create a collection of persons"
)
async def create_collection(
    body: NewCollection, request: Request, p: Principal = Depends(authenticate)
) -> JSONResponse:
    gallery = request.app.state.gallery
    collection = await metadata(request, lambda: gallery.create_collection(p.tenant_id, body.name))
    return JSONResponse(collection.to_dict(), status_code=201)


@router.get("/collections", response_model=schemas.CollectionList, summary="List your collections")
async def list_collections(request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    gallery = request.app.state.gallery
    found = await metadata(request, lambda: gallery.list_collections(p.tenant_id))
    return JSONResponse({"collections": [c.to_dict() for c in found]})


@router.delete(
    "/collections/{collection_id}",
    response_model=schemas.Erasure,
    summary="Delete a collection and erase everything in it",
)
async def delete_collection(
    collection_id: str, request: Request, p: Principal = Depends(authenticate)
) -> JSONResponse:
    gallery = request.app.state.gallery
    erased = await metadata(request, lambda: gallery.delete_collection(p.tenant_id, collection_id))
    return JSONResponse(erased.to_dict())


# -- persons -----------------------------------------------------------------------------------------------


@router.post(
    "/collections/{collection_id}/persons",
    status_code=201,
    response_model=schemas.Person,
    summary="Create a person in a collection",
)
async def create_person(
    collection_id: str, body: NewPerson, request: Request, p: Principal = Depends(authenticate)
) -> JSONResponse:
    gallery = request.app.state.gallery
    person = await metadata(
        request, lambda: gallery.create_person(p.tenant_id, collection_id, body.name, body.metadata)
    )
    return JSONResponse(person.to_dict(), status_code=201)


@router.get(
    "/collections/{collection_id}/persons",
    response_model=schemas.PersonList,
    summary="List the persons of a collection",
)
async def list_persons(collection_id: str, request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    gallery = request.app.state.gallery

    def work() -> Any:
        gallery.get_collection(p.tenant_id, collection_id)
        return gallery.list_persons(p.tenant_id, collection_id)

    return JSONResponse({"persons": [x.to_dict() for x in await metadata(request, work)]})


@router.get(
    "/persons/{person_id}", response_model=schemas.PersonWithFaces, summary="A person and their enrolled faces"
)
async def get_person(person_id: str, request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    gallery = request.app.state.gallery

    def work() -> Any:
        person = gallery.get_person(p.tenant_id, person_id)
        faces = gallery.list_faces(p.tenant_id, person_id=person_id)
        return {**person.to_dict(), "faces": [f.to_dict() for f in faces]}

    return JSONResponse(await metadata(request, work))


@router.delete(
    "/persons/{person_id}",
    response_model=schemas.Erasure,
    summary="Delete a person and erase all their faces, embeddings and crops",
)
async def delete_person(person_id: str, request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    gallery = request.app.state.gallery
    return JSONResponse((await metadata(request, lambda: gallery.delete_person(p.tenant_id, person_id))).to_dict())


@router.post(
    "/persons/{person_id}/faces",
    status_code=201,
    response_model=schemas.Enrolment,
    summary="Enrol a face for a person (the picture must show one face, or pick one with face_index)",
    openapi_extra=upload_body("file", extra={"face_index": {"type": "integer", "minimum": 0}}),
)
async def enrol(person_id: str, request: Request, p: Principal = Depends(admitted)) -> JSONResponse:
    upload, fields = await read_upload(request)
    face_index = _int(fields, "face_index", None, 0, 10_000)
    gallery = request.app.state.gallery
    result = await infer(
        request,
        p,
        lambda: gallery.enrol(p.tenant_id, person_id, upload.data, face_index=face_index, name=upload.name),
    )
    return receipt_response(result.to_dict(), result.receipt, request, status=201)


# -- identification, search, corrections -------------------------------------------------------------------


@router.post(
    "/collections/{collection_id}/identify",
    summary='1:N: who is each face, among this collection\'s persons, or "unknown"',
    response_model=schemas.Identification,
    openapi_extra=upload_body(
        "file",
        extra={
            "top_k": {"type": "integer", "minimum": 1, "maximum": 50},
            "threshold": {"type": "number"},
            "keep": {"type": "boolean", "description": "keep the faces for search and clusters (default true)"},
        },
    ),
)
async def identify(collection_id: str, request: Request, p: Principal = Depends(admitted)) -> JSONResponse:
    upload, fields = await read_upload(request)
    top_k = _int(fields, "top_k", 3, 1, 50) or 3
    threshold = optional_float(fields, "threshold")
    keep = _bool(fields, "keep", True)
    gallery = request.app.state.gallery
    result = await infer(
        request,
        p,
        lambda: gallery.identify(
            p.tenant_id, collection_id, upload.data, top_k=top_k, threshold=threshold, keep=keep, name=upload.name
        ),
    )
    return receipt_response(result.to_dict(), result.receipt, request)


@router.post(
    "/faces/search",
    summary="Search back through every face seen, enrolled or not",
    response_model=schemas.FaceSearch,
    openapi_extra=upload_body(
        "file",
        extra={
            "top_k": {"type": "integer", "minimum": 1, "maximum": 100},
            "include_unenrolled": {"type": "boolean"},
            "collection_id": {"type": "string"},
        },
    ),
)
async def search_faces(request: Request, p: Principal = Depends(admitted)) -> JSONResponse:
    upload, fields = await read_upload(request)
    top_k = _int(fields, "top_k", 10, 1, 100) or 10
    include = _bool(fields, "include_unenrolled", True)
    collection_id = fields.get("collection_id") or None
    if collection_id is not None and not isinstance(collection_id, str):
        raise InvalidRequestError("'collection_id' must be a string")
    gallery = request.app.state.gallery
    result = await infer(
        request,
        p,
        lambda: gallery.search_faces(
            p.tenant_id, upload.data, top_k=top_k, include_unenrolled=include, collection_id=collection_id
        ),
    )
    return receipt_response(result.to_dict(), result.receipt, request)


@router.get("/faces/{face_id}", response_model=schemas.StoredFace, summary="A stored face")
async def get_face(face_id: str, request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    gallery = request.app.state.gallery
    return JSONResponse((await metadata(request, lambda: gallery.get_face(p.tenant_id, face_id))).to_dict())


@router.delete(
    "/faces/{face_id}",
    response_model=schemas.Erasure,
    summary="Erase a stored face: its embedding, crop and corrections",
)
async def delete_face(face_id: str, request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    gallery = request.app.state.gallery
    return JSONResponse((await metadata(request, lambda: gallery.delete_face(p.tenant_id, face_id))).to_dict())


@router.post(
    "/faces/{face_id}/corrections",
    response_model=schemas.CorrectionOutcome,
    summary='"This face is person Y" and/or "this face is not person X"',
)
async def correct(
    face_id: str, body: CorrectionBody, request: Request, p: Principal = Depends(authenticate)
) -> JSONResponse:
    gallery = request.app.state.gallery
    result = await metadata(
        request,
        lambda: gallery.correct(p.tenant_id, face_id, is_person=body.is_person, is_not_person=body.is_not_person),
    )
    return JSONResponse(result.to_dict())


# -- clusters of unknown faces -----------------------------------------------------------------------------


@router.get("/clusters", response_model=schemas.ClusterList, summary="Recurring unknown faces, grouped")
async def clusters(
    request: Request, p: Principal = Depends(authenticate), min_size: int = Query(2, ge=1, le=1000)
) -> JSONResponse:
    gallery = request.app.state.gallery
    found = await metadata(request, lambda: gallery.clusters(p.tenant_id, min_size=min_size))
    return JSONResponse({"clusters": [c.to_dict() for c in found]})


@router.post(
    "/clusters/{cluster_id}/promote",
    status_code=201,
    response_model=schemas.Person,
    summary="Name a cluster: it becomes a person",
)
async def promote(
    cluster_id: str, body: PromoteBody, request: Request, p: Principal = Depends(authenticate)
) -> JSONResponse:
    gallery = request.app.state.gallery
    person = await metadata(
        request, lambda: gallery.promote_cluster(p.tenant_id, cluster_id, body.collection_id, body.name)
    )
    return JSONResponse(person.to_dict(), status_code=201)
