"""Stateless face routes: detect and compare."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from frugalsense.api import schemas
from frugalsense.api.auth import Principal
from frugalsense.api.routes.analyze import receipt_response
from frugalsense.api.uploads import read_upload, read_uploads, upload_body
from frugalsense.api.work import admitted, infer
from frugalsense.errors import InvalidRequestError

router = APIRouter(tags=["faces"])


def optional_float(fields: dict[str, Any], name: str) -> float | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"'{name}' must be a number, got {value!r}") from None


def optional_index(fields: dict[str, Any], name: str) -> int | None:
    """A face's place in a picture's list of faces (0, 1, ...), or None when not given."""
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"'{name}' must be a whole number (0: the first face), got {value!r}") from None
    if number < 0:
        raise InvalidRequestError(f"'{name}' counts faces from 0, got {number}")
    return number


@router.post(
    "/faces/detect",
    summary="Find faces: boxes, five landmarks, scores",
    response_model=schemas.FaceDetection,
    openapi_extra=upload_body("file"),
)
async def detect(request: Request, principal: Principal = Depends(admitted)) -> JSONResponse:
    upload, _ = await read_upload(request)
    analyzer = request.app.state.analyzer
    result = await infer(
        request,
        principal,
        lambda: analyzer.analyze(upload.data, ["faces"], name=upload.name, tenant=principal.tenant_id),
    )
    body = {"name": result.name, "faces": [], "receipt": result.receipt.to_dict()}
    for page in result.pages:
        body["faces"].extend(face.to_dict() for face in page.faces or [])
    return receipt_response(body, result.receipt, request, pictures={"faces": len(result.pages)})


@router.post(
    "/faces/compare",
    summary="1:1: the largest face of picture a (or face source_face) against every face of picture b",
    response_model=schemas.FaceComparison,
    openapi_extra=upload_body(
        "a",
        "b",
        extra={"threshold": {"type": "number"}, "source_face": {"type": "integer", "minimum": 0}},
    ),
)
async def compare(request: Request, principal: Principal = Depends(admitted)) -> JSONResponse:
    (a, b), fields = await read_uploads(request, ("a", "b"))
    threshold = optional_float(fields, "threshold")
    source_face = optional_index(fields, "source_face")
    gallery = request.app.state.gallery
    result = await infer(
        request,
        principal,
        lambda: gallery.compare(a.data, b.data, threshold=threshold, source_face=source_face),
    )
    return receipt_response(result.to_dict(), result.receipt, request)
